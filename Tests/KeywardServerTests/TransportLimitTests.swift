import Foundation
import Keyward
import KeywardServer
import KeywardServerTesting
import Testing

@Suite("Transport limits", .serialized)
struct TransportLimitTests {
    private func start(_ configure: @escaping (inout ServerConfiguration) -> Void = { _ in }) async throws -> (ServerFixture, LiveServer) {
        let fixture = try await ServerFixture.make {
            $0.limits.idleTimeoutSeconds = 1
            $0.limits.requestReadTimeoutSeconds = 1
            configure(&$0)
        }
        return (fixture, try await LiveServer.start(fixture.server))
    }

    @Test("attack: a slowloris client trickling its head, or its body, is cut off after the read timeout")
    func slowloris() async throws {
        let (fixture, live) = try await start()
        defer { fixture.remove() }
        for body in [false, true] {
            let connection = try RawConnection(port: live.port)
            connection.send(body ? "POST /v1/random HTTP/1.1\r\nHost: k\r\nContent-Length: 100\r\nAuthorization: Bearer \(fixture.rootToken)\r\n\r\n{" : "GET /v1/health HTTP/1.1\r\n")
            var closed = false
            // One byte every 200 ms: each keeps the idle timer from firing, not the read deadline.
            for _ in 0..<25 where !closed {
                closed = !connection.send(body ? " " : "X")
                if !closed { closed = await connection.receive(for: 0.2).closed }
            }
            #expect(closed, "a trickling \(body ? "body" : "head") kept its connection for 5 s")
        }
        try await live.stop()
    }

    @Test("attack: many idle connections are capped and each closes after the idle timeout")
    func idleConnections() async throws {
        let (fixture, live) = try await start {
            $0.limits.maxConnections = 8
            $0.limits.idleTimeoutSeconds = 5
        }
        defer { fixture.remove() }
        var connections: [RawConnection] = []
        for _ in 0..<20 { connections.append(try RawConnection(port: live.port)) }
        // Past the cap, connections are closed as soon as they are accepted, long before the 5 s
        // idle timeout. (Which ones depends on the order the event loops set them up.)
        // Four rounds of 50 ms, each watching every connection at once: the whole check takes a
        // fraction of a second, far inside the admitted connections' 5 s idle timeout (watched
        // one after another, 20 connections took seconds on a loaded machine, and admitted ones
        // began to time out before the count).
        var open = connections
        for _ in 0..<4 {
            let watched = open
            let closed = await withTaskGroup(of: (Int, Bool).self) { group in
                for (index, connection) in watched.enumerated() {
                    group.addTask { (index, await connection.receive(for: 0.05).closed) }
                }
                var closed = Set<Int>()
                for await (index, isClosed) in group where isClosed { closed.insert(index) }
                return closed
            }
            open = watched.enumerated().filter { !closed.contains($0.offset) }.map(\.element)
        }
        #expect(open.count == 8, "\(20 - open.count) connections closed at once; expected the 12 past the cap")
        // The eight admitted, idle, close after the idle timeout: a bounded wait of 8 s.
        var idleClosed = 0
        for connection in open where await connection.receive(for: 8).closed { idleClosed += 1 }
        #expect(idleClosed == open.count)
        // The server still answers.
        let fresh = try RawConnection(port: live.port)
        fresh.send("GET /v1/health HTTP/1.1\r\nHost: k\r\n\r\n")
        #expect(await fresh.receive(for: 3) { $0.contains("\r\n\r\n") }.text.hasPrefix("HTTP/1.1 200"))
        try await live.stop()
    }

    @Test("attack: an oversized body is refused with 413 from its head, before it is sent or read, with or without Expect: 100-continue")
    func oversizedBodyRefusedEarly() async throws {
        // Not a timeout test: the read deadline is generous, so a loaded machine's delay between
        // the 100 Continue and the body does not cut the request (the 1 s of `start()` did, once).
        let (fixture, live) = try await start {
            $0.limits.requestReadTimeoutSeconds = 30
            $0.limits.idleTimeoutSeconds = 30
        }
        defer { fixture.remove() }
        for expect in [true, false] {
            let connection = try RawConnection(port: live.port)
            connection.send("POST /v1/keys HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer \(fixture.rootToken)\r\nContent-Type: application/json\r\n"
                            + "Content-Length: 104857600\r\n\(expect ? "Expect: 100-continue\r\n" : "")\r\n")
            let reply = await connection.receive(for: 10) { $0.contains("body_too_large") }
            #expect(reply.text.hasPrefix("HTTP/1.1 413") && reply.text.contains("body_too_large"), "\(reply.text)")
            #expect(await connection.receive(for: 10).closed)
        }
        // A chunked body that grows past the limit is refused as it crosses it.
        let chunked = try RawConnection(port: live.port)
        chunked.send("POST /v1/keys HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer \(fixture.rootToken)\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "a", count: 32 * 1024)
        for _ in 0..<4 { chunked.send(String(32 * 1024, radix: 16) + "\r\n" + chunk + "\r\n") }
        let reply = await chunked.receive(for: 10) { $0.contains("body_too_large") }
        #expect(reply.text.hasPrefix("HTTP/1.1 413"), "\(reply.text.prefix(200))")
        // Expect: 100-continue within the limit is told to go on.
        let small = try RawConnection(port: live.port)
        small.send("POST /v1/random HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer \(fixture.rootToken)\r\nContent-Type: application/json\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n")
        #expect(await small.receive(for: 10) { $0.contains("\r\n\r\n") }.text.hasPrefix("HTTP/1.1 100"))
        small.send(#"{"count":16}"#)
        #expect(await small.receive(for: 10) { $0.contains("random") }.text.contains("HTTP/1.1 200"))
        try await live.stop()
    }

    @Test("the transport's 413 for an oversize body answers in the shape of the front end it was for: Transit's under its configured mount, AWS's, or the native API's")
    func oversizeRefusalsInTheirFrontEndsShape() async throws {
        let (fixture, live) = try await start {
            $0.limits.requestReadTimeoutSeconds = 30
            $0.limits.idleTimeoutSeconds = 30
            $0.transitMount = "vault"
        }
        defer { fixture.remove() }
        /// The refusal of a body declared (or, chunked, grown) past the limit on `path`.
        func refusal(_ path: String, chunked: Bool = false, extra: String = "") async throws -> String {
            let connection = try RawConnection(port: live.port)
            let framing = chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 104857600\r\n"
            connection.send("POST \(path) HTTP/1.1\r\nHost: k\r\nX-Vault-Token: \(fixture.rootToken)\r\n\(extra)\(framing)\r\n")
            if chunked {
                let chunk = String(repeating: "a", count: 32 * 1024)
                for _ in 0..<4 { connection.send(String(32 * 1024, radix: 16) + "\r\n" + chunk + "\r\n") }
            }
            let reply = await connection.receive(for: 10) { $0.contains("}") }
            #expect(await connection.receive(for: 10).closed, "\(path): the connection stays open")
            return reply.text
        }
        for chunked in [false, true] {
            // Transit under its mount: Vault's shape and status.
            let transit = try await refusal("/v1/vault/encrypt/k?x=1", chunked: chunked)
            #expect(transit.hasPrefix("HTTP/1.1 413") && transit.contains(#"{"errors":["the request body is larger than"#), "\(transit)")
            // The default mount's path is not Transit's when Transit is mounted elsewhere.
            let native = try await refusal("/v1/transit/encrypt/k", chunked: chunked)
            #expect(native.hasPrefix("HTTP/1.1 413") && native.contains(#"{"error":{"code":"body_too_large""#), "\(native)")
            // AWS: its error type and content type, as a route's refusal of a large body.
            let aws = try await refusal("/", chunked: chunked, extra: "X-Amz-Target: TrentService.Encrypt\r\n")
            #expect(aws.hasPrefix("HTTP/1.1 400") && aws.contains(#"{"__type":"ValidationException","message":"the request body is larger than"#)
                    && aws.lowercased().contains("content-type: application/x-amz-json-1.1"), "\(aws)")
        }
        try await live.stop()
    }

    @Test("A head and a large body that arrive in one read are served: only a head counts against the head-size limit")
    func headAndBodyInOneRead() async throws {
        let (fixture, live) = try await start()
        defer { fixture.remove() }
        let connection = try RawConnection(port: live.port)
        let body = #"{"input":""# + String(repeating: "QUFB", count: 15_000) + #""}"#
        // NIO's reads grow with the traffic: after a few such requests each arrives in one read.
        for round in 0..<8 {
            connection.send("POST /v1/transit/hash HTTP/1.1\r\nHost: k\r\nX-Vault-Token: \(fixture.rootToken)\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            let reply = await connection.read(responses: 1)
            #expect(reply.text.hasPrefix("HTTP/1.1 200") && reply.text.contains("sum") && !reply.closed, "round \(round): \(reply.text.prefix(120))")
            if reply.closed { break }
        }
        // A head over the limit in one such read is still refused (by the parser's own limit).
        connection.send("GET /v1/health HTTP/1.1\r\nHost: k\r\nX-Padding: " + String(repeating: "p", count: 30_000) + "\r\n\r\n")
        let refused = await connection.receive(for: 5)
        #expect(refused.closed && !refused.text.contains("200"), "\(refused.text.prefix(100))")
        try await live.stop()
    }

    @Test("HTTP/1.0 without keep-alive closes after its response; an over-long head closes the connection")
    func http10AndHeaderSize() async throws {
        let (fixture, live) = try await start { $0.limits.maxHeaderBytes = 4096 }
        defer { fixture.remove() }
        let old = try RawConnection(port: live.port)
        old.send("GET /v1/health HTTP/1.0\r\n\r\n")
        let reply = await old.receive(for: 10)
        #expect(reply.text.contains("200") && reply.closed, "\(reply)")
        let kept = try RawConnection(port: live.port)
        kept.send("GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        // Waits as long as a loaded machine needs for the reply, then checks the connection stays
        // open a while after it (the idle timeout here is 1 s).
        let keptReply = await kept.receive(for: 10) { $0.contains("status") }
        #expect(keptReply.text.contains("200") && !keptReply.closed)
        #expect(await !kept.receive(for: 0.3).closed, "an HTTP/1.0 keep-alive connection closed after its response")

        let huge = try RawConnection(port: live.port)
        huge.send("GET /v1/health HTTP/1.1\r\nHost: k\r\nX-Padding: " + String(repeating: "p", count: 8192) + "\r\n\r\n")
        let hugeReply = await huge.receive(for: 3)
        #expect(hugeReply.closed && !hugeReply.text.contains("200"), "\(hugeReply.text.prefix(100))")
        try await live.stop()
    }
}
