import Foundation

/// The format for bringing key material into a store (BYOK), the one AWS KMS calls
/// `RSA_AES_KEY_WRAP_SHA_256`:
///
/// ```
/// RSA-OAEP-SHA-256(wrapping public key, ephemeral 32-byte AES key) || AES-KWP(ephemeral key, material)
/// ```
///
/// The store issues the RSA wrapping key and keeps its private half; the material travels
/// encrypted and is unwrapped only inside the store.
public enum ImportWrapping {
    /// How material travels to a wrapping key.
    public enum Scheme: String, Sendable, CaseIterable {
        /// RSA-OAEP (SHA-256, MGF1 with SHA-256) of the material itself, for material that fits
        /// in one OAEP block (symmetric and HMAC keys): AWS's `RSAES_OAEP_SHA_256`.
        case rsaOAEPSHA256
        /// RSA-OAEP-SHA-256 of a fresh 32-byte AES key, then the material wrapped under it with
        /// AES-KWP (RFC 5649), as above: AWS's `RSA_AES_KEY_WRAP_SHA_256`.
        case rsaAESKeyWrapSHA256
    }

    /// Unwraps material wrapped under `scheme` with the wrapping key's private half.
    ///
    /// - Throws: `invalidCiphertext` when the blob has the wrong length, the RSA part does not
    ///   decrypt, or the AES-KWP integrity check fails; `wrongPurpose` for a key that is not an
    ///   RSA encryption key.
    public static func unwrap(_ wrapped: [UInt8], with wrappingKey: borrowing KeyMaterial, scheme: Scheme) throws(KeywardCryptoError) -> SecretBytes {
        switch scheme {
        case .rsaAESKeyWrapSHA256:
            return try unwrap(wrapped, with: wrappingKey)
        case .rsaOAEPSHA256:
            guard let bits = wrappingKey.spec.rsaBits, wrappingKey.spec.purpose == .encrypt else {
                throw .wrongPurpose(spec: wrappingKey.spec, operation: .decrypt)
            }
            guard wrapped.count == bits / 8 else {
                throw .invalidCiphertext(reason: "RSAES_OAEP material is one \(bits / 8)-byte RSA block, not \(wrapped.count) bytes")
            }
            var material = try wrappingKey.decryptOAEP(wrapped)
            defer { SecureZero.wipe(&material) }
            return try SecretBytes(copying: material)
        }
    }

    /// Wraps `material` (the spec's private representation) to an RSA-OAEP wrapping key.
    public static func wrap(_ material: borrowing SecretBytes, to wrappingKey: PublicKey) throws(KeywardCryptoError) -> [UInt8] {
        let ephemeral = try SecretBytes.random(count: 32)
        let encryptedKey = try ephemeral.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
            try wrappingKey.encrypt(Array(raw))
        }
        return encryptedKey + (try KeyWrap.wrap(material, kek: ephemeral, mode: .rfc5649))
    }

    /// Unwraps material wrapped by `wrap` with the wrapping key's private half.
    ///
    /// - Throws: `invalidCiphertext` when the blob is too short, the RSA part does not decrypt, or
    ///   the AES-KWP integrity check fails.
    public static func unwrap(_ wrapped: [UInt8], with wrappingKey: borrowing KeyMaterial) throws(KeywardCryptoError) -> SecretBytes {
        guard let bits = wrappingKey.spec.rsaBits, wrappingKey.spec.purpose == .encrypt else {
            throw .wrongPurpose(spec: wrappingKey.spec, operation: .decrypt)
        }
        let rsaLength = bits / 8
        guard wrapped.count >= rsaLength + 16 else {
            throw .invalidCiphertext(reason: "wrapped material of \(wrapped.count) bytes is shorter than the \(rsaLength)-byte RSA part plus a key-wrap block")
        }
        var ephemeral = try wrappingKey.decryptOAEP(wrapped[..<rsaLength])
        defer { SecureZero.wipe(&ephemeral) }
        guard ephemeral.count == 32 else {
            throw .invalidCiphertext(reason: "the RSA part does not hold a 32-byte AES key")
        }
        let kek = try SecretBytes(copying: ephemeral)
        return try KeyWrap.unwrap(wrapped[rsaLength...], kek: kek, mode: .rfc5649)
    }
}
