import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The server's recent traffic, for the console's health charts: every `interval` it takes
/// `ServiceMetrics.snapshot()` and keeps what changed since the previous one (requests per
/// second, p50 and p99 latency, errors by code), for the last `capacity` intervals.
///
/// Figures come from the server's own metrics only; nothing a request carried is kept.
final class MetricsHistory: Service, Sendable {
    /// One interval's traffic.
    struct Sample: Sendable, Equatable {
        /// When the interval ended.
        var at: Date
        /// Requests answered per second over the interval.
        var requestsPerSecond: Double
        /// The latency bound at or under which half the interval's requests finished, in
        /// milliseconds (the upper bound of the bucket; nil when there were none).
        var p50Milliseconds: Double?
        /// The same for 99 in 100 requests.
        var p99Milliseconds: Double?
        /// Error responses in the interval, by code.
        var errors: [String: Int]
    }

    let metrics: ServiceMetrics
    let interval: Duration
    let capacity: Int
    private let state = Mutex<(last: MetricsSnapshot?, samples: [Sample])>((nil, []))

    init(metrics: ServiceMetrics, interval: Duration = .seconds(5), capacity: Int = 120) {
        self.metrics = metrics
        self.interval = interval
        self.capacity = capacity
    }

    /// The samples kept, oldest first.
    var samples: [Sample] { state.withLock { $0.samples } }

    /// Takes one sample now (the run loop calls this every `interval`; tests call it directly).
    func record(now: Date = Date()) {
        let current = metrics.snapshot()
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        state.withLock { state in
            defer { state.last = current }
            guard let last = state.last else { return }
            let buckets = zip(current.latencyBuckets, last.latencyBuckets).map { $0 - $1 }
            var errors: [String: Int] = [:]
            for (code, count) in current.errors where count > last.errors[code, default: 0] {
                errors[code] = count - last.errors[code, default: 0]
            }
            state.samples.append(Sample(at: now, requestsPerSecond: Double(current.requests - last.requests) / max(seconds, 0.001),
                                        p50Milliseconds: Self.quantile(0.5, buckets), p99Milliseconds: Self.quantile(0.99, buckets), errors: errors))
            if state.samples.count > capacity { state.samples.removeFirst(state.samples.count - capacity) }
        }
    }

    /// The upper bound (ms) of the bucket holding quantile `q` of `counts`; beyond the last
    /// bound, the last bound. Nil when `counts` holds no request.
    static func quantile(_ q: Double, _ counts: [Int]) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = Int((Double(total) * q).rounded(.up))
        var seen = 0
        let bounds = ServiceMetrics.boundsNanoseconds
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return Double(bounds[min(index, bounds.count - 1)]) / 1_000_000 }
        }
        return Double(bounds[bounds.count - 1]) / 1_000_000
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            self.record()
            while !Task.isCancelled {
                do { try await Task.sleep(for: self.interval) } catch { return }
                self.record()
            }
        }
    }
}
