import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Exported audit segments: signed files that anyone holding the store's audit signing public
/// key checks without the store. Each attack on a segment is performed and shown named.
@Suite("Audit segments")
struct AuditSegmentTests {
    /// A store with some audit entries, and two consecutive segments of them.
    private static func twoSegments() async throws -> (StoreFixture, AuditSegment, AuditSegment, PublicKey) {
        let fixture = try await StoreFixture.make()
        let service = fixture.service, owner = Caller.owner("t")
        for _ in 0..<5 {
            let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
            _ = try await service.encrypt([1], key: id, actor: owner)
        }
        let signer = try await service.auditSigner(actor: owner)
        let first = try await service.exportAuditSegment(after: 0, through: 6, actor: owner)
        let second = try await service.exportAuditSegment(after: 6, actor: owner)
        return (fixture, first, second, signer)
    }

    @Test("two consecutive segments verify offline, alone and as one log from its start, against the pinned signer; a segment read back from its bytes is the same")
    func intactSegmentsVerify() async throws {
        let (fixture, first, second, signer) = try await Self.twoSegments()
        defer { fixture.remove() }
        #expect(first.header.first == 1 && first.header.last == 6 && second.header.first == 7 && second.header.last >= 12)
        #expect(first.problems(signer: signer).isEmpty && second.problems(signer: signer).isEmpty)
        #expect(AuditSegment.problems([first, second], signer: signer, fromStart: true).isEmpty)
        let reread = try AuditSegment(parsing: second.bytes)
        #expect(reread.entries == second.entries && reread.header == second.header && reread.problems(signer: signer).isEmpty)
        // The entries are the store's: the same bodies the store's own verification reads.
        #expect(try await fixture.service.verifyAudit().isIntact)
    }

    @Test("attack: an edited, dropped or reordered entry, an edited header, another store's signer, and a gap between segments are each named")
    func tamperingNamed() async throws {
        let (fixture, first, second, signer) = try await Self.twoSegments()
        defer { fixture.remove() }
        let text = String(decoding: second.bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func problems(_ lines: [String]) throws -> [String] {
            try AuditSegment(parsing: Array(lines.joined(separator: "\n").utf8)).problems(signer: signer)
        }
        // An entry's body rewritten (one byte more), with its hash left alone.
        var edited = lines
        let body = try #require(AuditSegmentTests.field("body", in: edited[2]))
        let rewritten = (Data(base64Encoded: body)! + Data(" ".utf8)).base64EncodedString()
        edited[2] = edited[2].replacingOccurrences(of: body, with: rewritten)
        #expect(try problems(edited).contains { $0.contains("content was changed") || $0.contains("signed digest") })
        // An entry dropped, and two swapped.
        var dropped = lines
        dropped.remove(at: 2)
        #expect(try problems(dropped).contains { $0.contains("missing") })
        var swapped = lines
        swapped.swapAt(1, 2)
        #expect(try !problems(swapped).isEmpty)
        // The header's range edited: its signature fails.
        lines[0] = lines[0].replacingOccurrences(of: "\"first\":\(second.header.first)", with: "\"first\":\(second.header.first + 1)")
        #expect(try problems(lines).contains { $0.contains("signature") })
        // Signed by another store's key: refused against the pinned signer.
        let other = try await StoreFixture.make()
        defer { other.remove() }
        _ = try await other.service.createKey(CreateKeyRequest(), actor: .owner("t"))
        let foreign = try await other.service.exportAuditSegment(after: 0, actor: .owner("t"))
        #expect(foreign.problems(signer: signer).contains { $0.contains("not by the audit signing key you named") })
        #expect(foreign.problems().isEmpty, "intact under its own key")
        // A gap: the second segment without the first, as if entries 1 to 6 were dropped.
        #expect(AuditSegment.problems([second], signer: signer, fromStart: true).contains { $0.contains("not at the log's first entry") })
        let third = try await fixture.service.exportAuditSegment(after: second.header.last + 1, actor: .owner("t"))
        #expect(AuditSegment.problems([first, second, third], signer: signer).contains { $0.contains("does not follow") })
        // Not a segment at all.
        #expect(throws: KeywardError.self) { try AuditSegment(parsing: Array("{}\n".utf8)) }
    }

    @Test("a store whose log was tampered with exports nothing, naming the entry; an empty range and a caller without read-audit are refused")
    func tamperedStoreExportsNothing() async throws {
        let (fixture, _, _, _) = try await Self.twoSegments()
        defer { fixture.remove() }
        try fixture.tamper("UPDATE audit SET body = ? WHERE sequence = 3", [Data("{}".utf8)])
        guard case .integrityFailure(let reason) = await keywardError({ () async throws(KeywardError) in
            _ = try await fixture.service.exportAuditSegment(after: 0, actor: .owner("t"))
        }) else { Issue.record("a tampered log was exported"); return }
        #expect(reason.contains("#3"))
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in
            _ = try await fixture.service.exportAuditSegment(after: 1_000_000, actor: .owner("t"))
        }) else { Issue.record("an empty range was exported"); return }
        let reader = Caller.principal("reader", policy: AccessPolicy(rules: [try AccessPolicy.parseRule("encrypt:*")]))
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in
            _ = try await fixture.service.exportAuditSegment(after: 0, actor: reader)
        }) else { Issue.record("a caller without read-audit exported the log"); return }
    }

    @Test("tamper sweep: 2,000 random single-byte flips over two segment files, each caught (the file does not parse, or a problem is named)")
    func flipSweep() async throws {
        let (fixture, first, second, signer) = try await Self.twoSegments()
        defer { fixture.remove() }
        var caught = 0, flips = 0
        for segment in [first, second] {
            let bytes = segment.bytes
            for _ in 0..<1000 {
                var flipped = bytes
                let at = Int.random(in: 0..<flipped.count)
                flipped[at] ^= UInt8.random(in: 1...255)
                flips += 1
                guard let parsed = try? AuditSegment(parsing: flipped) else { caught += 1; continue }
                if !AuditSegment.problems([parsed], signer: signer).isEmpty { caught += 1 } else {
                    Issue.record("a flip at byte \(at) of a \(bytes.count)-byte segment went unnoticed")
                }
            }
        }
        print("audit segment sweep: \(caught) of \(flips) flips caught")
        #expect(caught == flips)
    }

    /// A string field of a JSON line.
    static func field(_ name: String, in line: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?[name] as? String
    }
}
