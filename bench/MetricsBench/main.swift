import Foundation
import KeywardServer
import Synchronization

// The cost of recording one request's metrics, release build, bounded loops:
//
//   MetricsBench [ITERATIONS] [THREADS]
//
// Records ITERATIONS requests (default 2,000,000) on each of THREADS threads (default 2, the
// machine's cores) through `ServiceMetrics` (swift-metrics into a Prometheus registry) and
// through a minimal hand-written recorder (a dictionary of counters and bucket arrays under one
// lock, what the server used before), and prints nanoseconds per request for each. Decision 0018
// compares the figure with the CPU time of one encrypt request.

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2_000_000 : 2_000_000
let threads = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 2 : 2
let routes = ["/v1/keys/{key}/encrypt", "/v1/keys/{key}/decrypt", "/v1/keys/{key}/sign", "/v1/keys/{key}/mac"]

/// The hand-written recorder the server used before swift-metrics, reduced to its record path.
final class HandWritten: Sendable {
    struct Key: Hashable { let method: String; let route: String; let status: Int }
    struct Histogram { var counts = [UInt64](repeating: 0, count: 14); var sum = 0.0; var count: UInt64 = 0 }
    struct State { var requests: [Key: UInt64] = [:]; var latency: [String: Histogram] = [:] }
    static let bounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    let state = Mutex(State())
    let inFlight = Atomic<Int>(0)

    func record(method: String, route: String, status: Int, seconds: Double) {
        inFlight.add(1, ordering: .relaxed)
        inFlight.subtract(1, ordering: .relaxed)
        let bucket = Self.bounds.firstIndex { seconds <= $0 }
        state.withLock { state in
            state.requests[Key(method: method, route: route, status: status), default: 0] += 1
            state.latency[route, default: Histogram()].sum += seconds
            if let bucket { state.latency[route, default: Histogram()].counts[bucket] += 1 }
            state.latency[route, default: Histogram()].count += 1
        }
    }
}

func measure(_ name: String, _ body: @escaping @Sendable (Int) -> Void) {
    let start = ContinuousClock.now
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
        for index in 0..<iterations { body(index &+ thread) }
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let perRequest = seconds * 1e9 * Double(threads) / Double(iterations * threads)
    print("\(name)\t\(String(format: "%.0f", perRequest)) ns of CPU per request (\(threads) threads, \(iterations) each)")
}

let metrics = ServiceMetrics()
let handWritten = HandWritten()
for round in 1...2 {
    measure("round \(round) swift-metrics + Prometheus") { index in
        metrics.requestStarted()
        metrics.requestFinished(method: "POST", route: routes[index & 3], status: 200, duration: .microseconds(300), errorCode: nil)
    }
    measure("round \(round) hand-written") { index in
        handWritten.record(method: "POST", route: routes[index & 3], status: 200, seconds: 0.0003)
    }
}
