import Foundation
import Synchronization

/// Token buckets per principal: `rate` requests per second on average, bursts up to `burst`.
/// A rate of zero turns limiting off. The table is bounded: idle buckets are dropped when it
/// grows past `capacity`.
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
        self.capacity = capacity
    }

    /// Nil when the request may proceed; otherwise the whole seconds to wait.
    func admit(_ principal: String) -> Int? {
        guard rate > 0 else { return nil }
        let now = ContinuousClock.now
        return buckets.withLock { buckets -> Int? in
            if buckets.count >= capacity, buckets[principal] == nil {
                buckets = buckets.filter { $0.value.updated.duration(to: now) < .seconds(burst / rate) }
            }
            var bucket = buckets[principal] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + bucket.updated.duration(to: now).seconds * rate)
            bucket.updated = now
            defer { buckets[principal] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }
}
