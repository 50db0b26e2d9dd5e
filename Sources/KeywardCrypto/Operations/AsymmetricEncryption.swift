import Crypto
import CryptoExtras
import Foundation

extension PublicKey {
    /// Encrypts a short `plaintext` to this RSA key with OAEP (SHA-256, MGF1-SHA-256, empty
    /// label). The output is the bare RSA ciphertext, as any OAEP implementation produces it.
    ///
    /// - Throws: `wrongPurpose` unless the spec is RSA-OAEP; `invalidParameter` when the
    ///   plaintext exceeds the modulus size minus 66 bytes (190 for RSA-2048).
    public func encrypt(_ plaintext: some DataProtocol) throws(KeywardCryptoError) -> [UInt8] {
        try spec.check(.encrypt)
        guard let bits = spec.rsaBits else {
            throw .unsupportedOperation(spec: spec, operation: .encrypt, reason: "symmetric keys encrypt with KeyMaterial.seal")
        }
        let limit = bits / 8 - 66
        guard plaintext.count <= limit else {
            throw .invalidParameter(name: "plaintext", reason: "\(plaintext.count) bytes; \(spec.rawValue) encrypts at most \(limit)")
        }
        let key = representation
        return try mapping(.invalidPublicKey(spec: spec, reason: "the public key does not parse")) {
            [UInt8](try _RSA.Encryption.PublicKey(derRepresentation: key).encrypt(plaintext, padding: .PKCS1_OAEP_SHA256))
        }
    }
}

extension KeyMaterial {
    /// Decrypts an RSA-OAEP-SHA-256 ciphertext made to this key's public key.
    ///
    /// - Throws: `wrongPurpose` unless the spec is RSA-OAEP; `invalidCiphertext` when the
    ///   ciphertext has the wrong length or its padding does not check (one error for both
    ///   padding failures, to give no padding oracle).
    public func decryptOAEP(_ ciphertext: some DataProtocol) throws(KeywardCryptoError) -> [UInt8] {
        try spec.check(.decrypt)
        guard let bits = spec.rsaBits else {
            throw .unsupportedOperation(spec: spec, operation: .decrypt, reason: "symmetric keys decrypt with KeyMaterial.open")
        }
        guard ciphertext.count == bits / 8 else {
            throw .invalidCiphertext(reason: "an \(spec.rawValue) ciphertext is \(bits / 8) bytes, got \(ciphertext.count)")
        }
        return try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
            try mapping(.invalidCiphertext(reason: "RSA-OAEP decryption failed")) {
                [UInt8](try _RSA.Encryption.PrivateKey(derRepresentation: raw).decrypt(ciphertext, padding: .PKCS1_OAEP_SHA256))
            }
        }
    }
}
