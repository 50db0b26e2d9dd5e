import Foundation
import KeywardCrypto
import KeywardStorage

/// The result of an encryption: the ciphertext and the key version that made it.
public struct EncryptResult: Sendable, Hashable {
    /// The Keyward ciphertext (docs/formats.md).
    public var ciphertext: [UInt8]
    /// The key used.
    public var keyID: KeyID
    /// The key version used.
    public var version: UInt32
}

/// The result of a decryption.
public struct DecryptResult: Sendable, Hashable {
    /// The decrypted bytes.
    public var plaintext: [UInt8]
    /// The key used.
    public var keyID: KeyID
    /// The key version used.
    public var version: UInt32
}

/// A data key: the plaintext (for immediate use, then dropped) and the same key sealed under a
/// Keyward key (to store beside the data).
public struct DataKey: ~Copyable, Sendable {
    /// The data key, for immediate use.
    public let plaintext: SecretBytes
    /// The data key sealed under the Keyward key, to store beside the data.
    public let ciphertext: [UInt8]
    /// The key used.
    public let keyID: KeyID
    /// The key version used.
    public let version: UInt32
}

/// A signature and the key version that made it.
public struct SignResult: Sendable, Hashable {
    /// The signature (DER for ECDSA).
    public var signature: [UInt8]
    /// The key used.
    public var keyID: KeyID
    /// The key version used.
    public var version: UInt32
}

/// A MAC tag and the key version that made it.
public struct MACResult: Sendable, Hashable {
    /// The full-length HMAC tag.
    public var tag: [UInt8]
    /// The key used.
    public var keyID: KeyID
    /// The key version used.
    public var version: UInt32
}

/// A data key pair: the public key in the clear, the private key sealed under a Keyward key.
public struct DataKeyPair: Sendable, Hashable {
    /// The pair's public key.
    public var publicKey: PublicKey
    /// The pair's private key, sealed under the Keyward key.
    public var privateKeyCiphertext: [UInt8]
    /// The key used.
    public var keyID: KeyID
    /// The key version used.
    public var version: UInt32
}

extension KeyService {
    /// Largest plaintext `encrypt` takes directly (larger data belongs under a data key).
    public static let maximumPlaintextBytes = 4 * 1024 * 1024

    // MARK: Encrypt / decrypt

    /// Encrypts `plaintext` under the key's newest version, bound to `context`.
    public func encrypt(_ plaintext: [UInt8], key reference: String, context: EncryptionContext = .empty, actor: Caller) async throws(KeywardError) -> EncryptResult {
        guard plaintext.count <= Self.maximumPlaintextBytes else {
            throw .invalidArgument("plaintext of \(plaintext.count) bytes; encrypt at most \(Self.maximumPlaintextBytes) directly and use a data key for more")
        }
        return try await withUsableKey(reference, .encrypt, purpose: .encrypt, caller: actor.asking(under: context)) { (key, event) throws(KeywardError) -> EncryptResult in
            try await seal(plaintext, under: key, context: context, event: &event)
        }
    }

    /// Decrypts a Keyward ciphertext; the key and version come from its header. With
    /// `expectedKey`, a ciphertext of any other key is refused.
    public func decrypt(_ ciphertext: [UInt8], context: EncryptionContext = .empty, expectedKey: String? = nil, actor: Caller) async throws(KeywardError) -> DecryptResult {
        let header = try await ciphertextHeader(ciphertext, .decrypt, actor)
        let id = header.keyID
        try await check(header, madeUnder: expectedKey, .decrypt, actor)
        return try await withUsableKey(id, .decrypt, purpose: .decrypt, caller: actor.asking(under: context), unknownKey: .ciphertextNamesUnknownKey) { (key, event) throws(KeywardError) -> DecryptResult in
            DecryptResult(plaintext: try await open(ciphertext, header, under: key, context: context, event: &event), keyID: id, version: header.version)
        }
    }

    /// Decrypts under the ciphertext's key and encrypts under `destinationKey` (which may be the
    /// same key, to move to its newest version), without the plaintext leaving the service.
    ///
    /// The caller needs `re-encrypt` on both keys; neither `decrypt` nor `encrypt` is needed or
    /// enough. The source is admitted as a decryption would be (re-encryption is how data moves
    /// off a deactivated or compromised key); the destination must be able to encrypt. Each side
    /// has its own audit entry.
    /// With `expectedSourceKey`, a ciphertext of any other key is refused.
    public func reEncrypt(
        _ ciphertext: [UInt8], sourceContext: EncryptionContext = .empty, expectedSourceKey: String? = nil,
        destinationKey: String, destinationContext: EncryptionContext = .empty, actor: Caller
    ) async throws(KeywardError) -> EncryptResult {
        let header = try await ciphertextHeader(ciphertext, .reEncrypt, actor)
        try await check(header, madeUnder: expectedSourceKey, .reEncrypt, actor)
        var plaintext = try await withUsableKey(header.keyID, .reEncrypt, admittedAs: .decrypt, purpose: .decrypt, caller: actor.asking(under: sourceContext),
                                                unknownKey: .ciphertextNamesUnknownKey) { (key, event) throws(KeywardError) -> [UInt8] in
            try await open(ciphertext, header, under: key, context: sourceContext, event: &event)
        }
        defer { SecureZero.wipe(&plaintext) }
        return try await withUsableKey(destinationKey, .reEncrypt, purpose: .encrypt, caller: actor.asking(under: destinationContext)) { (key, event) throws(KeywardError) -> EncryptResult in
            try await seal(plaintext, under: key, context: destinationContext, event: &event)
        }
    }

    /// Refuses (and audits) a ciphertext that was not made under the key the caller named, when
    /// it named one. A caller that may not use `operation` everywhere gets the same refusal for
    /// a name that resolves to no key, so it learns nothing of which aliases exist. The message
    /// is built only when there is a refusal (Transit names its key by alias on every decrypt).
    private func check(_ header: CiphertextHeader, madeUnder expectedKey: String?, _ operation: ServiceOperation, _ actor: Caller) async throws(KeywardError) {
        let id = header.keyID
        guard let expectedKey, KeyID(parsing: expectedKey) != id else { return }
        let mismatch = { KeywardError.ciphertextKeyMismatch(ciphertextKey: id, named: expectedKey) }
        var refusal: KeywardError? = nil
        do throws(KeywardError) {
            if try await resolve(expectedKey) != id { refusal = mismatch() }
        } catch .keyNotFound where !(actor.policy?.allowsEverywhere(operation) ?? true) {
            refusal = mismatch()
        } catch { refusal = error }
        if let refusal {
            throw await auditor.refusal(auditor.event(.key(operation), caller: actor, key: id, version: header.version), refusal)
        }
    }

    /// The header of a ciphertext handed to `operation`; an unreadable one is refused and audited.
    private func ciphertextHeader(_ ciphertext: [UInt8], _ operation: ServiceOperation, _ actor: Caller) async throws(KeywardError) -> CiphertextHeader {
        do { return try CiphertextHeader(parsing: ciphertext) } catch {
            throw await auditor.refusal(auditor.event(.key(operation), caller: actor), .crypto(error))
        }
    }

    /// Refuses an empty encryption context for a key created with `contextRequired`.
    func checkContext(_ key: LoadedKey, _ context: EncryptionContext) throws(KeywardError) {
        guard key.metadata.contextRequired == true, context.pairs.isEmpty else { return }
        throw .invalidArgument("key \(key.row.id) requires an encryption context: it was created with contextRequired (a Transit derived key)")
    }

    /// Seals `plaintext` under the admitted key's newest version.
    private func seal(_ plaintext: [UInt8], under key: LoadedKey, context: EncryptionContext, event: inout AuditEvent) async throws(KeywardError) -> EncryptResult {
        try checkContext(key, context)
        let version = try await versionForEncryption(key)
        event.version = version.number
        let id = key.row.id
        do throws(KeywardCryptoError) {
            let ciphertext = try version.material.seal(plaintext, keyID: id, version: version.number, context: context)
            return EncryptResult(ciphertext: ciphertext, keyID: id, version: version.number)
        } catch {
            throw .crypto(error)
        }
    }

    /// Opens `ciphertext` with the admitted key's version its header names.
    private func open(_ ciphertext: [UInt8], _ header: CiphertextHeader, under key: LoadedKey, context: EncryptionContext,
                      event: inout AuditEvent) async throws(KeywardError) -> [UInt8] {
        event.version = header.version
        try checkContext(key, context)
        try checkDecryptable(key, header.version)
        let version = try await records.loadVersion(key, header.version)
        do throws(KeywardCryptoError) {
            return try version.material.open(ciphertext, keyID: key.row.id, version: header.version, context: context)
        } catch {
            throw .crypto(error)
        }
    }

    /// A fresh data key of `spec` (AES-256-GCM or ChaCha20-Poly1305), returned in plaintext and
    /// sealed under `key`.
    ///
    /// `byteCount` (1 to 1,024; 32 by default, the size of both specs' keys) asks for a data key
    /// of another length, for protocols that let the client choose (AWS KMS's `NumberOfBytes`,
    /// `AES_128`).
    public func generateDataKey(key reference: String, spec: KeySpec = .aes256GCM, byteCount: Int = 32, context: EncryptionContext = .empty,
                                actor: Caller) async throws(KeywardError) -> DataKey {
        guard spec.isSymmetric, spec.purpose == .encrypt else {
            throw .invalidArgument("data keys are AES-256-GCM or CHACHA20-POLY1305, not \(spec.rawValue)")
        }
        guard (1...1024).contains(byteCount) else { throw .invalidArgument("a data key is 1 to 1,024 bytes, not \(byteCount)") }
        return try await withUsableKey(reference, .generateDataKey, purpose: .encrypt, caller: actor.asking(under: context)) { (key, event) throws(KeywardError) -> DataKey in
            try checkContext(key, context)
            let version = try await versionForEncryption(key)
            event.version = version.number
            let id = key.row.id
            do throws(KeywardCryptoError) {
                let secret = try SecretBytes.random(count: byteCount)
                let sealed = try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
                    try version.material.seal(raw, keyID: id, version: version.number, context: context)
                }
                return DataKey(plaintext: secret, ciphertext: sealed, keyID: id, version: version.number)
            } catch {
                throw .crypto(error)
            }
        }
    }

    /// A fresh data key sealed under `key`, without the plaintext (decrypt it later where it is
    /// needed).
    public func generateDataKeyWithoutPlaintext(key reference: String, spec: KeySpec = .aes256GCM, byteCount: Int = 32, context: EncryptionContext = .empty,
                                                actor: Caller) async throws(KeywardError) -> EncryptResult {
        let dataKey = try await generateDataKey(key: reference, spec: spec, byteCount: byteCount, context: context, actor: actor)
        return EncryptResult(ciphertext: dataKey.ciphertext, keyID: dataKey.keyID, version: dataKey.version)
    }

    /// A fresh key pair of `pairSpec`: the public key in the clear and the private key sealed
    /// under `key`.
    ///
    /// With `pkcs8`, the sealed private key is PKCS #8 DER (as AWS KMS returns it) rather than
    /// Keyward's raw form (`KeyMaterial`).
    public func generateDataKeyPair(key reference: String, pairSpec: KeySpec, context: EncryptionContext = .empty, pkcs8: Bool = false,
                                    actor: Caller) async throws(KeywardError) -> DataKeyPair {
        guard !pairSpec.isSymmetric else { throw .invalidArgument("\(pairSpec.rawValue) is not an asymmetric spec") }
        return try await withUsableKey(reference, .generateDataKeyPair, purpose: .encrypt, caller: actor.asking(under: context)) { (key, event) throws(KeywardError) -> DataKeyPair in
            try checkContext(key, context)
            let version = try await versionForEncryption(key)
            event.version = version.number
            let id = key.row.id
            let generated = try await MaterialGeneration.generate(pairSpec)
            do throws(KeywardCryptoError) {
                let seal = { (raw: UnsafeRawBufferPointer) throws(KeywardCryptoError) -> [UInt8] in
                    try version.material.seal(raw, keyID: id, version: version.number, context: context)
                }
                let sealed = pkcs8 ? try generated.material.pkcs8().withSecretBytes(InsecureSecretAccess.token, seal)
                    : try generated.material.secret.withSecretBytes(InsecureSecretAccess.token, seal)
                return DataKeyPair(publicKey: try generated.material.publicKey(), privateKeyCiphertext: sealed, keyID: id, version: version.number)
            } catch {
                throw .crypto(error)
            }
        }
    }

    // MARK: Sign / verify / MAC

    /// Signs with the key's newest version.
    public func sign(_ input: SigningInput, key reference: String, context: [UInt8]? = nil, actor: Caller) async throws(KeywardError) -> SignResult {
        try await withUsableKey(reference, .sign, purpose: .sign, caller: actor) { (key, event) throws(KeywardError) -> SignResult in
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = version.number
            do throws(KeywardCryptoError) {
                return SignResult(signature: try version.material.sign(input, context: context), keyID: key.row.id, version: version.number)
            } catch {
                throw .crypto(error)
            }
        }
    }

    /// Verifies a signature with `version` of the key (default: the newest).
    public func verify(_ signature: [UInt8], for input: SigningInput, key reference: String, version: UInt32? = nil,
                       context: [UInt8]? = nil, encoding: ECDSASignatureEncoding = .der, actor: Caller) async throws(KeywardError) -> Bool {
        try await withUsableKey(reference, .verify, purpose: .verify, caller: actor) { (key, event) throws(KeywardError) -> Bool in
            let number = version ?? key.metadata.currentVersion
            event.version = number
            try checkDecryptable(key, number)
            let loaded = try await records.loadVersion(key, number)
            do throws(KeywardCryptoError) {
                let valid = try loaded.material.publicKey().verify(signature, for: input, context: context, encoding: encoding)
                event.detail = valid ? "valid" : "invalid signature"
                return valid
            } catch {
                throw .crypto(error)
            }
        }
    }

    /// The HMAC of `message` under the key's newest version.
    public func mac(_ message: [UInt8], key reference: String, actor: Caller) async throws(KeywardError) -> MACResult {
        try await withUsableKey(reference, .mac, purpose: .mac, caller: actor) { (key, event) throws(KeywardError) -> MACResult in
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = version.number
            do throws(KeywardCryptoError) { return MACResult(tag: try version.material.mac(message), keyID: key.row.id, version: version.number) } catch { throw .crypto(error) }
        }
    }

    /// Verifies an HMAC tag in constant time with `version` (default: the newest).
    public func verifyMAC(_ tag: [UInt8], for message: [UInt8], key reference: String, version: UInt32? = nil, actor: Caller) async throws(KeywardError) -> Bool {
        try await withUsableKey(reference, .verifyMAC, purpose: .verifyMAC, caller: actor) { (key, event) throws(KeywardError) -> Bool in
            let number = version ?? key.metadata.currentVersion
            event.version = number
            try checkDecryptable(key, number)
            let loaded = try await records.loadVersion(key, number)
            do throws(KeywardCryptoError) {
                let valid = try loaded.material.verifyMAC(tag, for: message)
                event.detail = valid ? "valid" : "invalid tag"
                return valid
            } catch {
                throw .crypto(error)
            }
        }
    }

    // MARK: Public keys, agreement, KEM, random

    /// The public key of `version` (default: the newest) of an asymmetric key.
    public func publicKey(key reference: String, version: UInt32? = nil, actor: Caller) async throws(KeywardError) -> PublicKey {
        try await withUsableKey(reference, .publicKey, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> PublicKey in
            guard !key.metadata.spec.isSymmetric else { throw .notPermitted("\(key.metadata.spec.rawValue) keys are symmetric and have no public key") }
            let loaded = try await records.loadVersion(key, version ?? key.metadata.currentVersion)
            event.version = loaded.number
            do throws(KeywardCryptoError) { return try loaded.material.publicKey() } catch { throw .crypto(error) }
        }
    }

    /// The raw ECDH / X25519 shared secret between the key's newest version and `peer`.
    public func deriveSharedSecret(key reference: String, peer: PublicKey, actor: Caller) async throws(KeywardError) -> SecretBytes {
        try await withUsableKey(reference, .deriveSharedSecret, purpose: .deriveSharedSecret, caller: actor) { (key, event) throws(KeywardError) -> SecretBytes in
            let loaded = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = loaded.number
            do throws(KeywardCryptoError) { return try loaded.material.sharedSecret(with: peer) } catch { throw .crypto(error) }
        }
    }

    /// The shared secret with a peer public key given as SPKI DER (P-256, P-384, X25519), parsed
    /// as the key's own spec.
    public func deriveSharedSecret(key reference: String, peerEncoded: [UInt8], actor: Caller) async throws(KeywardError) -> SecretBytes {
        try await withUsableKey(reference, .deriveSharedSecret, purpose: .deriveSharedSecret, caller: actor) { (key, event) throws(KeywardError) -> SecretBytes in
            let loaded = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = loaded.number
            do throws(KeywardCryptoError) {
                return try loaded.material.sharedSecret(with: try PublicKey(spec: key.metadata.spec, bytes: peerEncoded))
            } catch {
                throw .crypto(error)
            }
        }
    }

    /// Decapsulates an ML-KEM / X-Wing encapsulation made to `version` (default: the newest).
    public func decapsulate(_ encapsulated: [UInt8], key reference: String, version: UInt32? = nil, actor: Caller) async throws(KeywardError) -> SecretBytes {
        try await withUsableKey(reference, .decapsulate, purpose: .decapsulate, caller: actor) { (key, event) throws(KeywardError) -> SecretBytes in
            let number = version ?? key.metadata.currentVersion
            event.version = number
            try checkDecryptable(key, number)
            let loaded = try await records.loadVersion(key, number)
            do throws(KeywardCryptoError) { return try loaded.material.decapsulate(encapsulated) } catch { throw .crypto(error) }
        }
    }

    /// `count` random bytes (1 to 1,024) from the system's random source.
    public func random(count: Int, actor: Caller) async throws(KeywardError) -> [UInt8] {
        guard (1...1024).contains(count) else { throw .invalidArgument("random byte count \(count); ask for 1 to 1024") }
        return try await auditor.audited(.key(.random), caller: actor, key: nil) { (event) throws(KeywardError) -> [UInt8] in
            try authorizeSomewhere(.random, actor)
            var generator = SystemRandomNumberGenerator()
            return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        }
    }
}
