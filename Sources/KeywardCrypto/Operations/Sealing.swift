import COpenSSLAEAD
import Foundation

/// Symmetric encryption in Keyward's ciphertext format (docs/formats.md).
///
/// The AEAD itself runs in OpenSSL 3's libcrypto (AES-256-GCM with AES-NI/VAES and CLMUL,
/// ChaCha20-Poly1305), called with the key straight from `SecretBytes` and writing straight into
/// the output buffer; the cipher context holding the expanded key is cleansed after every call.
/// See docs/decisions/0001-aead-backend.md for why this is not swift-crypto's `AES.GCM`.
extension KeyMaterial {
    /// Encrypts `plaintext` under this key with a fresh random 96-bit nonce.
    ///
    /// The result is `header | nonce | ciphertext | tag`, where the header names `keyID`,
    /// `version` and the algorithm; the AAD is the header followed by the canonical `context`.
    ///
    /// - Throws: `wrongPurpose` for keys that do not encrypt; `unsupportedOperation` for RSA
    ///   keys (use `PublicKey.encrypt`); `invalidParameter` for an oversized context or a
    ///   plaintext above `maximumPlaintextBytes`.
    public func seal(
        _ plaintext: some DataProtocol,
        keyID: KeyID,
        version: UInt32,
        context: EncryptionContext = .empty
    ) throws(KeywardCryptoError) -> [UInt8] {
        let algorithm = try symmetricAlgorithm(for: .encrypt)
        let contextBytes = try context.canonicalBytes()
        let count = plaintext.count
        guard count <= KeyMaterial.maximumPlaintextBytes else {
            throw .invalidParameter(name: "plaintext", reason: "\(count) bytes; at most \(KeyMaterial.maximumPlaintextBytes) per ciphertext")
        }
        let header = CiphertextHeader(keyID: keyID, version: version, algorithm: algorithm)
        let headerEnd = CiphertextHeader.byteCount
        let bodyStart = headerEnd + 12
        let total = bodyStart + count + 16
        var ok: Int32 = 0
        let out = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let base = buffer.baseAddress!
            header.write(to: base)
            guard keyward_aead_nonce(base + headerEnd) == 1 else { return }
            func sealBody(from input: UnsafePointer<UInt8>) -> Int32 {
                secret.withSecretBytes(InsecureSecretAccess.token) { key in
                    contextBytes.withUnsafeBufferPointer { aad2 in
                        keyward_aead_seal(
                            Int32(algorithm.rawValue), key.baseAddress!.assumingMemoryBound(to: UInt8.self), base + headerEnd,
                            base, headerEnd, aad2.baseAddress, aad2.count,
                            input, count, base + bodyStart, base + bodyStart + count)
                    }
                }
            }
            // Contiguous plaintext is encrypted straight into the output; anything else is
            // gathered there first and encrypted in place.
            if plaintext.regions.count == 1, count > 0 {
                ok = plaintext.regions.first!.withUnsafeBytes { sealBody(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
            } else {
                plaintext.copyBytes(to: UnsafeMutableRawBufferPointer(start: base + bodyStart, count: count))
                ok = sealBody(from: base + bodyStart)
            }
            initialized = ok == 1 ? total : 0
        }
        guard ok == 1 else {
            throw .primitiveFailure(operation: "sealing with \(spec.rawValue)", reason: "the AEAD or the random source failed")
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
        let algorithm = try symmetricAlgorithm(for: .decrypt)
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
        return try bytes.withUnsafeBufferPointer { (all) throws(KeywardCryptoError) -> [UInt8] in
            let base = all.baseAddress!
            let headerEnd = CiphertextHeader.byteCount
            let bodyStart = headerEnd + 12
            let count = all.count - bodyStart - 16
            return try openRaw(
                algorithm, nonce: base + headerEnd, aad1: base, aad1Count: headerEnd,
                aad2: contextBytes, body: base + bodyStart, count: count, tag: base + bodyStart + count)
        }
    }

    /// The largest plaintext `seal` takes: 64 MiB. Larger data belongs under a data key
    /// (envelope encryption), not a single Keyward ciphertext.
    public static let maximumPlaintextBytes = 64 << 20

    private func symmetricAlgorithm(for operation: KeyOperation) throws(KeywardCryptoError) -> SymmetricAlgorithm {
        guard let algorithm = SymmetricAlgorithm(spec: spec) else {
            throw spec.purpose == .encrypt
                ? .unsupportedOperation(spec: spec, operation: operation, reason: "RSA keys use PublicKey.encrypt and KeyMaterial.decryptOAEP, not the symmetric ciphertext format")
                : .wrongPurpose(spec: spec, operation: operation)
        }
        return algorithm
    }

    private func openRaw(
        _ algorithm: SymmetricAlgorithm, nonce: UnsafePointer<UInt8>, aad1: UnsafePointer<UInt8>?, aad1Count: Int,
        aad2: [UInt8], body: UnsafePointer<UInt8>, count: Int, tag: UnsafePointer<UInt8>
    ) throws(KeywardCryptoError) -> [UInt8] {
        guard count >= 0 else { throw .invalidCiphertext(reason: "shorter than nonce and tag") }
        var ok: Int32 = 0
        // Capacity at least 1, so the buffer has an address even for an empty plaintext.
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(count, 1)) { out, initialized in
            let target = out.baseAddress!
            ok = secret.withSecretBytes(InsecureSecretAccess.token) { key in
                aad2.withUnsafeBufferPointer { aad2 in
                    keyward_aead_open(
                        Int32(algorithm.rawValue), key.baseAddress!.assumingMemoryBound(to: UInt8.self), nonce,
                        aad1, aad1Count, aad2.baseAddress, aad2.count, body, count, tag, target)
                }
            }
            initialized = ok == 1 ? count : 0
        }
        guard ok == 1 else {
            throw .invalidCiphertext(reason: "authentication failed: wrong key, version or context, or the bytes were altered")
        }
        return plaintext
    }

    /// The AEAD with caller-chosen nonce and AAD, returning ciphertext and tag separately.
    /// Only for known-answer tests: reusing a nonce under one key breaks both AEADs.
    @_spi(KnownAnswerTests)
    public func sealDetached(
        _ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]
    ) throws(KeywardCryptoError) -> (ciphertext: [UInt8], tag: [UInt8]) {
        let algorithm = try symmetricAlgorithm(for: .encrypt)
        guard nonce.count == 12 else { throw .invalidParameter(name: "nonce", reason: "must be 12 bytes") }
        var tag = [UInt8](repeating: 0, count: 16)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
        let ok = secret.withSecretBytes(InsecureSecretAccess.token) { key in
            keyward_aead_seal(
                Int32(algorithm.rawValue), key.baseAddress!.assumingMemoryBound(to: UInt8.self), nonce,
                aad, aad.count, nil, 0, plaintext, plaintext.count, &ciphertext, &tag)
        }
        guard ok == 1 else { throw .primitiveFailure(operation: "sealing", reason: "the AEAD refused the input") }
        return (ciphertext, tag)
    }

    /// Opens an AEAD ciphertext given as separate parts; `open` does the same after checking
    /// the header. Public only for known-answer tests.
    @_spi(KnownAnswerTests)
    public func openDetached(
        ciphertext: [UInt8], tag: [UInt8], nonce: [UInt8], aad: [UInt8]
    ) throws(KeywardCryptoError) -> [UInt8] {
        let algorithm = try symmetricAlgorithm(for: .decrypt)
        guard nonce.count == 12, tag.count == 16 else {
            throw .invalidCiphertext(reason: "nonce or tag has the wrong length")
        }
        return try aad.withUnsafeBufferPointer { (aad1) throws(KeywardCryptoError) -> [UInt8] in
            try openRaw(algorithm, nonce: nonce, aad1: aad1.baseAddress, aad1Count: aad1.count, aad2: [],
                        body: ciphertext, count: ciphertext.count, tag: tag)
        }
    }
}
