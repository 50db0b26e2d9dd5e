import Crypto
import CryptoExtras
import Foundation

extension KeyMaterial {
    /// The raw ECDH / X25519 shared secret with `peer` (the x-coordinate for NIST curves).
    /// Feed it to a KDF before use; `deriveSharedKey` does.
    ///
    /// - Throws: `wrongPurpose` for keys that do not agree keys; `invalidPublicKey` when `peer`
    ///   is of another spec; `primitiveFailure` when the agreement yields no secret (for example
    ///   an X25519 peer key of small order).
    public func sharedSecret(with peer: PublicKey) throws(KeywardCryptoError) -> SecretBytes {
        try spec.check(.deriveSharedSecret)
        let spec = self.spec
        guard peer.spec == spec else {
            throw .invalidPublicKey(spec: spec, reason: "the peer key is \(peer.spec.rawValue); both sides must use \(spec.rawValue)")
        }
        return try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in
            let shared: SharedSecret = try mapping(.primitiveFailure(operation: "key agreement", reason: "no shared secret (invalid or small-order peer key)")) {
                switch spec {
                case .ecdhP256:
                    return try P256.KeyAgreement.PrivateKey(rawRepresentation: raw).sharedSecretFromKeyAgreement(with: P256.KeyAgreement.PublicKey(derRepresentation: peer.representation))
                case .ecdhP384:
                    return try P384.KeyAgreement.PrivateKey(rawRepresentation: raw).sharedSecretFromKeyAgreement(with: P384.KeyAgreement.PublicKey(derRepresentation: peer.representation))
                default:
                    return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).sharedSecretFromKeyAgreement(with: Curve25519.KeyAgreement.PublicKey(derRepresentation: peer.representation))
                }
            }
            return try SecretBytes(copyingBytesOf: shared)
        }
    }

    /// A key derived from the shared secret with `peer` by HKDF-SHA-256 (RFC 5869).
    ///
    /// - Parameters:
    ///   - salt: HKDF salt; may be empty.
    ///   - info: HKDF info, to bind the key to its use.
    ///   - byteCount: 16 to 64 bytes.
    public func deriveSharedKey(
        with peer: PublicKey, salt: [UInt8] = [], info: [UInt8] = [], byteCount: Int = 32
    ) throws(KeywardCryptoError) -> SecretBytes {
        guard (16...64).contains(byteCount) else {
            throw .invalidParameter(name: "output length", reason: "\(byteCount) bytes; choose 16 to 64")
        }
        let shared = try sharedSecret(with: peer)
        return try shared.withSecretBytes(InsecureSecretAccess.token) { (ikm) throws(KeywardCryptoError) -> SecretBytes in
            try KeyDerivation.hkdf(.sha256, inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: byteCount)
        }
    }
}
