import Foundation
import GRDB
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import Testing

/// Edits the SQLite file directly, as someone holding only the database would, and checks that
/// each edit is detected, refused with a clear error, and leaves the other keys working.
@Suite("Integrity of the stored records")
struct IntegrityTests {
    struct Setup {
        let fixture: StoreFixture
        let victim: KeyID
        let bystander: KeyID
        let victimCiphertext: [UInt8]
        let bystanderCiphertext: [UInt8]
    }

    static func setup() async throws -> Setup {
        let fixture = try await StoreFixture.make()
        let victim = try await fixture.service.createKey(CreateKeyRequest(aliases: ["victim"]), actor: .owner("t")).metadata.id
        let bystander = try await fixture.service.createKey(CreateKeyRequest(aliases: ["bystander"]), actor: .owner("t")).metadata.id
        let a = try await fixture.service.encrypt([1], key: victim.description, actor: .owner("t")).ciphertext
        let b = try await fixture.service.encrypt([2], key: bystander.description, actor: .owner("t")).ciphertext
        return Setup(fixture: fixture, victim: victim, bystander: bystander, victimCiphertext: a, bystanderCiphertext: b)
    }

    /// After tampering: the victim's decrypt fails with an integrity error, the bystander still
    /// works, and `verifyStore` names the victim.
    func expectDetected(_ setup: Setup, naming needle: String, file: String = #filePath, line: Int = #line) async throws {
        let service = try await setup.fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(setup.victimCiphertext, actor: .owner("t")) }
        switch error {
        case .integrityFailure?: break
        default: Issue.record("expected an integrity failure, got \(String(describing: error))")
        }
        #expect(try await service.decrypt(setup.bystanderCiphertext, actor: .owner("t")).plaintext == [2])
        let report = try await service.verifyStore()
        #expect(!report.isIntact)
        #expect(report.problems.contains { $0.contains(needle) }, "verify did not name \(needle): \(report.problems)")
    }

    @Test("a flipped byte in sealed key material is detected")
    func flippedSealedByte() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        let rows = try setup.fixture.fetch("SELECT sealed FROM key_versions WHERE key_id = ?", [Data(setup.victim.bytes)])
        var sealed = [UInt8]((rows[0]["sealed"] as Data?) ?? Data())
        #expect(sealed.count > 50)
        sealed[40] ^= 0x01
        try setup.fixture.tamper("UPDATE key_versions SET sealed = ? WHERE key_id = ?", [Data(sealed), Data(setup.victim.bytes)])
        try await expectDetected(setup, naming: setup.victim.description)
    }

    @Test("sealed material swapped between two keys is detected")
    func swappedMaterial() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        try setup.fixture.tamper("""
            UPDATE key_versions SET sealed = (SELECT sealed FROM key_versions WHERE key_id = ?), mac = (SELECT mac FROM key_versions WHERE key_id = ?) WHERE key_id = ?
            """, [Data(setup.bystander.bytes), Data(setup.bystander.bytes), Data(setup.victim.bytes)])
        try await expectDetected(setup, naming: setup.victim.description)
    }

    @Test("an edited state in the metadata body or column is detected")
    func editedState() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        _ = try await setup.fixture.service.transition(key: setup.victim.description, .disable, actor: .owner("t"))
        try setup.fixture.tamper("UPDATE keys SET state = 'active', body = replace(body, '\"state\":\"disabled\"', '\"state\":\"active\"') WHERE id = ?", [Data(setup.victim.bytes)])
        try await expectDetected(setup, naming: setup.victim.description)
    }

    @Test("an edited key row is named, and its intact version rows are not reported as deleted (verify names what was changed, nothing else)")
    func editedKeyRowDoesNotCascade() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        try setup.fixture.tamper("UPDATE keys SET state = 'disabled' WHERE id = ?", [Data(setup.victim.bytes)])
        let report = try await setup.fixture.reopen().verifyStore()
        let victim = setup.victim.description
        #expect(report.problems.contains { $0.contains("key \(victim)") && $0.contains("disagree with its MAC'd body") }, "\(report.problems)")
        #expect(!report.problems.contains { $0.contains("no row (deleted)") }, "\(report.problems)")
        #expect(report.problems.count == 1, "\(report.problems)")
        // Its version rows are still checked: one edited as well is named.
        try setup.fixture.tamper("UPDATE key_versions SET mac = zeroblob(32) WHERE key_id = ?", [Data(setup.victim.bytes)])
        let again = try await setup.fixture.reopen().verifyStore()
        #expect(again.problems.contains { $0.contains("key \(victim) version 1") }, "\(again.problems)")
    }

    @Test("the audit log's newest entry deleted is named as possibly that, not only as an edited index")
    func newestAuditEntryDeleted() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        _ = try await setup.fixture.service.issueToken(principal: "late", policy: .everything, lifetime: nil, actor: .owner("t"))
        try setup.fixture.tamper("DELETE FROM audit WHERE sequence = (SELECT max(sequence) FROM audit)", [])
        let report = try await setup.fixture.reopen().verifyStore()
        #expect(report.problems.contains { $0.contains("the audit log's newest entries were removed") && $0.contains("--anchors") }, "\(report.problems)")
    }

    @Test("a version number swapped between rows is detected")
    func swappedVersion() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        _ = try await setup.fixture.service.rotate(key: setup.victim.description, actor: .owner("t"))
        try setup.fixture.tamper("UPDATE key_versions SET version = 3 WHERE key_id = ? AND version = 1", [Data(setup.victim.bytes)])
        try setup.fixture.tamper("UPDATE key_versions SET version = 1 WHERE key_id = ? AND version = 2", [Data(setup.victim.bytes)])
        try setup.fixture.tamper("UPDATE key_versions SET version = 2 WHERE key_id = ? AND version = 3", [Data(setup.victim.bytes)])
        try await expectDetected(setup, naming: setup.victim.description)
    }

    @Test("an alias re-pointed at another key is detected")
    func repointedAlias() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        try setup.fixture.tamper("UPDATE aliases SET key_id = ? WHERE name = 'bystander'", [Data(setup.victim.bytes)])
        let service = try await setup.fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: "bystander", actor: .owner("t")) }
        guard case .integrityFailure = error else { Issue.record("re-pointed alias was used: \(String(describing: error))"); return }
        #expect(try await service.encrypt([1], key: "victim", actor: .owner("t")).keyID == setup.victim)
        let report = try await service.verifyStore()
        #expect(report.problems.contains { $0.contains("alias bystander") })
    }

    @Test("an older revision of a key row put back (replay) is detected")
    func replayedRevision() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        let old = try setup.fixture.fetch("SELECT body, revision, mac, state FROM keys WHERE id = ?", [Data(setup.victim.bytes)])[0]
        _ = try await setup.fixture.service.transition(key: setup.victim.description, .markCompromised, actor: .owner("t"))
        try setup.fixture.tamper("UPDATE keys SET body = ?, revision = ?, mac = ?, state = ? WHERE id = ?",
                                 [old["body"] as Data?, old["revision"] as Int64?, old["mac"] as Data?, old["state"] as String?, Data(setup.victim.bytes)])
        let service = try await setup.fixture.reopen()
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: setup.victim.description, actor: .owner("t")) }
        guard case .integrityFailure(let message)? = error, message.contains("revision") else {
            Issue.record("replayed row was accepted: \(String(describing: error))"); return
        }
        #expect(try await service.decrypt(setup.bystanderCiphertext, actor: .owner("t")).plaintext == [2])
        let report = try await service.verifyStore()
        #expect(report.problems.contains { $0.contains(setup.victim.description) && $0.contains("replayed") })
    }

    @Test("an untouched store verifies clean")
    func cleanStoreVerifies() async throws {
        let setup = try await Self.setup()
        defer { setup.fixture.remove() }
        let report = try await setup.fixture.reopen().verifyStore()
        #expect(report.isIntact, "\(report.problems) \(report.audit.problems)")
        #expect(report.keys == 2 && report.versions == 2 && report.aliases == 2 && report.audit.entries > 4)
    }
}

@Suite("Integrity of the audited-revision index")
struct AuditedRevisionIndexTests {
    @Test("a replayed row with its audited-revision index lowered too is still named by verify")
    func replayWithIndexEdited() async throws {
        let setup = try await IntegrityTests.setup()
        defer { setup.fixture.remove() }
        let old = try setup.fixture.fetch("SELECT body, revision, mac, state FROM keys WHERE id = ?", [Data(setup.victim.bytes)])[0]
        _ = try await setup.fixture.service.transition(key: setup.victim.description, .disable, actor: .owner("t"))
        try setup.fixture.tamper("UPDATE keys SET body = ?, revision = ?, mac = ?, state = ? WHERE id = ?",
                                 [old["body"] as Data?, old["revision"] as Int64?, old["mac"] as Data?, old["state"] as String?, Data(setup.victim.bytes)])
        try setup.fixture.tamper("UPDATE anchored_revisions SET revision = 1 WHERE record = ?", [Data([1] + setup.victim.bytes)])
        // The running check refuses every operation on it: the index no longer matches the head's MAC.
        let reopened = try await setup.fixture.reopen()
        await #expect(throws: KeywardError.self) { _ = try await reopened.describe(key: setup.victim.description, actor: .owner("t")) }
        let report = try await reopened.verifyStore()
        #expect(report.problems.contains { $0.contains(setup.victim.description) && $0.contains("replayed") }, "\(report.problems)")
        #expect(report.problems.contains { $0.contains("index edited") })
    }
}
