import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardStorage
import Testing

/// An anchor kept outside the store catches what the chain alone cannot: the newest entries
/// deleted, the store rolled back to an older copy, the log replaced.
@Suite("Audit anchors")
struct AuditAnchorTests {
    @Test("an anchor line round-trips, and lines that are not anchors are not read as one")
    func lines() throws {
        let anchor = AuditAnchor(storeID: KeyID(), sequence: 42, hash: (0..<32).map { UInt8($0) }, recordedAt: Date(timeIntervalSince1970: 1_801_396_800))
        #expect(AuditAnchor(line: anchor.line) == anchor)
        #expect(AuditAnchor(line: "Dec  4 15:00:00 host keyward[7]: " + anchor.line) == anchor)   // as syslog writes it
        for junk in ["", "hello", anchor.line.replacingOccurrences(of: "sequence=42", with: "sequence=0"),
                     anchor.line.replacingOccurrences(of: "hash=00", with: "hash=zz"), String(anchor.line.dropLast(3))] {
            #expect(AuditAnchor(line: junk) == nil, "\(junk)")
        }
    }

    @Test("attack: deleting the newest audit entries, rewriting an anchored entry, or checking another store's anchors is named")
    func anchorsCatchTruncationAndRewrites() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["a"]), actor: owner)
        let early = try #require(try await fixture.service.auditAnchor())
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["b"]), actor: owner)
        _ = try await fixture.service.rotate(key: "b", actor: owner)
        let late = try #require(try await fixture.service.auditAnchor())
        #expect(late.sequence > early.sequence)
        #expect(try await fixture.service.checkAuditAnchors([early, late]).isEmpty)

        // Another store's anchor is reported, not skipped.
        let stranger = AuditAnchor(storeID: KeyID(), sequence: 1, hash: late.hash, recordedAt: Date())
        #expect(try await fixture.service.checkAuditAnchors([stranger]).first?.contains("not this store") == true)

        // The newest entries deleted (as a rollback to an older copy would leave it).
        try fixture.tamperWithoutForeignKeys("DELETE FROM audit WHERE sequence > ?", [early.sequence])
        let reopened = try await fixture.reopen()
        let truncated = try await reopened.checkAuditAnchors([early, late])
        #expect(truncated.count == 1 && truncated[0].contains("deleted or the store was rolled back"), "\(truncated)")

        // An anchored entry rewritten.
        try fixture.tamperWithoutForeignKeys("UPDATE audit SET hash = zeroblob(32) WHERE sequence = ?", [early.sequence])
        let rewritten = try await fixture.reopen().checkAuditAnchors([early])
        #expect(rewritten.count == 1 && rewritten[0].contains("was rewritten"), "\(rewritten)")
    }

    @Test("anchor lines appended to a file are whole lines, the file is 0600, and a symbolic link is refused")
    func anchorFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("anchor-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("anchors").path
        let anchor = AuditAnchor(storeID: KeyID(), sequence: 7, hash: [UInt8](repeating: 9, count: 32), recordedAt: Date(timeIntervalSince1970: 0))
        try AuditAnchorFile.append(anchor.line, to: path)
        try AuditAnchorFile.append(anchor.line, to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").compactMap { AuditAnchor(line: String($0)) } == [anchor, anchor])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let link = directory.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        #expect(throws: KeywardError.self) { try AuditAnchorFile.append(anchor.line, to: link) }
    }
}
