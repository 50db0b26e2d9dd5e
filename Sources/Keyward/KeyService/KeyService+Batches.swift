import Foundation
import KeywardCrypto

/// One plaintext of a batch encrypt, with the context it is bound to.
public struct EncryptItem: Sendable {
    /// The bytes to encrypt (at most `KeyService.maximumPlaintextBytes`).
    public var plaintext: [UInt8]
    /// The encryption context the ciphertext is bound to.
    public var context: EncryptionContext

    /// An item of `plaintext` bound to `context`.
    public init(_ plaintext: [UInt8], context: EncryptionContext = .empty) {
        self.plaintext = plaintext
        self.context = context
    }
}

/// One ciphertext of a batch decrypt, with the context it was bound to.
public struct DecryptItem: Sendable {
    /// A Keyward ciphertext.
    public var ciphertext: [UInt8]
    /// The encryption context it was bound to.
    public var context: EncryptionContext

    /// An item of `ciphertext` bound to `context`.
    public init(_ ciphertext: [UInt8], context: EncryptionContext = .empty) {
        self.ciphertext = ciphertext
        self.context = context
    }
}

/// One input of a batch sign.
public struct SignItem: Sendable {
    /// The message or digest to sign.
    public var input: SigningInput
    /// The ML-DSA context string, if any.
    public var context: [UInt8]?

    /// An item signing `input` (with an ML-DSA `context`).
    public init(_ input: SigningInput, context: [UInt8]? = nil) {
        self.input = input
        self.context = context
    }
}

/// Batches: many items under one key in one operation. The key is resolved, authorised and
/// checked once, and the batch is one audit entry (its item count and how many failed, the
/// first failure named), as one request is one audit entry. An item's own fault (a plaintext
/// too long, a ciphertext altered or made under another key, a bad input) fails that item
/// only; what fails every item (unknown key, policy, state) fails the call.
extension KeyService {
    /// Most items in one batch.
    public static let maximumBatchItems = 1000

    /// Encrypts each item under the key's newest version.
    ///
    /// - Throws: `invalidArgument` for an empty or oversized batch; what `encrypt` throws for
    ///   the key (not found, access denied, wrong state, ...).
    public func encryptBatch(_ items: [EncryptItem], key reference: String, actor: Caller) async throws(KeywardError) -> [Result<EncryptResult, KeywardError>] {
        try Self.checkBatch(items.count)
        actor.context.receipt?.count(extra: items.count - 1)
        return try await withUsableKey(reference, .encrypt, purpose: .encrypt, caller: actor) { (key, event) throws(KeywardError) in
            let id = key.row.id
            // Every item is one random-nonce encryption counted against the version's limit.
            let version = try await versionForEncryption(key, count: items.count)
            event.version = version.number
            let results = items.map { item -> Result<EncryptResult, KeywardError> in
                guard item.plaintext.count <= Self.maximumPlaintextBytes else {
                    return .failure(.invalidArgument("plaintext of \(item.plaintext.count) bytes; encrypt at most \(Self.maximumPlaintextBytes) directly"))
                }
                do throws(KeywardError) { try checkContext(key, item.context) } catch { return .failure(error) }
                do throws(KeywardCryptoError) {
                    let ciphertext = try version.material.seal(item.plaintext, keyID: id, version: version.number, context: item.context)
                    return .success(EncryptResult(ciphertext: ciphertext, keyID: id, version: version.number))
                } catch {
                    return .failure(.crypto(error))
                }
            }
            event.detail = Self.batchDetail(results)
            return results
        }
    }

    /// Decrypts each item, which must have been made under this key (any version it may still
    /// decrypt with).
    public func decryptBatch(_ items: [DecryptItem], key reference: String, actor: Caller) async throws(KeywardError) -> [Result<DecryptResult, KeywardError>] {
        try Self.checkBatch(items.count)
        actor.context.receipt?.count(extra: items.count - 1)
        return try await withUsableKey(reference, .decrypt, purpose: .decrypt, caller: actor) { (key, event) throws(KeywardError) in
            let id = key.row.id
            var versions: [UInt32: LoadedVersion] = [:]
            var results: [Result<DecryptResult, KeywardError>] = []
            results.reserveCapacity(items.count)
            for item in items {
                do throws(KeywardError) {
                    let header: CiphertextHeader
                    do throws(KeywardCryptoError) { header = try CiphertextHeader(parsing: item.ciphertext) } catch { throw .crypto(error) }
                    guard header.keyID == id else { throw .ciphertextKeyMismatch(ciphertextKey: header.keyID, named: reference) }
                    try checkContext(key, item.context)
                    let version: LoadedVersion
                    if let loaded = versions[header.version] {
                        version = loaded
                    } else {
                        try checkDecryptable(key, header.version)
                        version = try await records.loadVersion(key, header.version)
                        versions[header.version] = version
                    }
                    do throws(KeywardCryptoError) {
                        let plaintext = try version.material.open(item.ciphertext, keyID: id, version: header.version, context: item.context)
                        results.append(.success(DecryptResult(plaintext: plaintext, keyID: id, version: header.version)))
                    } catch {
                        throw .crypto(error)
                    }
                } catch {
                    results.append(.failure(error))
                }
            }
            if versions.count == 1 { event.version = versions.keys.first }
            event.detail = Self.batchDetail(results)
            return results
        }
    }

    /// Signs each item with the key's newest version.
    public func signBatch(_ items: [SignItem], key reference: String, actor: Caller) async throws(KeywardError) -> [Result<SignResult, KeywardError>] {
        try Self.checkBatch(items.count)
        actor.context.receipt?.count(extra: items.count - 1)
        return try await withUsableKey(reference, .sign, purpose: .sign, caller: actor) { (key, event) throws(KeywardError) in
            let id = key.row.id
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = version.number
            let results = items.map { item -> Result<SignResult, KeywardError> in
                do throws(KeywardCryptoError) {
                    return .success(SignResult(signature: try version.material.sign(item.input, context: item.context), keyID: id, version: version.number))
                } catch {
                    return .failure(.crypto(error))
                }
            }
            event.detail = Self.batchDetail(results)
            return results
        }
    }

    private static func checkBatch(_ count: Int) throws(KeywardError) {
        guard (1...maximumBatchItems).contains(count) else {
            throw .invalidArgument("a batch holds 1 to \(maximumBatchItems) items, not \(count)")
        }
    }

    /// The audit detail of a batch: its size, its failures, and the first failure's reason.
    static func batchDetail<T>(_ results: [Result<T, KeywardError>]) -> String {
        var failed = 0
        var first: KeywardError?
        for case .failure(let error) in results {
            failed += 1
            if first == nil { first = error }
        }
        var detail = "batch of \(results.count) items, \(failed) failed"
        if let first { detail += "; first: \(first.description)" }
        return detail
    }
}
