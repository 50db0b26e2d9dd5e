import Crypto
import Foundation

/// HPKE (RFC 9180) base mode, for sealing a secret to a recipient's public key: backups made
/// for an offline recipient. X25519 uses `DHKEM(X25519) + HKDF-SHA256 + ChaCha20-Poly1305`;
/// X-Wing (post-quantum hybrid) uses `X-Wing + HKDF-SHA256 + AES-256-GCM`.
public enum HybridEncryption {
    /// A sealed secret: the KEM encapsulation and the AEAD ciphertext.
    public struct Sealed: Sendable, Hashable, Codable {
        public var encapsulatedKey: [UInt8]
        public var ciphertext: [UInt8]
    }

    /// Seals `secret` to `recipient` (an X25519 or X-Wing public key), bound to `info`.
    public static func seal(_ secret: borrowing SecretBytes, to recipient: PublicKey, info: [UInt8]) throws(KeywardCryptoError) -> Sealed {
        let spec = recipient.spec
        return try secret.withSecretBytes(InsecureSecretAccess.token) { (plain) throws(KeywardCryptoError) -> Sealed in
            try mapping(.invalidPublicKey(spec: spec, reason: "HPKE refused the recipient key")) {
                switch spec {
                case .x25519:
                    let key = try Curve25519.KeyAgreement.PublicKey(derRepresentation: recipient.representation)
                    var sender = try HPKE.Sender(recipientKey: key, ciphersuite: .Curve25519_SHA256_ChachaPoly, info: Data(info))
                    return Sealed(encapsulatedKey: [UInt8](sender.encapsulatedKey), ciphertext: [UInt8](try sender.seal(plain)))
                case .xWing:
                    let key = try XWingMLKEM768X25519.PublicKey(rawRepresentation: recipient.representation)
                    var sender = try HPKE.Sender(recipientKey: key, ciphersuite: .XWingMLKEM768X25519_SHA256_AES_GCM_256, info: Data(info))
                    return Sealed(encapsulatedKey: [UInt8](sender.encapsulatedKey), ciphertext: [UInt8](try sender.seal(plain)))
                default:
                    throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .encapsulate, reason: "HPKE recipients are X25519 or X-WING keys")
                }
            }
        }
    }

    /// Opens a secret sealed to `recipient`'s public key.
    ///
    /// - Throws: `invalidCiphertext` when the encapsulation or ciphertext was altered, the
    ///   `info` differs, or the key is not the recipient.
    public static func open(_ sealed: Sealed, with recipient: borrowing KeyMaterial, info: [UInt8]) throws(KeywardCryptoError) -> SecretBytes {
        let spec = recipient.spec
        var plain: Data = try recipient.secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> Data in
            try mapping(.invalidCiphertext(reason: "the sealed secret does not open with this recipient key")) {
                switch spec {
                case .x25519:
                    var receiver = try HPKE.Recipient(privateKey: Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw),
                                                      ciphersuite: .Curve25519_SHA256_ChachaPoly, info: Data(info), encapsulatedKey: Data(sealed.encapsulatedKey))
                    return try receiver.open(sealed.ciphertext)
                case .xWing:
                    var receiver = try HPKE.Recipient(privateKey: XWingMLKEM768X25519.PrivateKey(seedRepresentation: raw, publicKey: nil),
                                                      ciphersuite: .XWingMLKEM768X25519_SHA256_AES_GCM_256, info: Data(info), encapsulatedKey: Data(sealed.encapsulatedKey))
                    return try receiver.open(sealed.ciphertext)
                default:
                    throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .decapsulate, reason: "HPKE recipients are X25519 or X-WING keys")
                }
            }
        }
        // Wiped in place: `plain` is the only reference to these bytes.
        defer { plain.wipe() }
        return try SecretBytes(copying: plain)
    }
}
