import Foundation
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Background work runs once in the cluster (a lease with a fencing token), and a destruction
/// deletes key material only once every live node has seen it (the barrier), on each backend.
@Suite("Leases, fencing and the destruction barrier on every backend")
struct LeaseAndBarrierTests {
    @Test("a lease goes to one holder at a time; a holder paused past it is fenced: its writes fail inside their transaction and nothing lands",
          arguments: StoreBackend.available)
    func lapsedHolderIsFenced(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let a = try await database.open(), b = try await database.open()
        let id = KeyID()
        let key = KeyRow(id: id, body: [1], revision: 1, mac: [2], spec: "AES-256-GCM", state: "active", createdAt: Date(), tags: [:])
        try await a.insertKey(key, firstVersion: nil, aliases: [])

        // Leases long enough that the suite's load on two cores cannot lapse them between steps.
        let first = try #require(try await a.acquireLease("work", holder: "a", duration: .seconds(3)))
        #expect(try await b.acquireLease("work", holder: "b", duration: .seconds(5)) == nil, "a live lease went to a second holder")
        let renewed = try #require(try await a.acquireLease("work", holder: "a", duration: .seconds(3)))
        #expect(renewed.token == first.token, "renewing changed the fencing token")
        var next = key
        next.revision = 2
        try await LeaseFence.$current.withValue(renewed) { try await a.updateKey(next, expectedRevision: 1) }

        // a pauses past its lease; b takes the work over with a larger token.
        try await Task.sleep(for: .milliseconds(3300))
        let taken = try #require(try await b.acquireLease("work", holder: "b", duration: .seconds(30)))
        #expect(taken.token > renewed.token)
        #expect(try await a.acquireLease("work", holder: "a", duration: .seconds(30)) == nil)

        // a wakes up and carries on writing under its old lease: refused, nothing written.
        var stale = next
        stale.revision = 3
        stale.body = [9]
        let refused = await failure { try await LeaseFence.$current.withValue(renewed) { try await a.updateKey(stale, expectedRevision: 2) } }
        guard case .leaseLost = refused else { Issue.record("a write under a lapsed lease was not refused as leaseLost: \(String(describing: refused))"); return }
        #expect(try await b.key(id)?.revision == 2, "the fenced write landed")
        // The new holder writes; a write outside any lease is not fenced.
        try await LeaseFence.$current.withValue(taken) { try await b.updateKey(stale, expectedRevision: 2) }
        #expect(try await a.key(id)?.body == [9])

        // Released at shutdown: another node takes it at once.
        try await b.releaseLease(taken)
        #expect(try await a.acquireLease("work", holder: "a", duration: .seconds(5))?.token == taken.token + 1)
        #expect(try await a.lease("work")?.holder == "a")
    }

    @Test("a maintenance sweep whose lease lapsed destroys nothing; the node holding the lease destroys the due key, once",
          arguments: StoreBackend.available)
    func sweepRunsOnceUnderTheLease(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let first = try await database.initialize()
        let owner = Caller.owner("t")
        let key = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        _ = try await first.transition(key: key, .scheduleDestruction, waitingDays: 7, actor: owner)
        let keyFile = database.keyFile
        func node(_ name: String, _ clock: ManualClock) async throws -> KeyService {
            try await KeyService.open(store: try await database.open(), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) },
                                      clock: clock, options: KeyService.Options(nodeID: name))
        }
        let late = ManualClock(Date().addingTimeInterval(8 * 86_400)), later = ManualClock(Date().addingTimeInterval(8 * 86_400))
        let a = try await node("a", late), b = try await node("b", later)

        let lapsed = try #require(try await a.acquireLease(MaintenanceLease.name, duration: .milliseconds(500)))
        try await Task.sleep(for: .milliseconds(800))
        let held = try #require(try await b.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        let refused = await keywardError { () async throws(KeywardError) in _ = try await a.runMaintenance(under: lapsed) }
        guard case .storage(.leaseLost) = refused else { Issue.record("the sweep under a lapsed lease was not refused: \(String(describing: refused))"); return }
        #expect(try await first.describe(key: key, actor: owner).metadata.state == .pendingDestruction, "the fenced sweep destroyed the key")

        let report = try await b.runMaintenance(under: held)
        #expect(report.destroyed == 1 && report.purged == 0)
        #expect(try await b.runMaintenance(under: held).destroyed == 0, "the destruction ran twice")
        _ = try await first.refreshFromStore()
        #expect(try await first.describe(key: key, actor: owner).metadata.state == .destroyed)
        #expect(try await b.verifyStore().isIntact)
    }

    @Test("destruction is a barrier: key material is deleted only once every live node reports having seen the destruction; a silent node does not hold it up",
          arguments: StoreBackend.available)
    func destructionWaitsForEveryLiveNode(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let first = try await database.initialize()
        let owner = Caller.owner("t")
        let key = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id
        let sealed = try await first.encrypt([1, 2, 3], key: key.description, actor: owner)
        _ = try await first.transition(key: key.description, .scheduleDestruction, waitingDays: 7, actor: owner)
        let keyFile = database.keyFile
        let clock = ManualClock(Date().addingTimeInterval(8 * 86_400))
        let destroyer = try await KeyService.open(store: try await database.open(), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) },
                                                  clock: clock, options: KeyService.Options(nodeID: "destroyer"))
        let lagging = try await database.node(options: KeyService.Options(coherenceBound: 1, nodeID: "lagging"))
        // A node that died long ago: its last heartbeat is decades old.
        try await database.execute("INSERT INTO nodes (id, seen_generation, heartbeat_at) VALUES ('ghost', 0, 0)")
        _ = try await lagging.refreshFromStore()
        try await lagging.reportHeartbeat()
        func storedMaterial() async throws -> Int {
            Int(try await database.scalar("SELECT count(*) FROM key_versions WHERE length(sealed) > 0")) ?? -1
        }
        #expect(try await storedMaterial() == 1)

        // The lagging node is alive but has not seen the destruction: the key is destroyed
        // (refused everywhere that has seen it) but its material stays until that node catches up.
        try await database.keepAlive(node: "lagging")
        let start = ContinuousClock.now
        let report = try await destroyer.runMaintenance()
        #expect(report.destroyed == 1 && report.purged == 0)
        #expect(start.duration(to: .now) >= DestructionBarrier.wait, "the destruction did not wait for the lagging node")
        #expect(try await storedMaterial() == 1, "material was deleted before every live node had seen the destruction")

        // It catches up (its store watcher polls) and says so; the next sweep deletes the material.
        _ = try await lagging.refreshFromStore()
        try await lagging.reportHeartbeat()
        let refusal = await keywardError { () async throws(KeywardError) in _ = try await lagging.decrypt(sealed.ciphertext, actor: owner) }
        #expect(refusal != nil, "the node that saw the destruction still decrypted under the key")
        let purged = try await destroyer.runMaintenance()
        #expect(purged.purged == 1)
        #expect(try await storedMaterial() == 0)
        #expect(try await destroyer.runMaintenance().purged == 0)
        #expect(try await destroyer.verifyStore().isIntact)
        #expect(try await lagging.verifyAudit().isIntact)
    }

    @Test("deleted imported material waits for the barrier too: its bytes stay while a live node lags, the material cannot come back meanwhile, and afterwards it can",
          arguments: StoreBackend.available)
    func importedMaterialDeletionWaitsForEveryLiveNode(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let first = try await database.initialize()
        let owner = Caller.owner("t")
        let id = try await first.createKeyForImport(CreateKeyRequest(aliases: ["ext"]), actor: owner).metadata.id
        let material = try KeyMaterial.generate(.aes256GCM)
        func importMaterial(into service: KeyService) async throws -> KeyDescription {
            let wrapping = try await service.importParameters(key: "ext", wrappingSpec: .rsa2048OAEPSHA256, actor: owner)
            let blob = try wrapping.publicKey.encrypt(material.secret.withSecretBytes(InsecureSecretAccess.token) { Array($0) })
            return try await service.importMaterial(blob, key: "ext", wrappingKey: wrapping.keyID.description, scheme: .rsaOAEPSHA256, validTo: nil, actor: owner)
        }
        _ = try await importMaterial(into: first)
        let sealed = try await first.encrypt([4, 2], key: "ext", actor: owner)
        func storedMaterial() async throws -> Int {
            Int(try await database.scalar("SELECT count(*) FROM key_versions WHERE length(sealed) > 0 AND key_id = \(database.literal(id.bytes))")) ?? -1
        }
        #expect(try await storedMaterial() == 1)

        let lagging = try await database.node(options: KeyService.Options(coherenceBound: 1, nodeID: "lagging"))
        _ = try await lagging.refreshFromStore()
        try await lagging.reportHeartbeat()
        try await database.keepAlive(node: "lagging")
        // Deleted: the key is empty at once, but its bytes stay while the lagging node has not
        // seen that (it could still be encrypting under them).
        let start = ContinuousClock.now
        let emptied = try await first.deleteImportedMaterial(key: "ext", actor: owner)
        #expect(emptied.metadata.awaitingMaterial == true && emptied.metadata.state == .preActive)
        #expect(start.duration(to: .now) >= DestructionBarrier.wait, "the deletion did not wait for the lagging node")
        #expect(try await storedMaterial() == 1, "material was deleted before every live node had seen the deletion")
        // Bringing the material back now would race the pending deletion: refused until it is done.
        guard case .storage(.unavailable) = await keywardError({ () async throws(KeywardError) in
            do { _ = try await importMaterial(into: first) } catch let error as KeywardError { throw error } catch { Issue.record("\(error)") }
        }) else { Issue.record("material was imported while its deletion waited for the barrier"); return }

        // The lagging node catches up; the next sweep deletes the bytes, and the material returns.
        _ = try await lagging.refreshFromStore()
        try await lagging.reportHeartbeat()
        #expect(await keywardError { () async throws(KeywardError) in _ = try await lagging.decrypt(sealed.ciphertext, actor: owner) } != nil,
                "the node that saw the deletion still decrypted")
        // The sweep also purges the used wrapping keys, which were destroyed after their import.
        let report = try await first.runMaintenance()
        #expect(report.purged >= 1, "\(report)")
        #expect(try await storedMaterial() == 0)
        _ = try await importMaterial(into: first)
        #expect(try await first.decrypt(sealed.ciphertext, actor: owner).plaintext == [4, 2])
        #expect(try await first.verifyStore().isIntact)
    }
}

/// The storage error `body` throws, or nil.
func failure(_ body: () async throws -> Void) async -> StorageError? {
    do { try await body(); return nil } catch let error as StorageError { return error } catch { return .database("not a storage error: \(error)") }
}
