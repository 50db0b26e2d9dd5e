import Foundation
import Synchronization

/// Token buckets per name (a principal, or a peer address): `rate` requests per second on
/// average, bursts up to `burst`. A rate of zero turns limiting off.
///
/// The table holds at most `capacity` buckets. When a new name arrives at a full table one
/// bucket is evicted in constant time (the first in the dictionary's order), so neither a flood
/// of new names nor a full table makes a request scan the table under the lock.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    let capacity: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    init(rate: Double, burst: Double, capacity: Int = 100_000) {
        self.rate = rate
        self.burst = max(burst, 1)
        self.capacity = max(capacity, 1)
    }

    /// Takes one token for `name`. Nil when the request may proceed; otherwise the whole
    /// seconds to wait.
    func admit(_ name: String) -> Int? {
        guard rate > 0 else { return nil }
        let now = ContinuousClock.now
        return buckets.withLock { buckets -> Int? in
            if buckets[name] == nil, buckets.count >= capacity {
                buckets.remove(at: buckets.startIndex)
            }
            var bucket = buckets[name] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + bucket.updated.duration(to: now).seconds * rate)
            bucket.updated = now
            defer { buckets[name] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }

    /// Takes `units` more tokens for `name` after the fact (the items of a batch it was admitted
    /// for, beyond the one `admit` took): the bucket may fall below zero, and the requests that
    /// follow wait until it has refilled, so a batch costs what its items would one by one.
    func charge(_ name: String, _ units: Int) {
        guard rate > 0, units > 0 else { return }
        let now = ContinuousClock.now
        buckets.withLock { buckets in
            guard var bucket = buckets[name] else { return }
            bucket.tokens = min(burst, bucket.tokens + bucket.updated.duration(to: now).seconds * rate) - Double(units)
            bucket.updated = now
            buckets[name] = bucket
        }
    }

    /// Gives back the token `admit` took for `name` (the attempt it paid for succeeded).
    func refund(_ name: String) {
        guard rate > 0 else { return }
        buckets.withLock { buckets in
            if var bucket = buckets[name] {
                bucket.tokens = min(burst, bucket.tokens + 1)
                buckets[name] = bucket
            }
        }
    }

    /// Buckets held now (for tests of the bound).
    var count: Int { buckets.withLock { $0.count } }
}
