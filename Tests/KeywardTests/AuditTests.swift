import Foundation
@_spi(Testing) import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import Testing

@Suite("Audit log")
struct AuditTests {
    @Test("every key operation appends an entry with actor, operation, key, version and outcome, never a secret")
    func entries() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("alice")).metadata.id
        let secretText = "TOP-SECRET-PLAINTEXT"
        let sealed = try await service.encrypt(Array(secretText.utf8), key: id.description, context: ["ctx": "v"], actor: .owner("alice"))
        _ = try await service.decrypt(sealed.ciphertext, context: ["ctx": "v"], actor: .owner("bob"))
        _ = await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(sealed.ciphertext, context: ["ctx": "w"], actor: .owner("mallory")) }
        // The first encryption reserves a block of the version's budget first, an entry of its own.
        let tail = try await service.auditTail(5).filter { $0.event.operation != "reserve-encryptions" }
        #expect(tail.map(\.event.operation) == ["create", "encrypt", "decrypt", "decrypt"])
        #expect(tail.map(\.event.actor) == ["alice", "alice", "bob", "mallory"])
        #expect(tail.map(\.event.outcome) == ["ok", "ok", "ok", "denied"])
        #expect(tail[1].event.keyID == id && tail[1].event.version == 1)
        // Nothing secret in the log: not the plaintext, not the key bytes.
        let bodies = try fixture.fetch("SELECT body FROM audit").compactMap { $0["body"] as Data? }
        let text = bodies.map { String(decoding: $0, as: UTF8.self) }.joined()
        #expect(!text.contains(secretText))
    }

    @Test("a changed, removed or reordered entry is found and named", arguments: ["change", "remove", "reorder", "forge"])
    func tampering(kind: String) async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        for _ in 0..<5 { _ = try await fixture.service.encrypt([1], key: id, actor: .owner("t")) }
        #expect(try await fixture.reopen().verifyAudit().isIntact)
        switch kind {
        case "change": try fixture.tamper("UPDATE audit SET body = replace(body, 'encrypt', 'decrypt') WHERE sequence = 4")
        case "remove": try fixture.tamper("DELETE FROM audit WHERE sequence = 3")
        case "reorder":
            try fixture.tamper("UPDATE audit SET sequence = 100 WHERE sequence = 3")
            try fixture.tamper("UPDATE audit SET sequence = 3 WHERE sequence = 4")
            try fixture.tamper("UPDATE audit SET sequence = 4 WHERE sequence = 100")
        default:
            // A forged entry with a correct hash chain but no valid MAC.
            try fixture.tamper("UPDATE audit SET mac = zeroblob(32) WHERE sequence = 2")
        }
        let reopened = try await fixture.reopen()
        let report = try await reopened.verifyAudit()
        #expect(!report.isIntact)
        #expect(report.problems.contains { $0.contains("#3") || $0.contains("#4") || $0.contains("#2") }, "\(report.problems)")
        // A server's periodic verification walks the log paced; it finds the same.
        #expect(try await reopened.verifyStore(inBackground: true).audit.problems == report.problems)
    }

    @Test("a verification resumed where the last one ended walks only the entries appended since, checks them as a full walk does, and names entries removed from the log's end")
    func resumedVerification() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        for _ in 0..<5 { _ = try await service.encrypt([1], key: id, actor: .owner("t")) }
        let (first, point) = try await service.verifyStore(inBackground: true, resumingAfter: nil)
        #expect(first.isIntact && first.audit.resumedAfter == nil, "\(first.allProblems)")
        let start = try #require(point)
        #expect(first.audit.entries == Int(start.sequence))

        // Only the new entries are walked, and the records are checked against the chain's end.
        for _ in 0..<4 { _ = try await service.encrypt([2], key: id, actor: .owner("t")) }
        _ = try await service.rotate(key: id, actor: .owner("t"))
        let (second, next) = try await service.verifyStore(inBackground: true, resumingAfter: start)
        #expect(second.isIntact, "\(second.allProblems)")
        let end = try #require(next)
        #expect(second.audit.resumedAfter == start.sequence && end.sequence > start.sequence + 4)
        #expect(second.audit.entries == Int(end.sequence - start.sequence))
        #expect(second.keys == 1 && second.versions == 2)

        // A point of another store is ignored: that store's log is walked from its start.
        let other = try await StoreFixture.make()
        defer { other.remove() }
        _ = try await other.service.createKey(CreateKeyRequest(), actor: .owner("t"))
        let foreign = try await other.service.verifyStore(inBackground: true, resumingAfter: end).report
        #expect(foreign.isIntact && foreign.audit.resumedAfter == nil, "\(foreign.allProblems)")

        // A changed entry among the new ones is found, and the walk leaves no point to resume from.
        for _ in 0..<3 { _ = try await service.encrypt([3], key: id, actor: .owner("t")) }
        try fixture.tamper("UPDATE audit SET body = replace(body, 'encrypt', 'decrypt') WHERE sequence = ?", [end.sequence + 2])
        let (changed, after) = try await fixture.reopen().verifyStore(inBackground: true, resumingAfter: end)
        #expect(changed.audit.problems.contains { $0.contains("#\(end.sequence + 2)") }, "\(changed.audit.problems)")
        #expect(after == nil)

        // The log cut back below the point: named, though no remaining entry is wrong.
        try fixture.tamperWithoutForeignKeys("DELETE FROM audit WHERE sequence > ?", [start.sequence - 1])
        let cut = try await fixture.reopen().verifyStore(inBackground: true, resumingAfter: end).report
        #expect(cut.audit.problems.contains { $0.contains("entries were removed from its end") }, "\(cut.audit.problems)")
    }

    @Test("a background verification whose task is cancelled stops with an error instead of reading the rest of the log unpaced")
    func cancelledBackgroundVerificationStops() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        for _ in 0..<5 { _ = try await service.encrypt([1], key: id, actor: .owner("t")) }
        let walk = Task { try await service.verifyStore(inBackground: true) }
        walk.cancel()
        let result = await walk.result
        // Stopped by its own check, or by the store's read refusing a cancelled task (GRDB's does).
        guard case .failure(let error as KeywardError) = result else { Issue.record("expected a stopped verification, got \(result)"); return }
        #expect(error.description.contains("stopped before it ended") || error.description.contains("CancellationError"), "\(error)")
        // Not cancelled, the same walk completes; a foreground one ignores nothing either way.
        #expect(try await service.verifyStore(inBackground: true).isIntact)
    }

    @Test("a resumed walk trusts the entries behind its point: an entry rewritten there is found by the next walk from the start")
    func resumedVerificationTrustsItsPrefix() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        for _ in 0..<5 { _ = try await fixture.service.encrypt([1], key: id, actor: .owner("t")) }
        let point = try #require(try await fixture.service.verifyStore(inBackground: false, resumingAfter: nil).walked)
        try fixture.tamper("UPDATE audit SET body = replace(body, 'encrypt', 'decrypt') WHERE sequence = 3")
        let reopened = try await fixture.reopen()
        #expect(try await reopened.verifyStore(inBackground: false, resumingAfter: point).report.isIntact)
        #expect(try await reopened.verifyStore().audit.problems.contains { $0.contains("#3") })
    }

    @Test("when the audit entry cannot be written, the operation fails and returns nothing")
    func failClosed() async throws {
        let fixture = try await FailingStoreFixture.make()
        defer { fixture.remove() }
        let store = fixture.store, service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        store.failing = true
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: .owner("t")) }
        guard case .auditUnavailable = error else { Issue.record("expected auditUnavailable, got \(String(describing: error))"); return }
        store.failing = false
        #expect(try await service.encrypt([1], key: id, actor: .owner("t")).version == 1)
        #expect(try await service.verifyAudit().isIntact)
    }

    @Test("a reservation whose entry is refused once and again is recorded at the third try: its block is in the store, so its entry must follow")
    func reservationEntryRetried() async throws {
        let fixture = try await FailingStoreFixture.make()
        defer { fixture.remove() }
        let store = fixture.store, service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        // The first encryption reserves a block: its row commits, then its entry is refused twice.
        store.failingAuditAppends = 2
        #expect(try await service.encrypt([1], key: id, actor: .owner("t")).version == 1)
        #expect(store.failingAuditAppends == 0)
        let operations = try await service.auditTail(10).map(\.event.operation)
        #expect(operations.filter { $0 == "reserve-encryptions" }.count == 1, "\(operations)")
        #expect(try await service.verifyStore().isIntact)
        // Refused a third time, the reservation fails, and so does the encryption that needed it.
        let other = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        store.failingAuditAppends = 3
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: other, actor: .owner("t")) }
        guard case .auditUnavailable = error else { Issue.record("expected auditUnavailable, got \(String(describing: error))"); return }
    }

    @Test("concurrent operations share batches and keep one unbroken chain")
    func groupCommit() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<100 { _ = try await service.encrypt([1], key: id, actor: .owner("t")) } }
            }
            try await group.waitForAll()
        }
        let report = try await service.verifyAudit()
        // 800 encryptions, the creation and the store's initialisation, and one budget reservation.
        #expect(report.isIntact && report.entries == 803)
    }
}

@Suite("Audit log shared by two processes")
struct SharedAuditTests {
    @Test("a second process appending to the same store (keyward token create beside a running server) does not break the first one's audit")
    func twoWriters() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let server = fixture.service
        let key = try await server.createKey(CreateKeyRequest(), actor: .owner("server")).metadata.id.description
        _ = try await server.encrypt([1], key: key, actor: .owner("server"))
        let cli = try await fixture.reopen()
        _ = try await cli.issueToken(principal: "ops", policy: .everything, lifetime: nil, actor: .owner("cli"))
        _ = try await cli.createKey(CreateKeyRequest(), actor: .owner("cli"))
        // The server's next entries chain onto the other process's, concurrently too.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await server.encrypt([2], key: key, actor: .owner("server")) } }
            try await group.waitForAll()
        }
        _ = try await cli.random(count: 4, actor: .owner("cli"))
        _ = try await server.encrypt([3], key: key, actor: .owner("server"))
        let report = try await server.verifyAudit()
        #expect(report.isIntact, "\(report.problems.prefix(3))")
        #expect(try await server.auditTail(100).filter { $0.event.actor == "server" && $0.event.operation == "encrypt" }.count == 22)
    }
}

@Suite("Audit durability within an interval")
struct AuditDurabilityTests {
    @Test("audit batches committed without an fsync each are all there, chained, for another connection and after a checkpoint")
    func relaxedSync() async throws {
        let temporary = try TemporaryStore(label: "durability")
        defer { temporary.remove() }
        let keyFile = temporary.keyFile
        let path = temporary.path("s.db")
        let store = try SQLiteKeyStore(path: path, auditDurability: .within(.milliseconds(20)))
        let service = try await KeyService.initialize(store: store, root: temporary.root(), actor: .owner("t"))
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 { group.addTask { _ = try await service.encrypt([1], key: key, actor: .owner("t")) } }
            try await group.waitForAll()
        }
        try await Task.sleep(for: .milliseconds(100))   // the scheduled checkpoint runs
        let other = try await KeyService.open(store: try SQLiteKeyStore(path: path), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        let report = try await other.verifyAudit()
        #expect(report.isIntact && report.entries >= 66, "\(report.entries) \(report.problems.prefix(2))")
    }
}

@Suite("Audit entry encoding")
struct AuditEncodingTests {
    @Test("the hand-written canonical body decodes back to the same event, quotes and control characters included")
    func roundTrip() throws {
        let event = AuditEvent(time: Date(timeIntervalSince1970: 1_800_000_000.123), actor: "alice \"the\" admin\n\\", operation: "encrypt",
                               keyID: KeyID(), version: 7, outcome: "denied", detail: "tab\there ünïcödé",
                               anchors: [RevisionAnchor(.key(KeyID()), 3), RevisionAnchor(.alias("a/b"), 4, deleted: true), RevisionAnchor(.version(KeyID(), 2), 9)], requestID: "r-1", peer: "127.0.0.1")
        let body = event.canonicalBodyForTesting()
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let decoded = try decoder.decode(AuditEvent.self, from: Data(body))
        #expect(decoded == event)
        // Keys are sorted, as JSONEncoder's sortedKeys would write them.
        let text = String(decoding: body, as: UTF8.self)
        let order = ["\"actor\"", "\"anchors\"", "\"detail\"", "\"keyID\"", "\"operation\"", "\"outcome\"", "\"peer\"", "\"requestID\"", "\"time\"", "\"version\""]
        let positions = order.map { text.range(of: $0)!.lowerBound }
        #expect(positions == positions.sorted())
    }
}
