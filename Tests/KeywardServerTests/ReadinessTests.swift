import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Testing
@testable import KeywardServer

@Suite("Readiness while draining")
struct ReadinessTests {
    @Test("once graceful shutdown begins, /v1/ready answers 503 while /v1/health stays 200")
    func drainingIsNotReady() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        // The watcher the application runs marks the server as draining when shutdown begins.
        let watcher = DrainWatcher(state: fixture.server.shutdown, logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [.init(service: watcher)], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        try await fixture.application().test(.router) { client in
            #expect(try await client.call(.get, "/v1/ready", token: nil).status == .ok)
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(fixture.server.shutdown.isDraining)
            let ready = try await client.call(.get, "/v1/ready", token: nil)
            #expect(ready.status == .serviceUnavailable && ready.string("status") == "shutting down")
            #expect(try await client.call(.get, "/v1/health", token: nil).status == .ok)
        }
    }
}
