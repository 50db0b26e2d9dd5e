import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import KeywardTesting
import Testing

/// Attacks with write access to the store file that put back rows an earlier copy held, delete
/// rows, or edit the revision index: each is refused at run time and named by `verifyStore`.
@Suite("Replayed and deleted rows")
struct ReplayTests {
    static let owner = Caller.owner("t")

    /// Saves a row's columns so it can be put back later.
    static func snapshot(_ fixture: StoreFixture, _ sql: String, _ arguments: StatementArguments) throws -> Row {
        try #require(try fixture.fetch(sql, arguments).first)
    }

    static func expectNamed(_ fixture: StoreFixture, _ needles: String..., sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let report = try await fixture.reopen().verifyStore()
        #expect(!report.isIntact, sourceLocation: sourceLocation)
        let problems = report.problems + report.audit.problems
        for needle in needles {
            #expect(problems.contains { $0.contains(needle) }, "\(problems) lacks \(needle)", sourceLocation: sourceLocation)
        }
    }

    @Test("attack: a revoked token's old row put back does not un-revoke it")
    func revokedTokenReplayed() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let issued = try await fixture.service.issueToken(principal: "app", policy: AccessPolicy(rules: []), lifetime: nil, actor: Self.owner)
        let old = try Self.snapshot(fixture, "SELECT body, revision, mac FROM tokens WHERE id = ?", [Data(issued.record.id.bytes)])
        try await fixture.service.revokeToken(issued.record.id, actor: Self.owner)
        try fixture.tamper("UPDATE tokens SET body = ?, revision = ?, mac = ? WHERE id = ?",
                           [old["body"] as Data?, old["revision"] as Int64?, old["mac"] as Data?, Data(issued.record.id.bytes)])
        let service = try await fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.authenticate(issued.text) }
        guard case .integrityFailure(let message)? = error else { Issue.record("the replayed token row was trusted: \(String(describing: error))"); return }
        #expect(message.contains("token \(issued.record.id)") && message.contains("older row"))
        try await Self.expectNamed(fixture, "token \(issued.record.id): revision 1 is older than the audited revision 2")
    }

    @Test("attack: an alias's old row put back does not re-point it, and a deleted alias's row put back does not revive it")
    func aliasReplayed() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let first = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/main"]), actor: Self.owner).metadata.id
        let second = try await fixture.service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        let old = try Self.snapshot(fixture, "SELECT * FROM aliases WHERE name = 'app/main'", [])
        try await fixture.service.setAlias("app/main", key: second.description, actor: Self.owner)
        try fixture.tamper("UPDATE aliases SET key_id = ?, revision = ?, mac = ? WHERE name = 'app/main'",
                           [old["key_id"] as Data?, old["revision"] as Int64?, old["mac"] as Data?])
        var service = try await fixture.reopen()
        var error = await keywardError { () async throws(KeywardError) in _ = try await service.resolve("app/main") }
        guard case .integrityFailure? = error else { Issue.record("the replayed alias row re-pointed the alias to \(first): \(String(describing: error))"); return }
        try await Self.expectNamed(fixture, "alias app/main: revision 1 is older than the audited revision 2")

        // An alias deleted through the service, and its last row put back.
        let third = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/other"]), actor: Self.owner).metadata.id
        let live = try Self.snapshot(fixture, "SELECT * FROM aliases WHERE name = 'app/other'", [])
        try await fixture.service.deleteAlias("app/other", actor: Self.owner)
        try fixture.tamper("INSERT INTO aliases (name, key_id, revision, mac) VALUES ('app/other', ?, ?, ?)",
                           [Data(third.bytes), live["revision"] as Int64?, live["mac"] as Data?])
        service = try await fixture.reopen()
        error = await keywardError { () async throws(KeywardError) in _ = try await service.resolve("app/other") }
        guard case .integrityFailure? = error else { Issue.record("a deleted alias's row put back was trusted: \(String(describing: error))"); return }
        try await Self.expectNamed(fixture, "alias app/other: revision 1 is older than the audited revision 2 (which deleted it)")
        // A new alias of that name is not taken for the deleted one.
        try fixture.tamper("DELETE FROM aliases WHERE name = 'app/other'")
        service = try await fixture.reopen()
        try await service.setAlias("app/other", key: third.description, actor: Self.owner)
        #expect(try await service.resolve("app/other") == third)
    }

    @Test("attack: a version row put back with an older encryption reservation is refused, so no nonce count is reused")
    func versionReplayed() async throws {
        let fixture = try await StoreFixture.make(options: KeyService.Options(encryptionReservationBlock: 4))
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        _ = try await fixture.service.encrypt([1], key: id.description, actor: Self.owner)
        let old = try Self.snapshot(fixture, "SELECT body, revision, mac FROM key_versions WHERE key_id = ? AND version = 1", [Data(id.bytes)])
        for _ in 0..<12 { _ = try await fixture.service.encrypt([1], key: id.description, actor: Self.owner) }
        try fixture.tamper("UPDATE key_versions SET body = ?, revision = ?, mac = ? WHERE key_id = ? AND version = 1",
                           [old["body"] as Data?, old["revision"] as Int64?, old["mac"] as Data?, Data(id.bytes)])
        let service = try await fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id.description, actor: Self.owner) }
        guard case .integrityFailure(let message)? = error else { Issue.record("the replayed version row was used: \(String(describing: error))"); return }
        #expect(message.contains("version 1 of key \(id)"))
        try await Self.expectNamed(fixture, "version 1 of key \(id): revision")
    }

    @Test("attack: a key row deleted from the store is an integrity failure, not an unknown key, and verify names it and its dangling alias")
    func keyRowDeleted() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(aliases: ["doomed"]), actor: Self.owner).metadata.id
        try fixture.tamperWithoutForeignKeys("DELETE FROM keys WHERE id = ?", [Data(id.bytes)])
        let service = try await fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: id.description, actor: Self.owner) }
        guard case .integrityFailure(let message)? = error else { Issue.record("a deleted key row went unnoticed: \(String(describing: error))"); return }
        #expect(message.contains("missing from the store"))
        try await Self.expectNamed(fixture, "key \(id): the audit log records it (revision 1) but the store has no row (deleted)",
                                   "alias doomed: points at key \(id), which the store does not hold (dangling alias)")
    }

    @Test("attack: an edited or emptied revision index stops the service with the reason, and verify names the index")
    func indexEdited() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        _ = try await fixture.service.transition(key: id.description, .disable, actor: Self.owner)
        try fixture.tamper("DELETE FROM anchored_revisions")
        let service = try await fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: id.description, actor: Self.owner) }
        guard case .storeState(let message)? = error else { Issue.record("an emptied index went unnoticed: \(String(describing: error))"); return }
        #expect(message.contains("revision index"))
        try await Self.expectNamed(fixture, "revision index: key \(id) is missing from it (index edited)")
    }

    @Test("attack: an edited key-id column in the audit table is named by verify")
    func auditKeyColumnEdited() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        try fixture.tamper("UPDATE audit SET key_id = ? WHERE key_id = ?", [Data(KeyID().bytes), Data(id.bytes)])
        try await Self.expectNamed(fixture, "index column edited")
    }

    @Test("attack: a token revoked by another process, then its old row put back, is refused by a running service once it has refreshed")
    func crossProcessRevocationAnchored() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let running = fixture.service
        let issued = try await running.issueToken(principal: "app", policy: AccessPolicy(rules: []), lifetime: nil, actor: Self.owner)
        _ = try await running.refreshFromStore()
        let old = try Self.snapshot(fixture, "SELECT body, revision, mac FROM tokens WHERE id = ?", [Data(issued.record.id.bytes)])
        let other = try await fixture.reopen()
        try await other.revokeToken(issued.record.id, actor: Self.owner)
        _ = try await running.refreshFromStore()
        try fixture.tamper("UPDATE tokens SET body = ?, revision = ?, mac = ? WHERE id = ?",
                           [old["body"] as Data?, old["revision"] as Int64?, old["mac"] as Data?, Data(issued.record.id.bytes)])
        let error = await keywardError { () async throws(KeywardError) in _ = try await running.authenticate(issued.text) }
        guard case .integrityFailure? = error else { Issue.record("the running service trusted the replayed row: \(String(describing: error))"); return }
        // And the running service keeps writing after taking up the other process's entries.
        _ = try await running.createKey(CreateKeyRequest(), actor: Self.owner)
        #expect(try await fixture.reopen().verifyAudit().isIntact)
    }

    @Test("attack: an entry another process appended, then edited, is refused when a running service takes it up")
    func editedForeignEntryRefused() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let running = fixture.service
        _ = try await running.refreshFromStore()
        let other = try await fixture.reopen()
        let id = try await other.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        try fixture.tamper("UPDATE audit SET body = replace(body, 'create', 'rotate') WHERE key_id = ?", [Data(id.bytes)])
        let error = await keywardError { () async throws(KeywardError) in _ = try await running.refreshFromStore() }
        guard case .integrityFailure? = error else { Issue.record("the edited entry was taken up: \(String(describing: error))"); return }
    }

    @Test("writes audited while the store is verified are not taken for an edited revision index: the index is checked against the chain up to the head read with it")
    func verificationDuringWrites() async throws {
        let store = InMemoryKeyStore()
        let service = try await PipelineTests.service(store)
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        _ = try await service.encrypt([1], key: id, actor: .owner("t"))
        // Another process rotates the key and disables it (anchored writes) just as this one
        // reads the stored index, as a serving node's reservations and requests do during its
        // periodic verification.
        store.beforeNextAnchorSnapshot {
            _ = try? await service.rotate(key: id, actor: .owner("t"))
            _ = try? await service.transition(key: id, .disable, actor: .owner("t"))
        }
        let report = try await service.verifyStore()
        #expect(report.isIntact, "\(report.problems)")
        #expect(try await service.describe(key: id, actor: .owner("t")).metadata.currentVersion == 2, "the hook did not run")
        // An index edited for real is still named.
        store.mutate { contents in
            for (record, anchor) in contents.anchors where anchor.revision > 1 { contents.anchors[record]?.revision = anchor.revision - 1 }
        }
        let edited = try await service.verifyStore()
        #expect(edited.problems.contains { $0.contains("index edited") }, "\(edited.problems)")
    }

    @Test("a row removed by a write audited after verification read the index is not taken for a deleted row; a row deleted unaudited still is")
    func removalDuringVerification() async throws {
        let store = InMemoryKeyStore()
        let service = try await PipelineTests.service(store)
        _ = try await service.createKey(CreateKeyRequest(aliases: ["leaving", "staying"]), actor: .owner("t"))
        store.afterNextAnchorSnapshot { try? await service.deleteAlias("leaving", actor: .owner("t")) }
        let report = try await service.verifyStore()
        #expect(report.isIntact, "\(report.problems)")
        #expect(store.mutate { $0.aliases["leaving"] } == nil, "the hook did not run")
        // The same removal made in the database, with no audited write, is named.
        store.mutate { contents in contents.aliases["staying"] = nil }
        let tampered = try await service.verifyStore()
        #expect(tampered.problems.contains { $0.contains("staying") && $0.contains("no row") }, "\(tampered.problems)")
        // Nor does marking it deleted in the index hide it: the index then fails the head's MAC,
        // so it is not taken as a removal.
        _ = try await service.createKey(CreateKeyRequest(aliases: ["hidden"]), actor: .owner("t"))
        store.mutate { contents in
            contents.aliases["hidden"] = nil
            for (record, anchor) in contents.anchors where String(decoding: record, as: UTF8.self).contains("hidden") {
                contents.anchors[record]?.deleted = true
                contents.anchors[record]?.revision = anchor.revision + 1
            }
        }
        let hidden = try await service.verifyStore()
        #expect(hidden.problems.contains { $0.contains("hidden") && $0.contains("no row") }, "\(hidden.problems)")
    }
}
