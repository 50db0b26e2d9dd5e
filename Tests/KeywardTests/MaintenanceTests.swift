import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage
import Testing

@Suite("Scheduled maintenance")
struct MaintenanceTests {
    @Test("a sweep destroys keys past their date and rotates keys whose period passed, with no request touching them")
    func sweep() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let doomed = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let rotating = try await service.createKey(CreateKeyRequest(rotationPeriodDays: 30), actor: .owner("t")).metadata.id.description
        let idle = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        _ = try await service.transition(key: doomed, .disable, actor: .owner("t"))
        _ = try await service.transition(key: doomed, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
        let early = try await service.runMaintenance()
        #expect(early.keys == 3 && early.destroyed == 0 && early.rotated == 0 && early.failures.isEmpty)

        fixture.manualClock.advance(by: 31 * 86_400)
        let report = try await service.runMaintenance()
        #expect(report.destroyed == 1 && report.rotated == 1 && report.failures.isEmpty, "\(report)")
        // The store says so, read by a fresh process (nothing cached, nothing maintained on read).
        let rows = try fixture.fetch("SELECT sealed FROM key_versions WHERE key_id = ?", [Data(try KeyID(string: doomed).bytes)])
        #expect(!rows.isEmpty && rows.allSatisfy { ($0["sealed"] as Data? ?? Data()).isEmpty }, "material left behind")
        let entries = try await service.auditTail(20).map(\.event)
        #expect(entries.contains { $0.operation == "destroy" && $0.actor == SystemJob.scheduledDestruction.principal })
        #expect(entries.contains { $0.operation == "rotate" && $0.actor == SystemJob.periodicRotation.principal })
        #expect(try await service.describe(key: rotating, actor: .owner("t")).metadata.currentVersion == 2)
        #expect(try await service.describe(key: idle, actor: .owner("t")).metadata.currentVersion == 1)
        // Each version records how it came: the period's rotation, then one asked for.
        _ = try await service.rotate(key: rotating, actor: .owner("t"))
        let versions = try await service.versions(key: rotating, actor: .owner("t"))
        #expect(versions.map(\.number) == [1, 2, 3] && versions.map(\.rotation) == [nil, "scheduled", "requested"], "\(versions)")
        let outsider = Caller.principal("token:x:o", policy: AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]))
        await #expect(throws: KeywardError.self) { _ = try await service.versions(key: rotating, actor: outsider) }
        // A second sweep finds nothing due.
        let again = try await service.runMaintenance()
        #expect(again.destroyed == 0 && again.rotated == 0)
    }

    @Test("a backup and a KEK rotation after a key's destruction date leave its material out")
    func destroyedMaterialStaysOut() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let doomed = try await service.createKey(CreateKeyRequest(aliases: ["doomed"]), actor: .owner("t")).metadata.id.description
        _ = try await service.createKey(CreateKeyRequest(aliases: ["kept"]), actor: .owner("t"))
        _ = try await service.transition(key: doomed, .disable, actor: .owner("t"))
        _ = try await service.transition(key: doomed, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
        fixture.manualClock.advance(by: 8 * 86_400)

        let kdf = KDFParameters(algorithm: .argon2id(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1), salt: [UInt8](repeating: 7, count: 16))
        let bundle = try await service.createBackup(protection: .passphrase(Passphrase(SecretBytes(copying: Array("pass".utf8))), kdf), actor: .owner("t"))
        let contents = try KeyService.openBackup(bundle.bytes, passphrase: SecretBytes(copying: Array("pass".utf8)))
        let backedUp = try #require(contents.keys.first { $0.metadata.id.description == doomed })
        #expect(backedUp.metadata.state == .destroyed && !backedUp.holdsMaterial)
        #expect(contents.keys.first { $0.aliases == ["kept"] }?.holdsMaterial == true)

        // The same for a KEK rotation, on a second key that falls due afterwards.
        let later = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        _ = try await service.transition(key: later, .disable, actor: .owner("t"))
        _ = try await service.transition(key: later, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
        fixture.manualClock.advance(by: 8 * 86_400)
        let rotated = try await service.rotateKEK(root: try KeyFileRootOfTrust(path: fixture.keyFile), actor: .owner("t"))
        let rows = try fixture.fetch("SELECT sealed FROM key_versions WHERE key_id = ?", [Data(try KeyID(string: later).bytes)])
        #expect(!rows.isEmpty && rows.allSatisfy { ($0["sealed"] as Data? ?? Data()).isEmpty }, "re-sealed instead of destroyed")
        #expect(try await rotated.verifyStore().isIntact)
    }
}
