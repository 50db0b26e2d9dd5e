import Crypto
import Foundation

/// The two outputs of encapsulation: a secret for the sender and the bytes that carry it.
public struct Encapsulation: ~Copyable, Sendable {
    /// The 32-byte shared secret.
    public let sharedSecret: SecretBytes
    /// The encapsulation (KEM ciphertext) to send to the key's owner.
    public let encapsulated: [UInt8]
}

extension PublicKey {
    /// Encapsulates a fresh shared secret to this ML-KEM or X-Wing public key.
    ///
    /// - Throws: `wrongPurpose` for keys that are not KEM keys.
    public func encapsulate() throws(KeywardCryptoError) -> Encapsulation {
        try spec.check(.encapsulate)
        let spec = self.spec
        let key = representation
        let result: KEM.EncapsulationResult = try mapping(.invalidPublicKey(spec: spec, reason: "the public key does not parse")) {
            switch spec {
            case .mlKEM768: return try MLKEM768.PublicKey(rawRepresentation: key).encapsulate()
            case .mlKEM1024: return try MLKEM1024.PublicKey(rawRepresentation: key).encapsulate()
            default: return try XWingMLKEM768X25519.PublicKey(rawRepresentation: key).encapsulate()
            }
        }
        let secret = try SecretBytes(copyingBytesOf: result.sharedSecret)
        return Encapsulation(sharedSecret: secret, encapsulated: [UInt8](result.encapsulated))
    }
}

extension KeyMaterial {
    /// Recovers the shared secret from an encapsulation made to this key's public key.
    /// ML-KEM rejects implicitly: a well-formed but wrong encapsulation yields an unrelated
    /// secret, not an error.
    ///
    /// - Throws: `wrongPurpose` for keys that are not KEM keys; `invalidCiphertext` for an
    ///   encapsulation of the wrong length.
    public func decapsulate(_ encapsulated: some DataProtocol) throws(KeywardCryptoError) -> SecretBytes {
        try spec.check(.decapsulate)
        let spec = self.spec
        let expected = switch spec { case .mlKEM768: 1088; case .mlKEM1024: 1568; default: 1120 }
        guard encapsulated.count == expected else {
            throw .invalidCiphertext(reason: "a \(spec.rawValue) encapsulation is \(expected) bytes, got \(encapsulated.count)")
        }
        return try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in
            let shared: SymmetricKey = try mapping(.invalidCiphertext(reason: "decapsulation failed")) {
                switch spec {
                case .mlKEM768: return try MLKEM768.PrivateKey(seedRepresentation: raw, publicKey: nil).decapsulate(encapsulated)
                case .mlKEM1024: return try MLKEM1024.PrivateKey(seedRepresentation: raw, publicKey: nil).decapsulate(encapsulated)
                default: return try XWingMLKEM768X25519.PrivateKey(seedRepresentation: raw, publicKey: nil).decapsulate(Data(encapsulated))
                }
            }
            return try SecretBytes(copyingBytesOf: shared)
        }
    }
}
