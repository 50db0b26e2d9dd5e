import Foundation
import KeywardCrypto
import Synchronization

/// Limits on reusing one data key, as the AWS Encryption SDK's caching materials manager has
/// them: a data key is used for at most `maximumMessages` messages and `maximumBytes` bytes, for
/// at most `maximumAge`; the cache holds at most `capacity` keys.
public struct DataKeyCachePolicy: Sendable, Equatable {
    /// How long a data key is reused.
    public var maximumAge: Duration
    /// How many messages one data key encrypts.
    public var maximumMessages: Int
    /// How many plaintext bytes one data key encrypts.
    public var maximumBytes: Int
    /// How many data keys are held (encrypt and decrypt side each).
    public var capacity: Int

    /// A policy; AES-GCM with random nonces stays far below its 2^32-message bound per key.
    public init(maximumAge: Duration = .seconds(300), maximumMessages: Int = 10_000, maximumBytes: Int = 1 << 30, capacity: Int = 100) {
        self.maximumAge = maximumAge
        self.maximumMessages = min(maximumMessages, 1 << 30)
        self.maximumBytes = maximumBytes
        self.capacity = max(1, capacity)
    }
}

/// A data key held by the cache, in locked memory.
final class CachedDataKey: Sendable {
    /// The data key, as an AES-256-GCM key of Keyward's own format.
    let material: KeyMaterial
    let sealed: [UInt8]
    let created: ContinuousClock.Instant
    let usage = Mutex<(messages: Int, bytes: Int)>((0, 0))

    /// Takes ownership of the 32-byte data key `secret`.
    init(secret: consuming SecretBytes, sealed: [UInt8]) throws(KeywardCryptoError) {
        self.material = try KeyMaterial(spec: .aes256GCM, secret: secret)
        self.sealed = sealed
        self.created = .now
    }
}

/// Data keys for encryption (by master key and context) and for decryption (by sealed key and
/// context), each bounded by the policy.
final class DataKeyCache: Sendable {
    let policy: DataKeyCachePolicy
    private let encrypting = Mutex<[String: CachedDataKey]>([:])
    private let decrypting = Mutex<[[UInt8]: CachedDataKey]>([:])

    init(policy: DataKeyCachePolicy) { self.policy = policy }

    /// A cached data key for `slot` that may take one more message of `bytes`, with the use
    /// counted; nil when none (or the cached one is spent).
    func reserve(_ slot: String, bytes: Int) -> CachedDataKey? {
        encrypting.withLock { entries -> CachedDataKey? in
            guard let entry = entries[slot] else { return nil }
            guard entry.created.duration(to: .now) < policy.maximumAge else {
                entries[slot] = nil
                return nil
            }
            let granted = entry.usage.withLock { usage -> Bool in
                guard usage.messages + 1 <= policy.maximumMessages, usage.bytes + bytes <= policy.maximumBytes else { return false }
                usage.messages += 1
                usage.bytes += bytes
                return true
            }
            if !granted { entries[slot] = nil }
            return granted ? entry : nil
        }
    }

    /// Caches a fresh data key for `slot`, with its first message counted.
    func store(_ key: CachedDataKey, slot: String, bytes: Int) {
        key.usage.withLock { $0 = (1, bytes) }
        encrypting.withLock { entries in
            if entries.count >= policy.capacity { entries.removeAll(keepingCapacity: true) }
            entries[slot] = key
        }
    }

    func opened(_ identity: [UInt8]) -> CachedDataKey? {
        decrypting.withLock { entries -> CachedDataKey? in
            guard let entry = entries[identity] else { return nil }
            if entry.created.duration(to: .now) >= policy.maximumAge {
                entries[identity] = nil
                return nil
            }
            return entry
        }
    }

    func storeOpened(_ key: CachedDataKey, identity: [UInt8]) {
        decrypting.withLock { entries in
            if entries.count >= policy.capacity { entries.removeAll(keepingCapacity: true) }
            entries[identity] = key
        }
    }
}
