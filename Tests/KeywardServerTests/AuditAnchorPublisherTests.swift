import AsyncHTTPClient
import Foundation
import Keyward
import KeywardServer
import KeywardServerTesting
import Testing

@Suite("The server writes audit anchors")
struct AuditAnchorPublisherTests {
    @Test("with audit.anchor set to a file, the server appends an anchor as the log grows and a last one at shutdown; they check against the store")
    func anchorsWritten() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("anchors-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fixture = try await ServerFixture.make {
            $0.auditAnchor = "file:" + path
            $0.auditAnchorIntervalSeconds = 1
        }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let live = try await LiveServer.start(fixture.server)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        func anchors() -> [AuditAnchor] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { AuditAnchor(line: String($0)) }
        }
        // The first anchor comes at start; poll (bounded, 10 s) rather than assume a time.
        for _ in 0..<100 where anchors().isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!anchors().isEmpty, "no anchor was written")
        let reply = try await send(client, "http://127.0.0.1:\(live.port)/v1/keys/\(key)/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#)
        #expect(reply.status == 200)
        try await client.shutdown()
        try await live.stop()
        // After shutdown the file ends with the log's head, and every anchor holds.
        let written = anchors()
        let head = try #require(try await fixture.service.auditAnchor())
        #expect(written.last?.sequence == head.sequence && written.last?.hash == head.hash, "\(written.map(\.sequence)) vs \(head.sequence)")
        #expect(Set(written.map(\.sequence)).count == written.count, "an anchor was written twice for the same entry")
        #expect(try await fixture.service.checkAuditAnchors(written).isEmpty)
    }

    @Test("audit.anchor other than file:PATH, stdout or syslog, or an interval out of range, is refused by name")
    func badSettingsRefused() throws {
        for (anchor, interval) in [("file:", 60), ("s3://bucket", 60), ("stdout", 0), ("syslog", 100_000)] {
            var configuration = ServerConfiguration()
            configuration.insecureHTTP = true
            configuration.auditAnchor = anchor
            configuration.auditAnchorIntervalSeconds = interval
            #expect(throws: KeywardError.self, "\(anchor) \(interval)") { try configuration.validate() }
        }
    }
}
