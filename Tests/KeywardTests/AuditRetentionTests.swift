import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Audit retention: old entries leave the store as signed segment files, a signed checkpoint
/// stands for them, and the kept log still verifies and still anchors every revision. Each
/// attack on a pruned log is performed and shown named.
@Suite("Audit retention")
struct AuditRetentionTests {
    /// A store with a day-old stretch of activity (keys, a revoked token) and a recent one.
    private static func agedStore() async throws -> (StoreFixture, archive: String, revoked: IssuedToken, liveRow: TokenRow) {
        let fixture = try await StoreFixture.make()
        let service = fixture.service, owner = Caller.owner("t")
        for _ in 0..<4 {
            let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
            _ = try await service.encrypt([1], key: id, actor: owner)
        }
        let revoked = try await service.issueToken(principal: "old", policy: .everything, lifetime: nil, actor: owner)
        let liveRow = try #require(try await SQLiteKeyStore(path: fixture.path).token(revoked.record.id))
        try await service.revokeToken(revoked.record.id, actor: owner)
        fixture.manualClock.advance(by: 86_400)
        for _ in 0..<3 { _ = try await service.createKey(CreateKeyRequest(), actor: owner) }
        let archive = fixture.directory.appendingPathComponent("archive").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        return (fixture, archive, revoked, liveRow)
    }

    private static func segments(in directory: String) throws -> [AuditSegment] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map { name in
            try AuditSegment(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))))
        }
    }

    @Test("entries older than the cutoff are archived as signed segments that chain into the kept log, then removed; the kept log verifies from its checkpoint, and a reopened store works on")
    func pruneArchivesAndKeepsVerifying() async throws {
        let (fixture, archive, _, _) = try await Self.agedStore()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let cutoff = fixture.manualClock.now.addingTimeInterval(-3_600)
        let pruning = try await service.pruneAudit(olderThan: cutoff, archive: archive, actor: owner)
        let through = try #require(pruning.through)
        #expect(through > 10 && pruning.entries == Int(through) && pruning.segments.count == 1)

        // The store holds nothing up to the checkpoint; the archive holds exactly that.
        let store = try SQLiteKeyStore(path: fixture.path)
        #expect(try await store.auditEntries(after: 0, limit: 1).first?.sequence == through + 1)
        let signer = try await service.auditSigner(actor: owner)
        let archived = try Self.segments(in: archive)
        #expect(archived.count == 1 && archived[0].header.first == 1 && archived[0].header.last == through)
        // The archive and an export of the kept log are one chain from entry 1.
        let kept = try await service.exportAuditSegment(after: through, actor: owner)
        #expect(AuditSegment.problems(archived + [kept], signer: signer, fromStart: true).isEmpty)

        let audit = try await service.verifyAudit()
        #expect(audit.isIntact, "\(audit.problems)")
        #expect(audit.entries == Int(try #require(try await service.auditAnchor()).sequence - through))
        #expect(try await service.verifyStore().isIntact)
        // A second run finds nothing older left to remove.
        #expect(try await service.pruneAudit(olderThan: cutoff, archive: archive, actor: owner).through == nil)

        let reopened = try await fixture.reopen()
        let id = try await reopened.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        _ = try await reopened.encrypt([2], key: id, actor: owner)
        #expect(try await reopened.verifyStore().isIntact)
        // The removed range cannot be exported from the store any more: it is in the archive.
        do {
            _ = try await reopened.exportAuditSegment(after: 0, actor: owner)
            Issue.record("a pruned range was exported")
        } catch {
            guard case .invalidArgument(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains("archive"))
        }
    }

    @Test("attack: a revoked token's live row put back after its revocation was pruned is still refused: the checkpoint carries the revision index")
    func replayRefusedAfterPruning() async throws {
        let (fixture, archive, revoked, liveRow) = try await Self.agedStore()
        defer { fixture.remove() }
        let through = try #require(try await fixture.service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: .owner("t")).through)
        // The revocation's entry is among the removed ones.
        let store = try SQLiteKeyStore(path: fixture.path)
        #expect(try await store.auditEntries(after: 0, limit: 1).first?.sequence == through + 1)
        // The row as it was before the revocation, genuine and MAC'd, put back.
        try fixture.tamper("UPDATE tokens SET hash = ?, body = ?, revision = ?, mac = ? WHERE id = ?",
                           [Data(liveRow.hash), Data(liveRow.body), liveRow.revision, Data(liveRow.mac), Data(revoked.record.id.bytes)])
        let reopened = try await fixture.reopen()
        await #expect(throws: KeywardError.self) { _ = try await reopened.authenticate(revoked.text) }
        let report = try await reopened.verifyStore()
        #expect(report.problems.contains { $0.contains("token \(revoked.record.id)") && $0.contains("replayed") })
    }

    @Test("a verification resumed after entries that retention has since removed walks the kept log from its checkpoint")
    func resumedVerificationAfterPruning() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        let point = try #require(try await service.verifyStore(inBackground: false, resumingAfter: nil).walked)
        for _ in 0..<3 { _ = try await service.encrypt([1], key: id, actor: owner) }
        fixture.manualClock.advance(by: 86_400)
        for _ in 0..<2 { _ = try await service.createKey(CreateKeyRequest(), actor: owner) }
        let archive = fixture.directory.appendingPathComponent("archive").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        let through = try #require(try await service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: owner).through)
        #expect(through > point.sequence)
        // The entries after the point are gone: the walk starts at the checkpoint instead.
        let (report, walked) = try await service.verifyStore(inBackground: false, resumingAfter: point)
        #expect(report.isIntact && report.audit.resumedAfter == nil, "\(report.allProblems)")
        let end = try #require(walked)
        #expect(report.audit.entries == Int(end.sequence - through))
        // From there on it resumes again.
        _ = try await service.encrypt([2], key: id, actor: owner)
        let again = try await service.verifyStore(inBackground: false, resumingAfter: end).report
        #expect(again.isIntact && again.audit.resumedAfter == end.sequence, "\(again.allProblems)")
    }

    @Test("attack: the checkpoint deleted, edited or replaced by an older one, and entries removed by hand past it, are each named")
    func tamperingNamed() async throws {
        let (fixture, archive, _, _) = try await Self.agedStore()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let firstRun = try #require(try await service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: owner).through)
        let queue = try DatabaseQueue(path: fixture.path)
        let saved = try await queue.read { db in try Row.fetchOne(db, sql: "SELECT sequence, body, signature FROM audit_checkpoint")! }
        func problems() async throws -> [String] { try await fixture.reopen().verifyAudit().problems }
        func restore() throws {
            try fixture.tamper("DELETE FROM audit_checkpoint")
            try fixture.tamper("INSERT INTO audit_checkpoint (id, sequence, body, signature) VALUES (1, ?, ?, ?)",
                               [saved["sequence"] as Int64, saved["body"] as Data, saved["signature"] as Data])
        }

        // Deleted: the log now seems to start at #1 and lacks everything before the kept entries.
        try fixture.tamper("DELETE FROM audit_checkpoint")
        #expect(try await problems().contains { $0.contains("audit #1: missing") })
        try restore()
        #expect(try await problems().isEmpty)

        // Edited: another sequence in the body, or another revision in its index.
        var body = saved["body"] as Data
        let text = String(decoding: body, as: UTF8.self)
        let revision = try #require(text.range(of: "\"revision\":1}"))
        body = Data(text.replacingCharacters(in: revision, with: "\"revision\":9}").utf8)
        try fixture.tamper("UPDATE audit_checkpoint SET body = ?", [body])
        #expect(try await problems().contains { $0.contains("signature does not verify") })
        try restore()

        // Entries removed by hand past the checkpoint: a gap after it.
        try fixture.tamper("DELETE FROM audit WHERE sequence <= ?", [firstRun + 2])
        #expect(try await problems().contains { $0.contains("audit #\(firstRun + 1): missing") })
    }

    @Test("attack: an older checkpoint put back after a second pruning leaves a gap that is named")
    func olderCheckpointNamed() async throws {
        let (fixture, archive, _, _) = try await Self.agedStore()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        _ = try await service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: owner)
        let queue = try DatabaseQueue(path: fixture.path)
        let older = try await queue.read { db in try Row.fetchOne(db, sql: "SELECT sequence, body, signature FROM audit_checkpoint")! }
        fixture.manualClock.advance(by: 86_400)
        for _ in 0..<3 { _ = try await service.createKey(CreateKeyRequest(), actor: owner) }
        let second = try #require(try await service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: owner).through)
        #expect(try Self.segments(in: archive).count == 2)
        #expect(AuditSegment.problems(try Self.segments(in: archive), signer: try await service.auditSigner(actor: owner), fromStart: true).isEmpty)
        try fixture.tamper("UPDATE audit_checkpoint SET sequence = ?, body = ?, signature = ?",
                           [older["sequence"] as Int64, older["body"] as Data, older["signature"] as Data])
        let problems = try await fixture.reopen().verifyAudit().problems
        #expect(problems.contains { $0.contains("missing (next entry is #\(second + 1))") })
    }

    @Test("a log that does not verify is not pruned, and nothing is archived; a caller without maintenance is refused; a missing archive directory is named")
    func refusals() async throws {
        let (fixture, archive, _, _) = try await Self.agedStore()
        defer { fixture.remove() }
        let service = fixture.service
        let cutoff = fixture.manualClock.now.addingTimeInterval(-3_600)
        let reader = Caller.principal("reader", policy: AccessPolicy(rules: [AccessRule(operations: [.readAudit], keys: .any)]))
        await #expect(throws: KeywardError.self) { _ = try await service.pruneAudit(olderThan: cutoff, archive: archive, actor: reader) }
        do {
            _ = try await service.pruneAudit(olderThan: cutoff, archive: archive + "/nowhere", actor: .owner("t"))
            Issue.record("pruned into a missing directory")
        } catch {
            guard case .invalidArgument(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains("nowhere"))
        }
        try fixture.tamper("UPDATE audit SET body = body || x'20' WHERE sequence = 3")
        let tampered = try await fixture.reopen()
        do {
            _ = try await tampered.pruneAudit(olderThan: cutoff, archive: archive, actor: .owner("t"))
            Issue.record("a tampered log was pruned")
        } catch {
            guard case .integrityFailure(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains("audit #3"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: archive).isEmpty)
        #expect(try await SQLiteKeyStore(path: fixture.path).auditEntries(after: 0, limit: 1).first?.sequence == 1)
    }

    @Test("after pruning, the KEK rotates (its replay starts from the checkpoint) and the store verifies under the new KEK; anchors older than the checkpoint pass, one at it with another hash fails")
    func kekRotationAndAnchorsAfterPruning() async throws {
        let (fixture, archive, _, _) = try await Self.agedStore()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        let head = try #require(try await fixture.service.auditAnchor())
        let through = try #require(try await fixture.service.pruneAudit(olderThan: fixture.manualClock.now.addingTimeInterval(-3_600), archive: archive, actor: owner).through)
        let rotated = try await fixture.service.rotateKEK(root: try KeyFileRootOfTrust(path: fixture.keyFile), actor: owner)
        #expect(try await rotated.verifyStore().isIntact)
        let reopened = try await fixture.reopen()
        #expect(try await reopened.verifyAudit().isIntact)

        // Anchors of archived entries, with their true hashes from the archive, and of a kept one.
        let archived = try Self.segments(in: archive)[0]
        let storeID = head.storeID
        let fifth = archived.entries[4]
        let anchors = [AuditAnchor(storeID: storeID, sequence: fifth.sequence, hash: Array(Data(hexString: fifth.hash)), recordedAt: Date()),
                       AuditAnchor(storeID: storeID, sequence: through, hash: Array(Data(hexString: archived.header.lastHash)), recordedAt: Date()),
                       head]
        #expect(try await reopened.checkAuditAnchors(anchors).isEmpty)
        let wrong = AuditAnchor(storeID: storeID, sequence: through, hash: [UInt8](repeating: 7, count: 32), recordedAt: Date())
        #expect(try await reopened.checkAuditAnchors([wrong]).contains { $0.contains("audit #\(through) differs") })
    }
}

private extension Data {
    init(hexString: String) {
        var bytes: [UInt8] = []
        var index = hexString.startIndex
        while index < hexString.endIndex {
            let next = hexString.index(index, offsetBy: 2)
            bytes.append(UInt8(hexString[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes)
    }
}
