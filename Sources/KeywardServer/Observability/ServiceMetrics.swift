import Foundation
import Keyward
import Synchronization

/// The server's Prometheus metrics: requests by method, route template and status; latency
/// histograms per route; errors by code; requests in flight; the key cache's hits and misses.
///
/// Labels are route templates (`/v1/keys/{key}/encrypt`) and error codes, never paths, key
/// references, principals or anything a request carried, so nothing secret and nothing of
/// unbounded cardinality reaches them.
public final class ServiceMetrics: Sendable {
    /// Upper bounds of the latency buckets, in seconds.
    static let buckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

    private struct RequestKey: Hashable {
        let method: String
        let route: String
        let status: Int
    }

    private struct Histogram {
        var counts = [UInt64](repeating: 0, count: ServiceMetrics.buckets.count)
        var sum = 0.0
        var count: UInt64 = 0

        mutating func record(_ seconds: Double, bucket: Int?) {
            if let bucket { counts[bucket] += 1 }
            sum += seconds
            count += 1
        }
    }

    private struct State {
        var requests: [RequestKey: UInt64] = [:]
        var latency: [String: Histogram] = [:]
        var errors: [String: UInt64] = [:]
    }

    private let state = Mutex(State())
    private let inFlight = Atomic<Int>(0)

    /// Empty metrics.
    public init() {}

    func requestStarted() { inFlight.add(1, ordering: .relaxed) }

    /// Requests begun and not yet answered.
    var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    func requestFinished(method: String, route: String, status: Int, seconds: Double, errorCode: String?) {
        inFlight.subtract(1, ordering: .relaxed)
        let bucket = Self.buckets.firstIndex { seconds <= $0 }
        state.withLock { state in
            state.requests[RequestKey(method: method, route: route, status: status), default: 0] += 1
            // In place: a copy out and back would copy the bucket array on every request.
            state.latency[route, default: Histogram()].record(seconds, bucket: bucket)
            if let errorCode { state.errors[errorCode, default: 0] += 1 }
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    func render(cache: (hits: Int, misses: Int, held: Int)) -> String {
        let snapshot = state.withLock { $0 }
        var out = ""
        out += "# HELP keyward_http_requests_total HTTP requests by method, route and status.\n# TYPE keyward_http_requests_total counter\n"
        for (key, value) in snapshot.requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "keyward_http_requests_total{method=\"\(key.method)\",route=\"\(Self.escape(key.route))\",status=\"\(key.status)\"} \(value)\n"
        }
        out += "# HELP keyward_http_request_duration_seconds Request latency by route.\n# TYPE keyward_http_request_duration_seconds histogram\n"
        for (route, histogram) in snapshot.latency.sorted(by: { $0.key < $1.key }) {
            var cumulative: UInt64 = 0
            for (index, bound) in Self.buckets.enumerated() {
                cumulative += histogram.counts[index]
                out += "keyward_http_request_duration_seconds_bucket{route=\"\(Self.escape(route))\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "keyward_http_request_duration_seconds_bucket{route=\"\(Self.escape(route))\",le=\"+Inf\"} \(histogram.count)\n"
            out += "keyward_http_request_duration_seconds_sum{route=\"\(Self.escape(route))\"} \(histogram.sum)\n"
            out += "keyward_http_request_duration_seconds_count{route=\"\(Self.escape(route))\"} \(histogram.count)\n"
        }
        out += "# HELP keyward_http_errors_total Error responses by error code.\n# TYPE keyward_http_errors_total counter\n"
        for (code, value) in snapshot.errors.sorted(by: { $0.key < $1.key }) {
            out += "keyward_http_errors_total{code=\"\(code)\"} \(value)\n"
        }
        out += "# HELP keyward_http_requests_in_flight Requests being served.\n# TYPE keyward_http_requests_in_flight gauge\n"
        out += "keyward_http_requests_in_flight \(inFlight.load(ordering: .relaxed))\n"
        out += "# HELP keyward_key_cache_hits_total Key lookups served from the unwrapped-key cache.\n# TYPE keyward_key_cache_hits_total counter\n"
        out += "keyward_key_cache_hits_total \(cache.hits)\n"
        out += "# HELP keyward_key_cache_misses_total Key lookups that read and unsealed from the store.\n# TYPE keyward_key_cache_misses_total counter\n"
        out += "keyward_key_cache_misses_total \(cache.misses)\n"
        out += "# HELP keyward_key_cache_keys Keys held unwrapped in the cache.\n# TYPE keyward_key_cache_keys gauge\n"
        out += "keyward_key_cache_keys \(cache.held)\n"
        return out
    }

    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
