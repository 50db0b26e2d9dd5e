import Foundation
import Keyward
import KeywardTestSupport
import Testing

@Suite("Resources a dropped service releases")
struct ResourceReleaseTests {
    /// Opens the fixture's store as a new service, makes one audited call, and drops it.
    static func cycle(_ fixture: StoreFixture) async throws {
        let service = try await fixture.reopen()
        _ = try await service.random(count: 8, actor: .owner("test"))
    }

    /// SQLite defers closing a file another connection of the process holds locks on (closing it
    /// would drop that connection's POSIX locks) and reuses the descriptor on the next open, so
    /// a few stay open while the fixture's own service holds the store; a leak grows with every
    /// cycle instead.
    @Test("services opened on a store, used (an audited call) and dropped do not accumulate open files")
    func droppedServicesDoNotAccumulateFiles() async throws {
        let fixture = try await StoreFixture.make()
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        for _ in 0..<5 { try await Self.cycle(fixture) }
        let settled = OpenFiles.count(inside: fixture.directory)
        for _ in 0..<20 { try await Self.cycle(fixture) }
        // SQLite's deferred closes make the count move by one or two between samples; a leak of
        // even one file per cycle adds twenty, and the audit writer left running adds 120.
        let slack = 4
        // The last dropped services' writer threads may still be closing their files.
        let after = try await OpenFiles.settled(inside: fixture.directory, atMost: settled + slack)
        #expect(after <= settled + slack, "each open/drop cycle left files open: \(settled) after 5 cycles, \(after) after 25")
    }
}
