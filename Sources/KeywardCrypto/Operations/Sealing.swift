import Crypto
import Foundation

/// Symmetric encryption in Keyward's ciphertext format (docs/formats.md).
extension KeyMaterial {
    /// Encrypts `plaintext` under this key with a fresh random nonce.
    ///
    /// The result is `header | nonce | ciphertext | tag`, where the header names `keyID`,
    /// `version` and the algorithm; the AAD is the header followed by the canonical `context`.
    ///
    /// - Throws: `wrongPurpose` unless the spec is AES-256-GCM or ChaCha20-Poly1305;
    ///   `invalidParameter` for an oversized context.
    public func seal(
        _ plaintext: some DataProtocol,
        keyID: KeyID,
        version: UInt32,
        context: EncryptionContext = .empty
    ) throws(KeywardCryptoError) -> [UInt8] {
        guard let algorithm = SymmetricAlgorithm(spec: spec) else {
            throw spec.purpose == .encrypt
                ? .unsupportedOperation(spec: spec, operation: .encrypt, reason: "RSA keys encrypt with PublicKey.encrypt (OAEP), not the symmetric ciphertext format")
                : .wrongPurpose(spec: spec, operation: .encrypt)
        }
        let header = CiphertextHeader(keyID: keyID, version: version, algorithm: algorithm)
        var out: [UInt8] = []
        out.reserveCapacity(CiphertextHeader.byteCount + 28 + plaintext.count)
        header.append(to: &out)
        let contextBytes = try context.canonicalBytes()
        let aad = contextBytes.isEmpty ? out : out + contextBytes
        try secret.withUnsafeBytes { (raw) throws(KeywardCryptoError) in
            try mapping(.primitiveFailure(operation: "sealing", reason: "the AEAD refused the input")) {
                let key = SymmetricKey(data: raw)
                switch algorithm {
                case .aes256GCM:
                    let box = try AES.GCM.seal(plaintext, using: key, authenticating: aad)
                    out.append(contentsOf: box.nonce)
                    out.append(contentsOf: box.ciphertext)
                    out.append(contentsOf: box.tag)
                case .chaCha20Poly1305:
                    let box = try ChaChaPoly.seal(plaintext, using: key, authenticating: aad)
                    out.append(contentsOf: box.nonce)
                    out.append(contentsOf: box.ciphertext)
                    out.append(contentsOf: box.tag)
                }
            }
        }
        return out
    }

    /// Decrypts a ciphertext made by `seal`.
    ///
    /// - Parameters:
    ///   - keyID, version: the key and version the caller expects; a header naming others is
    ///     refused before any decryption.
    ///   - context: the same context given to `seal`.
    /// - Throws: `invalidCiphertext` for anything malformed, truncated, altered, made under another
    ///   key, version or context; `wrongPurpose` for keys that do not encrypt.
    public func open(
        _ ciphertext: some Collection<UInt8>,
        keyID: KeyID,
        version: UInt32,
        context: EncryptionContext = .empty
    ) throws(KeywardCryptoError) -> [UInt8] {
        guard let algorithm = SymmetricAlgorithm(spec: spec) else {
            throw spec.purpose == .encrypt
                ? .unsupportedOperation(spec: spec, operation: .decrypt, reason: "RSA keys decrypt with decryptOAEP")
                : .wrongPurpose(spec: spec, operation: .decrypt)
        }
        let bytes = Array(ciphertext)
        let header = try CiphertextHeader(parsing: bytes)
        guard header.keyID == keyID else {
            throw .invalidCiphertext(reason: "it was made under key \(header.keyID), not \(keyID)")
        }
        guard header.version == version else {
            throw .invalidCiphertext(reason: "it was made under version \(header.version) of the key, not \(version)")
        }
        guard header.algorithm == algorithm else {
            throw .invalidCiphertext(reason: "it names algorithm \(header.algorithm), but the key is \(spec.rawValue)")
        }
        let contextBytes = try context.canonicalBytes()
        let headerEnd = CiphertextHeader.byteCount
        let nonceEnd = headerEnd + algorithm.nonceByteCount
        let tagStart = bytes.count - algorithm.tagByteCount
        let aad = contextBytes.isEmpty ? Array(bytes[..<headerEnd]) : Array(bytes[..<headerEnd]) + contextBytes
        return try openDetached(
            ciphertext: bytes[nonceEnd..<tagStart], tag: bytes[tagStart...],
            nonce: bytes[headerEnd..<nonceEnd], aad: aad)
    }

    /// The AEAD with caller-chosen nonce and AAD, returning ciphertext and tag separately.
    /// Only for known-answer tests: reusing a nonce under one key breaks both AEADs.
    @_spi(KnownAnswerTests)
    public func sealDetached(
        _ plaintext: some DataProtocol, nonce: some DataProtocol, aad: some DataProtocol
    ) throws(KeywardCryptoError) -> (ciphertext: [UInt8], tag: [UInt8]) {
        guard let algorithm = SymmetricAlgorithm(spec: spec) else {
            throw .wrongPurpose(spec: spec, operation: .encrypt)
        }
        return try secret.withUnsafeBytes { (raw) throws(KeywardCryptoError) in
            try mapping(.invalidParameter(name: "nonce", reason: "must be 12 bytes")) {
                let key = SymmetricKey(data: raw)
                switch algorithm {
                case .aes256GCM:
                    let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
                    return ([UInt8](box.ciphertext), [UInt8](box.tag))
                case .chaCha20Poly1305:
                    let box = try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: aad)
                    return ([UInt8](box.ciphertext), [UInt8](box.tag))
                }
            }
        }
    }

    /// Opens an AEAD ciphertext given as separate parts. `open` uses this after checking the
    /// header; it is public only for known-answer tests.
    @_spi(KnownAnswerTests)
    public func openDetached(
        ciphertext: some DataProtocol, tag: some DataProtocol, nonce: some DataProtocol, aad: some DataProtocol
    ) throws(KeywardCryptoError) -> [UInt8] {
        guard let algorithm = SymmetricAlgorithm(spec: spec) else {
            throw .wrongPurpose(spec: spec, operation: .decrypt)
        }
        guard nonce.count == algorithm.nonceByteCount, tag.count == algorithm.tagByteCount else {
            throw .invalidCiphertext(reason: "nonce or tag has the wrong length")
        }
        return try secret.withUnsafeBytes { (raw) throws(KeywardCryptoError) in
            try mapping(.invalidCiphertext(reason: "authentication failed: wrong key, version or context, or the bytes were altered")) {
                let key = SymmetricKey(data: raw)
                switch algorithm {
                case .aes256GCM:
                    let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                    return [UInt8](try AES.GCM.open(box, using: key, authenticating: aad))
                case .chaCha20Poly1305:
                    let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                    return [UInt8](try ChaChaPoly.open(box, using: key, authenticating: aad))
                }
            }
        }
    }
}
