import Foundation
import Keyward
import Testing

@Suite("Resources a dropped service releases")
struct ResourceReleaseTests {
    /// This process's open file descriptors on files inside `directory`.
    static func descriptors(into directory: URL) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let prefix = directory.resolvingSymlinksInPath().path
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return false }
            return target.hasPrefix(prefix)
        }.count
    }

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
        let settled = Self.descriptors(into: fixture.directory)
        for _ in 0..<20 { try await Self.cycle(fixture) }
        let after = Self.descriptors(into: fixture.directory)
        #expect(after <= settled, "each open/drop cycle left files open: \(settled) after 5 cycles, \(after) after 25")
    }
}
