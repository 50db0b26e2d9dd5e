import Foundation
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// The audit intake and its elected sequencer (decision 0034), on PostgreSQL: nodes insert
/// their entries in transactions of their own, and the node holding the maintenance lease
/// chains them into one tamper-evident log.
@Suite("The audit intake and its sequencer on PostgreSQL")
struct AuditSequencerTests {
    static let owner = Caller.owner("t")

    /// The PostgreSQL backend alone: SQLite keeps one writer and no intake.
    static var backends: [StoreBackend] { StoreBackend.available.filter { $0 == .postgres } }

    static func node(_ database: TestDatabase, _ name: String) async throws -> KeyService {
        try await database.node(options: KeyService.Options(nodeID: name, sequencedAudit: true))
    }

    static func intakeCount(_ database: TestDatabase) async throws -> Int {
        Int(try await database.scalar("SELECT count(*) FROM audit_intake")) ?? -1
    }

    @Test("two nodes write their entries to the intake in parallel; the lease holder chains every one into one log that verifies, and the other node follows it",
          arguments: backends)
    func twoNodesOneChain(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        let a = try await Self.node(database, "a"), b = try await Self.node(database, "b")
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in [a, b] {
                group.addTask { for _ in 0..<25 { _ = try await node.encrypt([1, 2, 3], key: key, actor: Self.owner) } }
            }
            try await group.waitForAll()
        }
        // Durable in the intake, not yet chained; verification counts them and checks their MACs.
        let waiting = try await Self.intakeCount(database)
        #expect(waiting >= 51, "\(waiting) entries in the intake")
        let before = try await b.verifyAudit()
        #expect(before.isIntact && before.unchained == waiting, "\(before)")

        let lease = try #require(try await a.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        #expect(try await a.sequenceAudit(under: lease) == waiting)
        #expect(try await Self.intakeCount(database) == 0)
        #expect(try await a.sequenceAudit(under: lease) == 0)

        let after = try await b.verifyAudit()
        #expect(after.isIntact && after.unchained == 0 && after.entries >= before.entries + waiting, "\(after)")
        let encrypts = Int(try await database.scalar("SELECT count(*) FROM audit WHERE position('\"operation\":\"encrypt\"' in convert_from(body, 'UTF8')) > 0")) ?? -1
        #expect(encrypts == 50, "\(encrypts) encrypt entries chained")
        // b follows the chain the sequencer wrote: its store watcher reads it, checked.
        _ = try await b.refreshFromStore()
        #expect(try await b.auditTail(1).first?.sequence == Int64(after.entries))
        #expect(try await b.verifyStore().isIntact)
        // The sequencer's own entries skip the intake: chained as they are written.
        _ = try await a.encrypt([7], key: key, actor: Self.owner)
        #expect(try await Self.intakeCount(database) == 0)
        #expect(try await a.verifyAudit().entries == after.entries + 1)
        // Once it no longer holds the lease, its entries go to the intake again.
        a.standDownAsAuditSequencer()
        _ = try await a.encrypt([8], key: key, actor: Self.owner)
        #expect(try await Self.intakeCount(database) == 1)
    }

    @Test("attack: an intake row forged in the database is not chained; verification names it while it waits, and the sequencer chains an entry naming it instead",
          arguments: backends)
    func forgedIntakeRowIsRefused(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        let a = try await Self.node(database, "a")
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        // A database writer invents an entry that revokes nothing but claims to have, with an
        // anchor that would push the key's audited revision far ahead.
        let forged = #"{"actor":"admin","anchors":[{"record":"key:\#(key)","revision":99}],"operation":"disable","outcome":"ok","time":"2026-12-05T00:00:00Z"}"#
        try await database.execute("INSERT INTO audit_intake (node, body, key_id, time, mac) VALUES ('a', convert_to('\(forged)', 'UTF8'), NULL, 0, '\\x00'::bytea)")
        let forgedID = try await database.scalar("SELECT max(id) FROM audit_intake")

        let before = try await a.verifyAudit()
        #expect(before.problems.contains { $0.contains("intake row #\(forgedID)") && $0.contains("fails its MAC") }, "\(before.problems)")

        let lease = try #require(try await a.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        _ = try await a.sequenceAudit(under: lease)
        #expect(try await Self.intakeCount(database) == 0)
        #expect(try await database.scalar("SELECT count(*) FROM audit WHERE position('\"actor\":\"admin\"' in convert_from(body, 'UTF8')) > 0") == "0",
                "the forged entry was chained")
        let rejection = try await database.scalar("SELECT convert_from(body, 'UTF8') FROM audit WHERE position('audit-intake-rejected' in convert_from(body, 'UTF8')) > 0")
        #expect(rejection.contains("intake row #\(forgedID)") && rejection.contains("keyward (audit sequencer)"), "\(rejection)")
        // The forged anchor did not reach the index: the key is still usable, and all verifies.
        _ = try await a.encrypt([1], key: key.description, actor: Self.owner)
        _ = try await a.sequenceAudit(under: lease)
        #expect(try await a.verifyStore().isIntact)
        #expect(try await a.verifyAudit().isIntact)
    }

    @Test("attack: intake rows copied and put back after they were chained, or repeated in the intake, are chained once; entries naming the replays are chained instead, and a cleared entry-id column is named",
          arguments: backends)
    func replayedIntakeRowsAreRefused(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        let a = try await Self.node(database, "a"), b = try await Self.node(database, "b")
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let lease = try #require(try await a.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        _ = try await a.sequenceAudit(under: lease)
        func encrypts() async throws -> Int {
            Int(try await database.scalar("SELECT count(*) FROM audit WHERE position('\"operation\":\"encrypt\"' in convert_from(body, 'UTF8')) > 0")) ?? -1
        }
        // Node b's entries wait in the intake, each with its node's valid MAC; a database writer
        // keeps copies of the rows.
        for _ in 0..<3 { _ = try await b.encrypt([4], key: key, actor: Self.owner) }
        try await database.execute("CREATE TABLE stolen AS SELECT node, body, key_id, time, mac FROM audit_intake")
        let stolen = Int(try await database.scalar("SELECT count(*) FROM stolen")) ?? -1
        #expect(stolen >= 3)
        #expect(try await a.sequenceAudit(under: lease) == stolen)
        #expect(try await encrypts() == 3)

        // Put back after they were chained, and one waiting row repeated: each replay is valid
        // under its MAC, and would be chained as an operation that happened again.
        try await database.execute("INSERT INTO audit_intake (node, body, key_id, time, mac) SELECT node, body, key_id, time, mac FROM stolen")
        _ = try await b.encrypt([5], key: key, actor: Self.owner)
        try await database.execute("""
            INSERT INTO audit_intake (node, body, key_id, time, mac)
            SELECT node, body, key_id, time, mac FROM audit_intake WHERE id = (SELECT max(id) FROM audit_intake)
            """)
        let waiting = try await b.verifyAudit()
        #expect(waiting.problems.filter { $0.contains("already chained") }.count == stolen, "\(waiting.problems)")
        #expect(try await a.sequenceAudit(under: lease) == stolen + 2)
        #expect(try await encrypts() == 4, "a replayed intake row was chained again")
        let refusals = try await database.scalar("""
            SELECT count(*) FROM audit WHERE position('audit-intake-rejected' in convert_from(body, 'UTF8')) > 0
              AND (position('replays entry' in convert_from(body, 'UTF8')) > 0 OR position('repeats entry' in convert_from(body, 'UTF8')) > 0)
            """)
        #expect(refusals == "\(stolen + 1)", "\(refusals) refusals chained")
        #expect(try await a.verifyAudit().isIntact)

        // The column the sequencer looks ids up by, cleared: verification names it.
        try await database.execute("UPDATE audit SET entry = NULL WHERE sequence = (SELECT min(sequence) FROM audit WHERE entry IS NOT NULL)")
        let cleared = try await a.verifyAudit()
        #expect(cleared.problems.contains { $0.contains("entry-id column") }, "\(cleared.problems)")
    }

    @Test("attack: a sequencer paused past its lease chains nothing when it wakes; the node that took the lease over chains everything, once",
          arguments: backends)
    func lapsedSequencerIsFenced(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        let a = try await Self.node(database, "a"), b = try await Self.node(database, "b")
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        for _ in 0..<5 { _ = try await b.encrypt([4], key: key, actor: Self.owner) }
        let waiting = try await Self.intakeCount(database)

        let lapsed = try #require(try await a.acquireLease(MaintenanceLease.name, duration: .milliseconds(500)))
        try await Task.sleep(for: .milliseconds(800))
        let held = try #require(try await b.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        let refused = await keywardError { () async throws(KeywardError) in _ = try await a.sequenceAudit(under: lapsed) }
        guard case .storage(.leaseLost) = refused else { Issue.record("sequencing under a lapsed lease was not refused: \(String(describing: refused))"); return }
        #expect(try await Self.intakeCount(database) == waiting, "the fenced sequencer took intake rows")
        let chainedBefore = try await database.scalar("SELECT count(*) FROM audit")

        #expect(try await b.sequenceAudit(under: held) == waiting)
        #expect(Int(try await database.scalar("SELECT count(*) FROM audit")) == Int(chainedBefore)! + waiting)
        // a learns the chain moved and carries on writing to the intake; nothing is lost.
        _ = try await a.refreshFromStore()
        _ = try await a.encrypt([5], key: key, actor: Self.owner)
        let fresh = try await Self.intakeCount(database)
        #expect(fresh >= 1)
        #expect(try await b.sequenceAudit(under: held) == fresh)
        #expect(try await a.verifyAudit().isIntact)
    }

    @Test("a node's own anchors count while they wait: an alias deleted and re-created before the sequencer runs raises no false alarm; once chained, an old token row put back is refused",
          arguments: backends)
    func waitingAnchorsCount(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        // a serves requests; b is the sequencer (its own entries go straight to the chain).
        let a = try await Self.node(database, "a"), b = try await Self.node(database, "b")
        let lease = try #require(try await b.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        func chain() async throws {
            _ = try await b.sequenceAudit(under: lease)
            _ = try await a.refreshFromStore()
        }
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        try await a.setAlias("app/orders", key: key, actor: Self.owner)
        try await chain()
        _ = try await a.encrypt([1], key: "app/orders", actor: Self.owner)
        // The deletion's anchor waits in the intake while the chained index still holds the
        // alias: the missing row is a deletion this node made, not a row removed by hand.
        try await a.deleteAlias("app/orders", actor: Self.owner)
        #expect(try await Self.intakeCount(database) > 0)
        let gone = await keywardError { () async throws(KeywardError) in _ = try await a.encrypt([1], key: "app/orders", actor: Self.owner) }
        guard case .keyNotFound = gone else { Issue.record("a deleted alias, its deletion waiting in the intake: \(String(describing: gone))"); return }
        try await a.setAlias("app/orders", key: key, actor: Self.owner)
        _ = try await a.encrypt([1], key: "app/orders", actor: Self.owner)
        try await chain()
        _ = try await a.encrypt([1], key: "app/orders", actor: Self.owner)
        #expect(try await a.verifyStore().isIntact)

        let issued = try await a.issueToken(principal: "app", policy: AccessPolicy(rules: []), lifetime: nil, actor: Self.owner)
        let id = issued.record.id.bytes
        let old = try await database.scalar("SELECT encode(body, 'hex') || ',' || revision || ',' || encode(mac, 'hex') FROM tokens WHERE id = \(database.literal(id))")
            .split(separator: ",").map(String.init)
        try await a.revokeToken(issued.record.id, actor: Self.owner)
        try await chain()
        try await database.execute("UPDATE tokens SET body = '\\x\(old[0])'::bytea, revision = \(old[1]), mac = '\\x\(old[2])'::bytea WHERE id = \(database.literal(id))")
        let replayed = await keywardError { () async throws(KeywardError) in _ = try await a.authenticate(issued.text) }
        guard case .integrityFailure(let message)? = replayed else { Issue.record("the replayed token row was trusted: \(String(describing: replayed))"); return }
        #expect(message.contains("older row"))
    }

    @Test("a KEK rotation while entries wait in the intake re-MACs them: the sequencer then chains every one, and nothing is taken for a forgery",
          arguments: backends)
    func kekRotationKeepsTheIntake(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        _ = try await database.initialize()
        let a = try await Self.node(database, "a")
        let key = try await a.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        for _ in 0..<5 { _ = try await a.encrypt([6], key: key, actor: Self.owner) }
        let waiting = try await Self.intakeCount(database)
        #expect(waiting >= 6)

        let rotated = try await a.rotateKEK(root: try KeyFileRootOfTrust(path: database.keyFile), actor: Self.owner)
        let b = try await Self.node(database, "b")
        let lease = try #require(try await b.acquireLease(MaintenanceLease.name, duration: .seconds(30)))
        #expect(try await b.sequenceAudit(under: lease) >= waiting)
        #expect(try await database.scalar("SELECT count(*) FROM audit WHERE position('audit-intake-rejected' in convert_from(body, 'UTF8')) > 0") == "0",
                "an entry written before the rotation was taken for a forgery")
        #expect(try await b.verifyAudit().isIntact)
        #expect(try await rotated.verifyStore().isIntact)
    }
}
