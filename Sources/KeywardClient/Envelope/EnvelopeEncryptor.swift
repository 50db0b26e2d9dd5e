import Foundation
import KeywardCrypto

/// Envelope encryption with a Keyward key: each message is encrypted locally, as a Keyward
/// ciphertext (AES-256-GCM, the same format and code as the service's) under a data key, and the data key, sealed by the service under the Keyward key and bound to
/// the encryption context, travels in the message (format: docs/formats.md, "Envelope message").
///
/// Without a cache every message gets its own data key (one service call per message). With a
/// `DataKeyCachePolicy`, data keys are reused within its age, message and byte limits, and
/// opened data keys are remembered for the same age, so most messages cost no service call.
public final class EnvelopeEncryptor: Sendable {
    static let magic: [UInt8] = Array("KWE2".utf8)

    let client: KeywardClient
    let key: String
    let cache: DataKeyCache?

    /// An encryptor for messages under `key` (id or alias), with an optional data-key cache.
    public init(client: KeywardClient, key: String, cache: DataKeyCachePolicy? = nil) {
        self.client = client
        self.key = key
        self.cache = cache.map(DataKeyCache.init)
    }

    /// Encrypts `plaintext`; the same `context` is needed to decrypt.
    public func seal(_ plaintext: [UInt8], context: [String: String] = [:]) async throws(KeywardClientError) -> [UInt8] {
        let slot = Self.slot(key, context)
        let dataKey: CachedDataKey
        if let cached = cache?.reserve(slot, bytes: plaintext.count) {
            dataKey = cached
        } else {
            let fresh = try await client.generateDataKey(key: key, context: context)
            do { dataKey = try CachedDataKey(secret: fresh.plaintext, sealed: fresh.ciphertext) } catch {
                throw .invalidResponse("the service's data key is not an AES-256 key: \(error)")
            }
            cache?.store(dataKey, slot: slot, bytes: plaintext.count)
        }
        guard dataKey.sealed.count <= Int(UInt16.max) else { throw .invalidResponse("sealed data key too long") }
        var message = Self.magic
        message.append(UInt8(dataKey.sealed.count >> 8))
        message.append(UInt8(dataKey.sealed.count & 0xFF))
        message.append(contentsOf: dataKey.sealed)
        do throws(KeywardCryptoError) {
            message += try dataKey.material.seal(plaintext, keyID: Self.dataKeyID(dataKey.sealed), version: 1, context: EncryptionContext(context))
            return message
        } catch {
            throw .invalidEnvelope("local encryption failed: \(error)")
        }
    }

    /// Decrypts a message made by `seal` with the same `context`, under this encryptor's key.
    ///
    /// - Throws: `invalidEnvelope` for a malformed or altered message or a wrong context (the
    ///   service refuses to open the data key, or the local ciphertext does not authenticate).
    public func open(_ message: [UInt8], context: [String: String] = [:]) async throws(KeywardClientError) -> [UInt8] {
        guard message.count >= Self.magic.count + 2, Array(message.prefix(4)) == Self.magic else {
            throw .invalidEnvelope("not a Keyward envelope message (no KWE2 header)")
        }
        let length = Int(message[4]) << 8 | Int(message[5])
        let bodyStart = 6 + length
        guard message.count >= bodyStart else { throw .invalidEnvelope("truncated message") }
        let sealed = Array(message[6..<bodyStart])
        let identity = SHA256Hash.hash(concatenating: sealed, Array(Self.slot(key, context).utf8))
        let dataKey: CachedDataKey
        if let cached = cache?.opened(identity) {
            dataKey = cached
        } else {
            var plaintext: [UInt8]
            // The service opens the data key only if it was sealed under this encryptor's key: a
            // message under any other key the credential can use is refused, not decrypted.
            do { plaintext = try await client.decrypt(sealed, key: key, context: context) } catch {
                if case .api(let code, _, _) = error, code == "invalid_ciphertext" || code == "invalid_request" {
                    throw .invalidEnvelope("the data key does not open (altered message or wrong context): \(error)")
                }
                throw error
            }
            // Wiped in place: `plaintext` is the only reference to the data key's bytes.
            defer { SecureZero.wipe(&plaintext) }
            guard plaintext.count == 32 else { throw .invalidEnvelope("the data key is not 32 bytes") }
            do { dataKey = try CachedDataKey(secret: try SecretBytes(copying: plaintext), sealed: sealed) } catch {
                throw .configuration("the data key could not be held in locked memory: \(error)")
            }
            cache?.storeOpened(dataKey, identity: identity)
        }
        do throws(KeywardCryptoError) {
            return try dataKey.material.open(message[bodyStart...], keyID: Self.dataKeyID(sealed), version: 1, context: EncryptionContext(context))
        } catch {
            throw .invalidEnvelope("the message does not authenticate (altered, truncated or another context)")
        }
    }

    /// The key id the local ciphertext names: the first 16 bytes of SHA-256 over a label and the
    /// sealed data key, so the local ciphertext is bound to the data key that travels with it.
    static func dataKeyID(_ sealed: [UInt8]) -> KeyID {
        let digest = SHA256Hash.hash(concatenating: Array("keyward envelope data key\u{0}".utf8), sealed)
        // 16 bytes of a 32-byte digest always make a key id.
        return try! KeyID(bytes: digest.prefix(16))
    }

    /// The cache slot: the key reference and the context, canonically ordered and length-prefixed
    /// (so no two contexts share a slot).
    static func slot(_ key: String, _ context: [String: String]) -> String {
        ([key] + context.keys.sorted().flatMap { [$0, context[$0]!] }).map { "\($0.utf8.count):\($0)" }.joined()
    }
}
