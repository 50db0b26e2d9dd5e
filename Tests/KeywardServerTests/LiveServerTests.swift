import AsyncHTTPClient
import Foundation
import Keyward
@testable import KeywardServer
import KeywardServerTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import Testing
import X509

/// The development PKI written to files, with a client certificate from it and one from another CA.
struct TLSMaterial {
    let directory: URL
    let pki: DevelopmentPKI
    let caPath, certificatePath, keyPath: String
    let client: DevelopmentPKI.Issued
    let stranger: DevelopmentPKI.Issued
    /// The client certificate's `ISSUER | SUBJECT`, as `tls.clientPolicies` names it.
    let clientSubject: String
    /// The other CA's certificate, for a client CA bundle that trusts both.
    let strangerCAPEM: String

    static func make() throws -> TLSMaterial {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pki = try DevelopmentPKI()
        let server = try pki.issueServer()
        func write(_ name: String, _ text: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            // 0600: the private key passes `SecretFile`'s checks; the rest need not, but may.
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            return path
        }
        let client = try pki.issueClient(commonName: "billing")
        let otherCA = try DevelopmentPKI(name: "Some other CA")
        let stranger = try otherCA.issueClient(commonName: "billing")
        let parsed = try Certificate(pemEncoded: client.certificatePEM)
        return TLSMaterial(directory: directory, pki: pki, caPath: try write("ca.pem", pki.caCertificatePEM),
                           certificatePath: try write("server.pem", server.certificatePEM), keyPath: try write("server-key.pem", server.privateKeyPEM),
                           client: client, stranger: stranger, clientSubject: "\(parsed.issuer) | \(parsed.subject)",
                           strangerCAPEM: otherCA.caCertificatePEM)
    }

    func clientTLS(_ identity: DevelopmentPKI.Issued? = nil, minimum: TLSVersion = .tlsv12, maximum: TLSVersion? = nil) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pki.caCertificatePEM.utf8)))
        tls.minimumTLSVersion = minimum
        tls.maximumTLSVersion = maximum
        if let identity {
            tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(identity.certificatePEM.utf8), format: .pem))]
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
        }
        return tls
    }
}

func send(_ client: HTTPClient, _ url: String, token: String?, method: HTTPMethod = .GET, body: String? = nil, timeout: Int64 = 30) async throws -> (status: Int, version: HTTPVersion, text: String, headers: HTTPHeaders) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await client.execute(request, timeout: .seconds(timeout))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), response.version, String(buffer: bytes), response.headers)
}

@Suite("Live server on loopback: TLS, HTTP/2, mTLS, graceful shutdown", .serialized)
struct LiveServerTests {
    @Test("attack: a client CA bundle or a backup recipient file others can write (a CA of their own, backups sealed to their key) is refused at start")
    func writableTrustFilesRefused() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: material.caPath)
        let withCA = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath, clientCA: material.caPath,
                           clientPolicies: [material.clientSubject: ["encrypt:*"]])
        }
        defer { withCA.remove() }
        do {
            let live = try await LiveServer.start(withCA.server)
            try await live.stop()
            Issue.record("the server started with a client CA anyone can write")
        } catch {
            #expect("\(error)".contains("chmod go-w"), "\(error)")
        }
        let recipient = material.directory.appendingPathComponent("recipient.pub").path
        FileManager.default.createFile(atPath: recipient, contents: Data("-----BEGIN PUBLIC KEY-----\n".utf8), attributes: [.posixPermissions: 0o664])
        do {
            let fixture = try await ServerFixture.make { $0.backup.recipients = [recipient] }
            fixture.remove()
            Issue.record("a server was made with a recipient file its group can write")
        } catch {
            #expect("\(error)".contains("backup.recipients") && "\(error)".contains("chmod go-w"), "\(error)")
        }
    }

    @Test("attack: a TLS private key others on the machine can read, or a link to one, is refused at start, naming the file's mode")
    func exposedPrivateKeyRefused() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let link = material.directory.appendingPathComponent("linked-key.pem").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: material.keyPath)
        for (key, expected) in [(material.keyPath, "mode 644"), (link, "symbolic link")] {
            if key == material.keyPath { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key) }
            let fixture = try await ServerFixture.make {
                $0.insecureHTTP = false
                $0.tls = .init(certificate: material.certificatePath, privateKey: key)
            }
            defer { fixture.remove() }
            do {
                let live = try await LiveServer.start(fixture.server)
                try await live.stop()
                Issue.record("the server started with \(key)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: material.keyPath)
        }
    }

    @Test("HTTPS with HTTP/2 by ALPN and HTTP/1.1; TLS 1.1 refused; an untrusted client refuses the certificate")
    func tls() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath)
        }
        defer { fixture.remove() }
        let live = try await LiveServer.start(fixture.server)
        let base = "https://localhost:\(live.port)"

        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS()))
        let created = try await send(client, base + "/v1/keys", token: fixture.rootToken, method: .POST, body: #"{"aliases":["live"]}"#)
        #expect(created.status == 201 && created.version.major == 2)
        let sealed = try await send(client, base + "/v1/keys/live/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#)
        #expect(sealed.status == 200 && sealed.text.contains("ciphertext"))
        // A browser that has seen the console over HTTPS keeps to HTTPS (HSTS).
        let console = try await send(client, base + "/ui/login", token: nil)
        #expect(console.status == 200 && console.headers["strict-transport-security"].first == "max-age=31536000", "\(console.headers)")
        try await client.shutdown()

        var http1Configuration = HTTPClient.Configuration(tlsConfiguration: try material.clientTLS())
        http1Configuration.httpVersion = .http1Only
        let http1 = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http1Configuration)
        let health = try await send(http1, base + "/v1/health", token: nil)
        #expect(health.status == 200 && health.version.major == 1)
        try await http1.shutdown()

        let old = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS(minimum: .tlsv1, maximum: .tlsv11)))
        await #expect(throws: (any Error).self) { _ = try await send(old, base + "/v1/health", token: nil, timeout: 2) }
        try await old.shutdown()

        var untrusting = TLSConfiguration.makeClientConfiguration()
        untrusting.trustRoots = .certificates([])
        let stranger = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: untrusting))
        await #expect(throws: (any Error).self) { _ = try await send(stranger, base + "/v1/health", token: nil, timeout: 2) }
        try await stranger.shutdown()
        try await live.stop()
    }

    @Test("attack: an HTTP/2 stream that stalls its body is answered 408 after the read timeout, and an oversize one 413, while the connection's other streams are served")
    func http2BodiesHeldToTheReadLimits() async throws {
        let server = try await HTTP2LimitsServer.start()
        defer { server.remove() }
        let (fixture, base, client) = (server.fixture, server.base, server.client)

        // The client is shut down however the checks end (a deadline thrown on the old code).
        do {
            // A body that sends its first byte and then nothing for 20 s (the client's own deadline is 15 s).
            let (stalled, feed) = AsyncStream<ByteBuffer>.makeStream()
            feed.yield(ByteBuffer(string: "{"))
            let release = Task { try? await Task.sleep(for: .seconds(20)); feed.finish() }
            var request = HTTPClientRequest(url: base + "/v1/keys")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(fixture.rootToken)")
            request.body = .stream(stalled, length: .known(Int64(100)))
            async let answered = client.execute(request, timeout: .seconds(15))
            // Meanwhile the same client (the same HTTP/2 connection) is served.
            let health = try await send(client, base + "/v1/health", token: nil)
            #expect(health.status == 200 && health.version.major == 2)
            let reply = try await answered
            let text = String(buffer: try await reply.body.collect(upTo: 1 << 16))
            #expect(reply.version.major == 2 && reply.status.code == 408 && text.contains("request_timeout"), "\(reply.status) \(text)")
            release.cancel()
            feed.finish()

            let oversize = try await send(client, base + "/v1/keys", token: fixture.rootToken, method: .POST, body: #"{"description":""# + String(repeating: "A", count: 8192) + #""}"#)
            #expect(oversize.version.major == 2 && oversize.status == 413 && oversize.text.contains("larger than 4096 bytes"), "\(oversize.status) \(oversize.text)")
            let created = try await send(client, base + "/v1/keys", token: fixture.rootToken, method: .POST, body: #"{"aliases":["h2"]}"#)
            #expect(created.status == 201)
        } catch {
            Issue.record("an HTTP/2 request failed: \(error)")
        }
        try await server.stop()
    }

    @Test("over HTTP/2 the transport's 408 and 413 answer in the shape of the front end the stream was for: Transit's and AWS's")
    func http2RefusalsInTheirFrontEndsShape() async throws {
        let server = try await HTTP2LimitsServer.start()
        defer { server.remove() }
        let (fixture, base, client) = (server.fixture, server.base, server.client)
        /// `path` answered to a body that is `oversize`, or else sends one byte and stalls.
        func refusal(_ path: String, oversize: Bool, headers: [(String, String)]) async throws -> (status: Int, type: String?, text: String) {
            var request = HTTPClientRequest(url: base + path)
            request.method = .POST
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let (stalled, feed) = AsyncStream<ByteBuffer>.makeStream()
            if oversize {
                request.body = .bytes(ByteBuffer(string: String(repeating: "A", count: 8192)))
            } else {
                feed.yield(ByteBuffer(string: "{"))
                request.body = .stream(stalled, length: .known(Int64(100)))
            }
            defer { feed.finish() }
            let reply = try await client.execute(request, timeout: .seconds(15))
            #expect(reply.version.major == 2)
            return (Int(reply.status.code), reply.headers.first(name: "content-type"), String(buffer: try await reply.body.collect(upTo: 1 << 16)))
        }
        do {
            let transit = [("X-Vault-Token", fixture.rootToken)]
            let aws = [("X-Amz-Target", "TrentService.Encrypt"), ("Content-Type", "application/x-amz-json-1.1")]
            async let transitStalled = refusal("/v1/transit/encrypt/k", oversize: false, headers: transit)
            async let awsStalled = refusal("/", oversize: false, headers: aws)
            let (t408, a408) = try await (transitStalled, awsStalled)
            #expect(t408.status == 408 && t408.text.hasPrefix(#"{"errors":["the request body did not arrive within 1 s"#), "\(t408)")
            #expect(a408.status == 408 && a408.type == "application/x-amz-json-1.1"
                    && a408.text.hasPrefix(#"{"__type":"RequestTimeoutException","message":"the request body did not arrive"#), "\(a408)")
            let t413 = try await refusal("/v1/transit/encrypt/k", oversize: true, headers: transit)
            #expect(t413.status == 413 && t413.text.hasPrefix(#"{"errors":["the request body is larger than 4096 bytes"#), "\(t413)")
            let a413 = try await refusal("/", oversize: true, headers: aws)
            #expect(a413.status == 400 && a413.text.hasPrefix(#"{"__type":"ValidationException","message":"the request body is larger than 4096"#), "\(a413)")
            let native = try await refusal("/v1/keys", oversize: true, headers: [("Authorization", "Bearer \(fixture.rootToken)")])
            #expect(native.status == 413 && native.text.hasPrefix(#"{"error":{"code":"body_too_large""#), "\(native)")
        } catch {
            Issue.record("an HTTP/2 request failed: \(error)")
        }
        try await server.stop()
    }

    @Test("attack: a client certificate its CA has revoked is refused (tls.clientCRL), others are not; a stale CRL refuses all of that CA; a forged or unsigned CRL is refused at start")
    func revokedClientCertificateRefused() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let revoked = try material.pki.issueClient(commonName: "billing")
        let crlPath = material.directory.appendingPathComponent("clients.crl").path
        try Data(try material.pki.revocationList(revoking: [revoked], nextUpdate: Date().addingTimeInterval(86_400)).utf8).write(to: URL(fileURLWithPath: crlPath))
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath, clientCA: material.caPath,
                           clientPolicies: [material.clientSubject: ["encrypt:*"]])
            $0.tls?.clientCRL = crlPath
        }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        let live = try await LiveServer.start(fixture.server)
        let url = "https://localhost:\(live.port)/v1/keys/\(key)/encrypt"
        func status(_ identity: DevelopmentPKI.Issued) async throws -> (Int, String) {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS(identity)))
            defer { _ = client.shutdown() }
            let reply = try await send(client, url, token: nil, method: .POST, body: #"{"plaintext":"AQID"}"#)
            return (reply.status, reply.text)
        }
        // Same subject, same CA: only the serial number tells them apart.
        #expect(try await status(material.client).0 == 200)
        let refused = try await status(revoked)
        #expect(refused.0 == 401 && refused.1.contains("revoked"), "\(refused)")
        try await live.stop()

        // A CRL past its next update: fail closed for that CA's certificates.
        try Data(try material.pki.revocationList(revoking: [], thisUpdate: Date().addingTimeInterval(-7200),
                                                 nextUpdate: Date().addingTimeInterval(-3600)).utf8).write(to: URL(fileURLWithPath: crlPath))
        let staleServer = try KeywardServer(service: fixture.service, configuration: fixture.server.configuration)
        let stale = try await LiveServer.start(staleServer)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS(material.client)))
        let staleReply = try await send(client, "https://localhost:\(stale.port)/v1/keys/\(key)/encrypt", token: nil, method: .POST, body: #"{"plaintext":"AQID"}"#)
        #expect(staleReply.status == 401 && staleReply.text.contains("due for renewal"), "\(staleReply.status) \(staleReply.text)")
        try await client.shutdown()
        try await stale.stop()

        // A CRL signed by another CA (a forger's), naming the configured CA or not, stops the start.
        let forger = try DevelopmentPKI(name: "Keyward development CA")   // the same name, another key
        try Data(try forger.revocationList(revoking: [material.client], nextUpdate: Date().addingTimeInterval(86_400)).utf8).write(to: URL(fileURLWithPath: crlPath))
        #expect(throws: KeywardError.self) { _ = try KeywardServer(service: fixture.service, configuration: fixture.server.configuration) }
        try Data("not a CRL".utf8).write(to: URL(fileURLWithPath: crlPath))
        #expect(throws: KeywardError.self) { _ = try KeywardServer(service: fixture.service, configuration: fixture.server.configuration) }
        // A serial whose high bit is set is padded with a zero byte in DER; both forms match.
        #expect(RevocationList.serial([0x00, 0x80, 0x01]) == RevocationList.serial([0x80, 0x01]))
    }

    @Test("mTLS: a certificate from the configured CA authenticates its subject with its policy; another CA's certificate, or none, fails the handshake")
    func mutualTLS() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath, clientCA: material.caPath,
                           clientPolicies: [material.clientSubject: ["encrypt,describe:alias=billing/*", "manage-tokens:*"]])
        }
        defer { fixture.remove() }
        let billing = try await fixture.service.createKey(CreateKeyRequest(aliases: ["billing/invoices"]), actor: .owner("test")).metadata.id
        let notAfter = try Certificate(pemEncoded: material.client.certificatePEM).notValidAfter
        let other = try await fixture.service.createKey(CreateKeyRequest(aliases: ["hr/salaries"]), actor: .owner("test")).metadata.id
        let live = try await LiveServer.start(fixture.server)
        let base = "https://localhost:\(live.port)"

        // HTTP/2 streams and HTTP/1.1 connections reach the certificate by different channels.
        for version in [HTTPClient.Configuration.HTTPVersion.automatic, .http1Only] {
            var configuration = HTTPClient.Configuration(tlsConfiguration: try material.clientTLS(material.client))
            configuration.httpVersion = version
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let sealed = try await send(client, base + "/v1/keys/\(billing)/encrypt", token: nil, method: .POST, body: #"{"plaintext":"AQID"}"#)
            #expect(sealed.status == 200 && sealed.version.major == (version == .http1Only ? 1 : 2), "\(version): \(sealed.status) \(sealed.text)")
            #expect(try await send(client, base + "/v1/keys/\(other)/encrypt", token: nil, method: .POST, body: #"{"plaintext":"AQID"}"#).status == 403)
            // A bearer token still works over an mTLS connection, with the token's own policy.
            #expect(try await send(client, base + "/v1/keys/\(other)/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#).status == 200)
            // A token the certificate's holder issues expires with the certificate, at the latest.
            let minted = try await send(client, base + "/v1/admin/tokens", token: nil, method: .POST, body: #"{"principal":"batch","rules":["encrypt:alias=billing/*"]}"#)
            #expect(minted.status == 201 && minted.text.contains(#""expiresAt":"\#(ISO8601DateFormatter().string(from: notAfter))""#), "\(minted.text)")
            try await client.shutdown()
        }
        let events = try await fixture.service.auditTail(20).map(\.event)
        #expect(events.contains { $0.actor == "mtls:\(material.clientSubject)" && $0.outcome == "ok" })

        for identity in [material.stranger, nil] {
            let refused = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS(identity)))
            await #expect(throws: (any Error).self) { _ = try await send(refused, base + "/v1/health", token: nil, timeout: 2) }
            try await refused.shutdown()
        }
        try await live.stop()
    }

    @Test("attack: with two CAs trusted for clients, the other CA's certificate for the same subject is refused, and a certificate without clientAuth cannot log in")
    func clientRulesBindTheIssuer() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let bundle = material.directory.appendingPathComponent("clients.pem").path
        try Data((material.pki.caCertificatePEM + "\n" + material.strangerCAPEM).utf8).write(to: URL(fileURLWithPath: bundle))
        // The server's own certificate (serverAuth only), mapped as if an operator had meant it.
        let server = try material.pki.issueServer()
        let serverCertificate = try Certificate(pemEncoded: server.certificatePEM)
        let serverKey = "\(serverCertificate.issuer) | \(serverCertificate.subject)"
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath, clientCA: bundle,
                           clientPolicies: [material.clientSubject: ["encrypt:*"], serverKey: ["encrypt:*"]])
        }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        let live = try await LiveServer.start(fixture.server)
        let url = "https://localhost:\(live.port)/v1/keys/\(key)/encrypt"
        func status(_ identity: DevelopmentPKI.Issued) async throws -> Int? {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS(identity)))
            let answer = try? await send(client, url, token: nil, method: .POST, body: #"{"plaintext":"AQID"}"#, timeout: 5).status
            try await client.shutdown()
            return answer
        }
        #expect(try await status(material.client) == 200)
        // Same subject (CN=billing,O=Keyward), other CA: the handshake passes (both CAs are
        // trusted), the rule does not, since it names the first CA.
        #expect(try await status(material.stranger) == 401)
        // A certificate without clientAuth is refused, whatever rule names it (at the handshake or by the server).
        let asClient = try await status(server)
        #expect(asClient == nil || asClient == 401, "\(String(describing: asClient))")
        try await live.stop()
    }

    @Test("graceful shutdown: requests in flight when it begins finish; then the server stops accepting")
    func gracefulShutdown() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        let live = try await LiveServer.start(fixture.server)
        let base = "http://127.0.0.1:\(live.port)"
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let items = (0..<1000).map { _ in #"{"plaintext":"AQIDBA=="}"# }.joined(separator: ",")
        // Several large batches in flight when the shutdown begins.
        let inflight = (0..<4).map { _ in
            Task { try await send(client, base + "/v1/keys/\(key)/encrypt/batch", token: fixture.rootToken, method: .POST, body: #"{"items":[\#(items)]}"#) }
        }
        // Shutdown begins once the server is working on them (a slow machine may take a while
        // to send them; 20 ms was not always enough).
        for _ in 0..<200 where fixture.server.metrics.requestsInFlight < inflight.count { try await Task.sleep(for: .milliseconds(10)) }
        let stopping = Task { try await live.stop() }
        do {
            for request in inflight {
                let reply = try await request.value
                #expect(reply.status == 200 && reply.text.components(separatedBy: "ciphertext").count == 1001)
            }
            try await stopping.value
            await #expect(throws: (any Error).self) { _ = try await send(client, base + "/v1/health", token: nil, timeout: 2) }
        } catch {
            Issue.record("\(error)")
        }
        try await client.shutdown()
    }

    @Test("the server destroys a key on its date with no request touching it (the maintenance scheduler)")
    func scheduledDestructionWithoutRequests() async throws {
        let fixture = try await ServerFixture.make { $0.maintenanceIntervalSeconds = 1 }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        _ = try await fixture.service.transition(key: key.description, .disable, actor: .owner("test"))
        _ = try await fixture.service.transition(key: key.description, .scheduleDestruction, waitingDays: 7, actor: .owner("test"))
        fixture.clock.advance(by: 8 * 86_400)
        let live = try await LiveServer.start(fixture.server)
        var destroyed = false
        // Bounded: up to 10 s for a sweep that runs every second.
        for _ in 0..<100 where !destroyed {
            try await Task.sleep(for: .milliseconds(100))
            destroyed = try await fixture.service.auditTail(50).contains {
                $0.event.operation == "destroy" && $0.event.keyID == key && $0.event.actor == SystemJob.scheduledDestruction.principal
            }
        }
        #expect(destroyed, "no scheduled destruction within 10 s")
        try await live.stop()
    }

    @Test("a verification that takes long never holds back the maintenance sweep: a key due for destruction is destroyed while the walk of the audit log is stalled")
    func sweepRunsBesideVerification() async throws {
        let fixture = try await ServerFixture.make {
            $0.maintenanceIntervalSeconds = 1
            $0.verifyIntervalSeconds = 1
        }
        defer { fixture.remove() }
        let id = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        _ = try await fixture.service.transition(key: id.description, .scheduleDestruction, waitingDays: 7, actor: .owner("test"))
        fixture.store.auditReadsHeld.store(true, ordering: .relaxed)
        defer { fixture.store.auditReadsHeld.store(false, ordering: .relaxed) }
        let live = try await LiveServer.start(fixture.server)
        // The startup verification is stalled in its walk; only then does the destruction fall due.
        for _ in 0..<100 where fixture.store.heldAuditReads.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(fixture.store.heldAuditReads.load(ordering: .relaxed) > 0, "the verification never read the audit log")
        fixture.clock.advance(by: 8 * 86_400)
        // The row as stored (describing the key would destroy it on the spot, as any use does).
        var state = "pending-destruction"
        // Bounded: up to 10 s for a sweep that runs every second.
        for _ in 0..<100 where state != KeyState.destroyed.rawValue {
            try await Task.sleep(for: .milliseconds(100))
            state = try await fixture.store.key(id)?.state ?? "missing"
        }
        #expect(state == KeyState.destroyed.rawValue, "the sweep did not run while the verification was stalled")
        #expect(!fixture.logs.text.contains("periodic verification: the store is intact"), "the verification was not stalled")
        fixture.store.auditReadsHeld.store(false, ordering: .relaxed)
        try await live.stop()
    }

    @Test("the server's periodic verification walks the whole audit log at startup, then resumes where it ended, walking only what was appended since")
    func periodicVerificationResumes() async throws {
        let fixture = try await ServerFixture.make {
            $0.maintenanceIntervalSeconds = 1
            $0.verifyIntervalSeconds = 1
        }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let live = try await LiveServer.start(fixture.server)
        func verifications() -> [String] { fixture.logs.text.split(separator: "\n").map(String.init).filter { $0.contains("periodic verification: the store is intact") } }
        // Bounded: up to 10 s for two verifications a second apart.
        for _ in 0..<100 where verifications().count < 2 {
            try await Task.sleep(for: .milliseconds(100))
            _ = try await fixture.service.encrypt([1], key: key, actor: .owner("test"))
        }
        try await live.stop()
        let lines = verifications()
        #expect(lines.count >= 2 && lines[0].contains("auditWalk=from the start") && lines[1].contains("auditWalk=resumed after #"), "\(lines)")
        #expect(!fixture.logs.text.contains("found a problem"))
    }

    @Test("with audit.retentionDays the server archives entries older than the period as signed segments and removes them from the store, as its own job")
    func auditRetentionWithoutRequests() async throws {
        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-archive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let fixture = try await ServerFixture.make {
            $0.maintenanceIntervalSeconds = 1
            $0.auditRetentionDays = 1
            $0.auditArchiveDirectory = archive
        }
        defer { fixture.remove() }
        for _ in 0..<3 { _ = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")) }
        fixture.clock.advance(by: 2 * 86_400)
        _ = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test"))
        let live = try await LiveServer.start(fixture.server)
        var archived: [String] = []
        // Bounded: up to 10 s; the first run starts with the server.
        for _ in 0..<100 where archived.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            archived = try FileManager.default.contentsOfDirectory(atPath: archive)
        }
        try await live.stop()
        #expect(archived.count == 1, "no archived segment within 10 s")
        let audit = try await fixture.service.verifyAudit()
        #expect(audit.isIntact, "\(audit.problems)")
        let run = try await fixture.service.auditTail(100).first { $0.event.actor == SystemJob.auditRetention.principal && $0.event.operation == "maintenance" }
        #expect(run?.event.detail?.contains("archived in 1 segments and removed") == true)
        let segment = try AuditSegment(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: archive).appendingPathComponent(archived[0]))))
        let signer = try await fixture.service.auditSigner(actor: .owner("test"))
        #expect(segment.header.first == 1 && segment.problems(signer: signer).isEmpty)
    }
}

/// The console's sign-in with a client certificate, on a live mTLS socket.
@Suite("Console over mTLS", .serialized)
struct ConsoleCertificateTests {
    /// A request with headers; the status, the Set-Cookie values and the body.
    func request(_ client: HTTPClient, _ url: String, method: HTTPMethod = .GET, cookie: String? = nil,
                 form: String? = nil) async throws -> (status: Int, cookies: [String], text: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers["Set-Cookie"], String(buffer: bytes))
    }

    @Test("attack: a console session signed in with a client certificate works only over a connection presenting that certificate; a cookie replayed with another certificate is refused")
    func certificateSignIn() async throws {
        let material = try TLSMaterial.make()
        defer { try? FileManager.default.removeItem(at: material.directory) }
        let other = try material.pki.issueClient(commonName: "payroll")
        let otherSubject = try Certificate(pemEncoded: other.certificatePEM)
        let otherKey = "\(otherSubject.issuer) | \(otherSubject.subject)"
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath, clientCA: material.caPath,
                           clientPolicies: [material.clientSubject: ["describe,rotate:alias=billing/*"], otherKey: ["describe:alias=hr/*"]])
        }
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["billing/invoices"]), actor: .owner("test"))
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["hr/salaries"]), actor: .owner("test"))
        let live = try await LiveServer.start(fixture.server)
        let base = "https://localhost:\(live.port)"
        func client(_ identity: DevelopmentPKI.Issued) throws -> HTTPClient {
            var configuration = HTTPClient.Configuration(tlsConfiguration: try material.clientTLS(identity))
            configuration.redirectConfiguration = .disallow
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
        let billing = try client(material.client)
        let payroll = try client(other)
        do {
            try await signInAndReplay(billing, payroll, base, fixture)
        } catch {
            Issue.record(error)
        }
        try await billing.shutdown()
        try await payroll.shutdown()
        try await live.stop()
    }

    private func signInAndReplay(_ billing: HTTPClient, _ payroll: HTTPClient, _ base: String, _ fixture: ServerFixture) async throws {
        let login = try await request(billing, base + "/ui/login")
        #expect(login.status == 200 && login.text.contains("Sign in with the certificate"))
        let nonce = login.cookies.first { $0.hasPrefix("keyward_login=") }?.split(separator: ";").first?.dropFirst("keyward_login=".count) ?? ""
        let signed = try await request(billing, base + "/ui/login", method: .POST, cookie: "keyward_login=\(nonce)", form: "csrf=\(nonce)&method=certificate")
        let session = signed.cookies.first { $0.hasPrefix("keyward_session=") }?.split(separator: ";").first.map(String.init) ?? ""
        #expect(signed.status == 303 && session.count > 20 && signed.cookies.first { $0.hasPrefix("keyward_session=") }?.contains("Secure") == true)
        let keys = try await request(billing, base + "/ui/keys", cookie: session)
        #expect(keys.status == 200 && keys.text.contains("billing/invoices") && !keys.text.contains("hr/salaries"))
        #expect(keys.text.contains("mtls:"))
        // The same cookie over a connection with another client's certificate: sent to sign in.
        let replayed = try await request(payroll, base + "/ui/keys", cookie: session)
        #expect(replayed.status == 303, "\(replayed.status)")
        // And the session is gone for its owner too: a replay ends it.
        #expect(try await request(billing, base + "/ui/keys", cookie: session).status == 303)
        let audit = try await fixture.service.auditTail(50).map(\.event)
        #expect(audit.contains { $0.actor.hasPrefix("mtls:") && $0.route == "POST /ui/login" && $0.outcome == "ok" })
    }
}

/// A TLS server (HTTP/2 by ALPN) with a 1 s read timeout and a 4,096-byte body limit, and a
/// client trusting it: the transport's HTTP/2 refusals are tested against it.
private struct HTTP2LimitsServer {
    let material: TLSMaterial
    let fixture: ServerFixture
    let live: LiveServer
    let client: HTTPClient
    var base: String { "https://localhost:\(live.port)" }

    static func start() async throws -> HTTP2LimitsServer {
        let material = try TLSMaterial.make()
        let fixture = try await ServerFixture.make {
            $0.insecureHTTP = false
            $0.tls = .init(certificate: material.certificatePath, privateKey: material.keyPath)
            $0.limits.requestReadTimeoutSeconds = 1
            $0.maxBodyBytes = 4096
        }
        let live = try await LiveServer.start(fixture.server)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: try material.clientTLS()))
        return HTTP2LimitsServer(material: material, fixture: fixture, live: live, client: client)
    }

    /// Shuts the client down and stops the server.
    func stop() async throws {
        try await client.shutdown()
        try await live.stop()
    }

    /// Removes the store and the TLS material.
    func remove() {
        fixture.remove()
        try? FileManager.default.removeItem(at: material.directory)
    }
}
