import CoreMetrics
import Foundation
import Keyward
import Prometheus
import Synchronization

/// The server's metrics, emitted through swift-metrics into a Prometheus registry of its own:
/// requests by method, route template and status; latency histograms per route; errors by code;
/// requests in flight; the key cache's hits, misses and size.
///
/// Labels come from closed sets: route templates (`/v1/keys/{key}/encrypt`, or `unmatched`),
/// the standard HTTP methods (anything else is `other`), status codes and Keyward's error codes.
/// Never a path, a key reference, a principal or anything else a request carried, so nothing
/// secret and nothing of unbounded cardinality reaches them.
///
/// Each server has its own registry (no process-wide `MetricsSystem.bootstrap`), so several
/// servers in one process, as in the tests, count separately.
public final class ServiceMetrics: Sendable {
    /// Upper bounds of the latency buckets.
    static let buckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
                                      .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                      .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500)]

    /// The methods that get a label of their own.
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    private struct RequestKey: Hashable {
        let method: String
        let route: String
        let status: Int
    }

    /// The swift-metrics handles of one (method, route, status), made once and reused.
    private struct RequestHandles {
        let requests: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// The handles made so far, and the running totals `snapshot()` reports (kept under the
    /// lock each request takes anyway to find its handles).
    private struct Handles {
        var byKey: [RequestKey: RequestHandles] = [:]
        var totals = MetricsSnapshot(requests: 0, latencyBuckets: Array(repeating: 0, count: ServiceMetrics.buckets.count + 1), errors: [:])
    }

    private let handles = Mutex(Handles())
    private let errors = Mutex<[String: CoreMetrics.Counter]>([:])
    private let inFlight = Atomic<Int>(0)
    private let inFlightMeter: Meter
    private let cacheHits: CoreMetrics.Counter
    private let cacheMisses: CoreMetrics.Counter
    private let cacheKeys: Meter
    /// The cache totals already counted, so each scrape adds only what is new.
    private let cacheCounted = Mutex<(hits: Int, misses: Int)>((0, 0))

    /// Empty metrics.
    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["keyward_http_request_duration_seconds"] = Self.buckets
        self.factory = factory
        inFlightMeter = Meter(label: "keyward_http_requests_in_flight", factory: factory)
        cacheHits = CoreMetrics.Counter(label: "keyward_key_cache_hits_total", factory: factory)
        cacheMisses = CoreMetrics.Counter(label: "keyward_key_cache_misses_total", factory: factory)
        cacheKeys = Meter(label: "keyward_key_cache_keys", factory: factory)
    }

    package func requestStarted() {
        let now = inFlight.add(1, ordering: .relaxed).newValue
        inFlightMeter.set(now)
    }

    /// Requests begun and not yet answered.
    var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    package func requestFinished(method: String, route: String, status: Int, duration: Duration, errorCode: String?) {
        let now = inFlight.subtract(1, ordering: .relaxed).newValue
        inFlightMeter.set(now)
        let key = RequestKey(method: Self.methods.contains(method) ? method : "other", route: route, status: status)
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        let request = handles.withLock { handles in
            handles.totals.requests += 1
            handles.totals.latencyBuckets[Self.bucket(nanoseconds)] += 1
            if let errorCode { handles.totals.errors[errorCode, default: 0] += 1 }
            if let existing = handles.byKey[key] { return existing }
            let made = RequestHandles(
                requests: CoreMetrics.Counter(label: "keyward_http_requests_total",
                                              dimensions: [("method", key.method), ("route", route), ("status", String(status))], factory: factory),
                duration: CoreMetrics.Timer(label: "keyward_http_request_duration_seconds", dimensions: [("route", route)], factory: factory))
            handles.byKey[key] = made
            return made
        }
        request.requests.increment()
        request.duration.recordNanoseconds(nanoseconds)
        if let errorCode {
            let counter = errors.withLock { errors in
                if let existing = errors[errorCode] { return existing }
                let made = CoreMetrics.Counter(label: "keyward_http_errors_total", dimensions: [("code", errorCode)], factory: factory)
                errors[errorCode] = made
                return made
            }
            counter.increment()
        }
    }

    /// The totals since the server started: requests answered, their latencies by bucket, errors
    /// by code. `MetricsHistory` samples it for the console's charts.
    func snapshot() -> MetricsSnapshot { handles.withLock { $0.totals } }

    /// The index of the first bucket whose bound `nanoseconds` does not exceed (the last index:
    /// beyond every bound).
    private static func bucket(_ nanoseconds: Int64) -> Int {
        var index = 0
        for bound in boundsNanoseconds {
            if nanoseconds <= bound { return index }
            index += 1
        }
        return index
    }

    /// `buckets` in nanoseconds.
    static let boundsNanoseconds: [Int64] = buckets.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }

    /// The Prometheus text exposition (version 0.0.4), with the key cache's figures as of now.
    package func render(cache: (hits: Int, misses: Int, held: Int)) -> String {
        let (newHits, newMisses) = cacheCounted.withLock { counted in
            defer { counted = (max(counted.hits, cache.hits), max(counted.misses, cache.misses)) }
            return (max(0, cache.hits - counted.hits), max(0, cache.misses - counted.misses))
        }
        cacheHits.increment(by: newHits)
        cacheMisses.increment(by: newMisses)
        cacheKeys.set(cache.held)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Running totals of the requests a server answered (`ServiceMetrics.snapshot()`).
struct MetricsSnapshot: Sendable, Equatable {
    /// Requests answered.
    var requests: Int
    /// Requests per latency bucket (`ServiceMetrics.buckets`, then one past the last bound).
    var latencyBuckets: [Int]
    /// Error responses by Keyward error code.
    var errors: [String: Int]
}
