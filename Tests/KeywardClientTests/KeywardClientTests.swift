import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Keyward
@testable import KeywardClient
import KeywardCrypto
import KeywardServer
import KeywardServerTesting
import KeywardServiceTestSupport
import KeywardStorage
import KeywardTestSupport
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// A `keyward serve` on a loopback socket with TLS from a development CA, a fresh store and a
/// root token.
struct LiveService {
    let directory: URL
    let service: KeyService
    let rootToken: String
    let pki: DevelopmentPKI
    let fingerprint: String
    let server: LiveServer

    var url: String { server.url }

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> LiveService {
        let temporary = try TemporaryStore(label: "client")
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: temporary.path("s.db")),
                                                      root: try temporary.root(), actor: .owner("test"))
        let root = try await service.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: .owner("test"))
        let live = try await LiveServer.startWithDevelopmentTLS(service: service, directory: temporary.directory, configure: configure)
        return LiveService(directory: temporary.directory, service: service, rootToken: root.text, pki: live.pki,
                           fingerprint: live.fingerprint, server: live.server)
    }

    func client(trust: KeywardClientConfiguration.Trust? = nil, token: String? = nil,
                retry: KeywardClientConfiguration.Retry = .init(), timeout: Duration = .seconds(10)) async throws -> KeywardClient {
        try await KeywardClient(configuration: .init(url: url, token: token ?? rootToken, trust: trust ?? .certificateAuthority(pem: pki.caCertificatePEM),
                                                     retry: retry, timeout: timeout))
    }

    func stop() async throws {
        try await server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// How many audit entries record `operation`.
    func audited(_ operation: String) async throws -> Int {
        try await service.auditTail(10_000).filter { $0.event.operation == operation && $0.event.outcome == "ok" }.count
    }
}

@Suite("KeywardClient against a live server", .serialized)
struct KeywardClientTests {
    @Test("attack on the token in transit: plain HTTP to a host beyond loopback is refused before any connection; loopback, https and an explicit opt-in are not")
    func plainHTTPBeyondLoopbackRefused() async throws {
        for url in ["http://10.0.0.7:8200", "http://kms.example.com", "http://127.0.0.1.example.com:8200", "http://[fe80::1]:8200", "http://0.0.0.0:8200"] {
            do {
                _ = try await KeywardClient(configuration: .init(url: url, token: "kw_x"))
                Issue.record("\(url) was accepted")
            } catch {
                #expect(error.description.contains("in clear"), "\(url): \(error)")
            }
        }
        for url in ["http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200", "https://kms.example.com"] {
            let client = try await KeywardClient(configuration: .init(url: url, token: "kw_x"))
            try await client.shutdown()
        }
        var optedIn = KeywardClientConfiguration(url: "http://10.0.0.7:8200", token: "kw_x")
        optedIn.allowsPlainHTTPBeyondLoopback = true
        try await KeywardClient(configuration: optedIn).shutdown()
    }

    @Test("a server that is not there is reported after the client's own retries, naming the address and the reason, not after each attempt's whole timeout")
    func stoppedServerReported() async throws {
        // A port that was just free: nothing listens there.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        close(probe)
        let url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let client = try await KeywardClient(configuration: .init(url: url, token: "kw_x"))
        let started = ContinuousClock.now
        do {
            _ = try await client.random(count: 8)
            Issue.record("a call to \(url) succeeded")
        } catch {
            #expect(error.description.contains(url) && error.description.contains("connection refused"), "\(error)")
        }
        // Not a speed target: the pool's own connection retries held every attempt for its
        // whole 30 s timeout (four attempts: two minutes); the bound only tells the two apart.
        #expect(started.duration(to: .now) < .seconds(25))
        try await client.shutdown()
    }

    @Test("keys and operations through the SDK, with typed errors")
    func operations() async throws {
        let live = try await LiveService.start()
        let client = try await live.client()
        let key = try await client.createKey(aliases: ["sdk/orders"], tags: ["team": "pay"])
        #expect(key.state == "active" && key.aliases == ["sdk/orders"])
        #expect(try await client.describeKey("sdk/orders").id == key.id)
        #expect(try await client.listKeys(tag: ("team", "pay")).keys.map(\.id) == [key.id])

        let sealed = try await client.encrypt(Array("hello".utf8), key: "sdk/orders", context: ["order": "42"])
        #expect(sealed.keyID == key.id && sealed.version == 1)
        #expect(try await client.decrypt(sealed.bytes, context: ["order": "42"]) == Array("hello".utf8))
        #expect(try await client.decrypt(sealed.bytes, key: "sdk/orders", context: ["order": "42"]) == Array("hello".utf8))
        let batch = try await client.encryptBatch([[1], [2], [3]], key: key.id)
        let opened = try await client.decryptBatch(batch.compactMap { try? $0.get().bytes } + [[0, 1, 2]], key: key.id)
        #expect(opened.prefix(3).compactMap { try? $0.get() } == [[1], [2], [3]])
        guard case .failure(.api(let code, _, _)) = opened[3] else { Issue.record("tampered item decrypted"); return }
        #expect(code == "invalid_ciphertext")

        let rotated = try await client.rotateKey(key.id)
        #expect(rotated.currentVersion == 2)
        #expect(try await client.reEncrypt(sealed.bytes, to: key.id, sourceContext: ["order": "42"]).version == 2)

        let signer = try await client.createKey(spec: "ED25519")
        let signature = try await client.sign(Array("doc".utf8), key: signer.id)
        #expect(try await client.verify(signature.bytes, for: Array("doc".utf8), key: signer.id))
        #expect(try await client.verify(signature.bytes, for: Array("dog".utf8), key: signer.id) == false)
        #expect(try await client.publicKey(signer.id).count == 44)
        let hmac = try await client.createKey(spec: "HMAC-SHA256")
        let tag = try await client.mac([9], key: hmac.id)
        #expect(try await client.verifyMAC(tag.bytes, for: [9], key: hmac.id))
        #expect(try await client.random(count: 16).count == 16)
        let dataKey = try await client.generateDataKey(key: key.id)
        #expect(dataKey.plaintext.count == 32)

        do {
            _ = try await client.encrypt([1], key: "sdk/missing")
            Issue.record("unknown key encrypted")
        } catch {
            #expect(error == .api(code: "key_not_found", status: 404, message: error.apiMessage))
        }
        _ = try await client.transition(key.id, "disable")
        await #expect(throws: KeywardClientError.self) { _ = try await client.encrypt([1], key: key.id) }
        try await client.shutdown()
        try await live.stop()
    }

    @Test("trust: the development CA and the printed fingerprint pin work; a wrong pin, the system roots and another CA fail, the last saying what to trust")
    func trust() async throws {
        let live = try await LiveService.start()
        let pinned = try await live.client(trust: .pinnedFingerprint(sha256: live.fingerprint))
        #expect(try await pinned.random(count: 4).count == 4)
        try await pinned.shutdown()

        let wrongPin = String(repeating: "ab:", count: 31) + "ab"
        await #expect(throws: KeywardClientError.self) { _ = try await live.client(trust: .pinnedFingerprint(sha256: wrongPin)) }

        let system = try await live.client(trust: .systemRoots, retry: .init(maximumAttempts: 1), timeout: .seconds(2))
        await #expect(throws: KeywardClientError.self) { _ = try await system.random(count: 4) }
        try await system.shutdown()

        let other = try DevelopmentPKI()
        let stranger = try await live.client(trust: .certificateAuthority(pem: other.caCertificatePEM), retry: .init(maximumAttempts: 1), timeout: .seconds(2))
        do {
            _ = try await stranger.random(count: 4)
            Issue.record("a certificate from another CA was trusted")
        } catch {
            // Said in words a user can act on, not as BoringSSL's error.
            #expect(error.description.contains("not one this client trusts") && !error.description.contains("BoringSSL"), "\(error)")
        }
        try await stranger.shutdown()
        try await live.stop()
    }

    @Test("the wrong scheme is named: https:// to a plain-HTTP server and http:// to an HTTPS one each say which URL to use, not a TLS library's error")
    func wrongSchemeNamed() async throws {
        let secure = try await LiveService.start()
        let port = secure.server.port
        let plainToSecure = try await KeywardClient(configuration: .init(url: "http://127.0.0.1:\(port)", token: secure.rootToken,
                                                                          retry: .init(maximumAttempts: 1), timeout: .seconds(5)))
        do {
            _ = try await plainToSecure.random(count: 4)
            Issue.record("plain HTTP to a TLS port was answered")
        } catch {
            #expect(error.description.contains("use an https:// URL") && !error.description.contains("HTTPClientError"), "\(error)")
        }
        try await plainToSecure.shutdown()
        try await secure.stop()

        let plain = try await LiveService.start { $0.insecureHTTP = true }
        #expect(plain.url.hasPrefix("http://"))
        let secureToPlain = try await KeywardClient(configuration: .init(url: "https://127.0.0.1:\(plain.server.port)", token: plain.rootToken,
                                                                          trust: .certificateAuthority(pem: plain.pki.caCertificatePEM),
                                                                          retry: .init(maximumAttempts: 1), timeout: .seconds(5)))
        do {
            _ = try await secureToPlain.random(count: 4)
            Issue.record("TLS to a plain-HTTP port was answered")
        } catch {
            #expect(error.description.contains("use an http:// URL") && !error.description.contains("BoringSSL"), "\(error)")
        }
        try await secureToPlain.shutdown()
        try await plain.stop()
    }

    @Test("a plain request cut off by a TLS server names the https:// URL whether the client saw the close or a reset (which it sees is a race)")
    func plainCutOffNamedEitherWay() {
        // The close is what `wrongSchemeNamed` usually meets on a live server; the reset, here.
        #expect(KeywardClient.reason(IOError(errnoCode: ECONNRESET, reason: "read"), url: "http://127.0.0.1:8443").contains("use an https:// URL"))
        // Over https:// a reset is only a reset.
        #expect(KeywardClient.reason(IOError(errnoCode: ECONNRESET, reason: "read"), url: "https://127.0.0.1:8443") == "https://127.0.0.1:8443: connection reset by peer")
    }

    @Test("updateKey refuses a minimum decryption version below 1 before sending anything")
    func updateKeyChecksTheVersion() async throws {
        let client = try await KeywardClient(configuration: .init(url: "https://127.0.0.1:1", token: "unused-token-for-a-local-check",
                                                                  retry: .init(maximumAttempts: 1), timeout: .seconds(5)))
        for bad in [0, -1, Int(UInt32.max) + 1] {
            do {
                _ = try await client.updateKey("k", minDecryptionVersion: bad)
                Issue.record("\(bad) was sent")
            } catch {
                guard case .configuration(let why) = error else { Issue.record("\(bad): \(error)"); continue }
                #expect(why.contains("1 or more, not \(bad)"))
            }
        }
        try await client.shutdown()
    }

    @Test("a TLS failure's reason is BoringSSL's reason code alone")
    func tlsReasonExtracted() {
        let raw = "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435703 error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER at /x/tls_record.cc:127]))"
        #expect(KeywardClient.tlsReason(fromDescription: raw) == "WRONG_VERSION_NUMBER")
        #expect(KeywardClient.tlsReason(fromDescription: "handshakeFailed(something else)") == "handshakeFailed(something else)")
    }

    @Test("attack: a server with another certificate from the same CA, met on a later connection, fails the fingerprint pin")
    func pinHoldsOnEveryHandshake() async throws {
        let live = try await LiveService.start()
        // Retries on: a reused connection that the stopped server closed is retried on a new one.
        let pinned = try await live.client(trust: .pinnedFingerprint(sha256: live.fingerprint))
        #expect(try await pinned.random(count: 4).count == 4)
        let port = live.server.port
        try await live.server.stop()
        // The impostor holds a valid certificate for the same names from the same CA, on the
        // same address: only the leaf differs.
        let impostor = try await LiveServer.startWithDevelopmentTLS(service: live.service, directory: live.directory, pki: live.pki) {
            $0.port = port
        }
        #expect(impostor.fingerprint != live.fingerprint)
        do {
            _ = try await pinned.random(count: 4)
            Issue.record("the pinned client talked to a server with another leaf certificate")
        } catch {
            #expect("\(error)".contains("pinned fingerprint"))
        }
        // A client that trusts the CA does talk to it: the refusal is the pin's doing.
        let viaCA = try await KeywardClient(configuration: .init(url: impostor.server.url, token: live.rootToken,
                                                                 trust: .certificateAuthority(pem: live.pki.caCertificatePEM)))
        #expect(try await viaCA.random(count: 4).count == 4)
        try await viaCA.shutdown()
        try await pinned.shutdown()
        try await impostor.server.stop()
        try? FileManager.default.removeItem(at: live.directory)
    }

    @Test("attack on exactly-once: a connection dropped after the request is sent retries a repeatable call (random) but never a key creation, which the server may already have made")
    func noRetryOfCreatesAfterTransportFailure() async throws {
        // A server that reads each request in full and closes the connection without answering.
        let listener = try ChildProcess.spawn(["/usr/bin/env", "python3", "-c", """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(16)
            s.settimeout(3)
            print(s.getsockname()[1], flush=True)
            while True:
                try: c, _ = s.accept()
                except OSError: break
                c.settimeout(5); data = b""
                try:
                    while b"\\r\\n\\r\\n" not in data:
                        chunk = c.recv(65536)
                        if not chunk: break
                        data += chunk
                except OSError: pass
                if data: print("REQ " + data.split(b" ")[1].decode(), flush=True)
                c.close()
            """], pipeOutput: true)
        let output = try #require(listener.output)
        let port = String(decoding: output.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try await KeywardClient(configuration: .init(url: "http://127.0.0.1:\(port)", token: "kw_x",
                                                                  retry: .init(maximumAttempts: 4, initialDelay: .milliseconds(10), maximumDelay: .milliseconds(50))))
        await #expect(throws: KeywardClientError.self) { _ = try await client.createKey(aliases: ["once"]) }
        await #expect(throws: KeywardClientError.self) { _ = try await client.random(count: 8) }
        try await client.shutdown()
        // The listener ends by itself 3 s after its last connection (a signal might reach only
        // an interpreter shim, leaving the pipe open).
        let lines = String(decoding: output.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        listener.wait()
        #expect(lines.filter { $0 == "REQ /v1/keys" }.count == 1, "\(lines)")
        #expect(lines.filter { $0 == "REQ /v1/random" }.count == 4, "\(lines)")
    }

    @Test("retries: a 429 from the rate limiter is retried after Retry-After and succeeds; without retries it surfaces")
    func retries() async throws {
        let live = try await LiveService.start { $0.rateLimit = .init(requestsPerSecond: 1, burst: 1) }
        let patient = try await live.client(retry: .init(maximumAttempts: 4, initialDelay: .milliseconds(100), maximumDelay: .seconds(2)))
        #expect(try await patient.random(count: 1).count == 1)
        #expect(try await patient.random(count: 1).count == 1)
        try await patient.shutdown()
        try await live.stop()
        // Without retries, on a server whose bucket cannot refill during the test.
        let strict = try await LiveService.start { $0.rateLimit = .init(requestsPerSecond: 0.001, burst: 1) }
        let impatient = try await strict.client(retry: .init(maximumAttempts: 1))
        do {
            _ = try await impatient.random(count: 1)
            _ = try await impatient.random(count: 1)
            Issue.record("no 429 without retries")
        } catch {
            if case .api(let code, let status, _) = error {
                #expect(code == "rate_limited" && status == 429)
            } else {
                Issue.record("\(error)")
            }
        }
        try await impatient.shutdown()
        try await strict.stop()
    }

    @Test("envelope encryption: a data key per message, or cached within age, message and byte limits; altered messages and wrong contexts refused")
    func envelope() async throws {
        let live = try await LiveService.start()
        let client = try await live.client()
        let key = try await client.createKey(aliases: ["files"])

        let uncached = EnvelopeEncryptor(client: client, key: "files")
        let message = try await uncached.seal(Array(repeating: 7, count: 100_000), context: ["file": "a"])
        #expect(try await uncached.open(message, context: ["file": "a"]) == Array(repeating: 7, count: 100_000))
        _ = try await uncached.seal([1], context: ["file": "a"])
        #expect(try await live.audited("generate-data-key") == 2)

        let cached = EnvelopeEncryptor(client: client, key: "files", cache: DataKeyCachePolicy(maximumAge: .seconds(60), maximumMessages: 5, maximumBytes: 1 << 20))
        var messages: [[UInt8]] = []
        for index in 0..<12 { messages.append(try await cached.seal([UInt8(index)], context: ["file": "b"])) }
        // 12 messages at 5 per data key: 3 data keys.
        #expect(try await live.audited("generate-data-key") == 2 + 3)
        for (index, sealed) in messages.enumerated() { #expect(try await cached.open(sealed, context: ["file": "b"]) == [UInt8(index)]) }
        #expect(try await live.audited("decrypt") == 1 + 3)
        // The byte limit starts a new data key too.
        let small = EnvelopeEncryptor(client: client, key: key.id, cache: DataKeyCachePolicy(maximumBytes: 10))
        _ = try await small.seal(Array(repeating: 1, count: 8))
        _ = try await small.seal(Array(repeating: 1, count: 8))
        #expect(try await live.audited("generate-data-key") == 2 + 3 + 2)

        var altered = message
        altered[altered.count - 1] ^= 1
        await #expect(throws: KeywardClientError.self) { _ = try await uncached.open(altered, context: ["file": "a"]) }
        await #expect(throws: KeywardClientError.self) { _ = try await uncached.open(message, context: ["file": "b"]) }
        await #expect(throws: KeywardClientError.self) { _ = try await uncached.open(Array(message.prefix(30)), context: ["file": "a"]) }
        await #expect(throws: KeywardClientError.self) { _ = try await uncached.open([1, 2, 3], context: [:]) }

        // Attack: a message sealed under another key this credential can also use is refused by
        // an encryptor for "files", not opened.
        _ = try await client.createKey(aliases: ["other"])
        let foreign = try await EnvelopeEncryptor(client: client, key: "other").seal([9, 9], context: ["file": "a"])
        do {
            _ = try await uncached.open(foreign, context: ["file": "a"])
            Issue.record("an envelope under another key was opened")
        } catch {
            guard case .invalidEnvelope = error else { Issue.record("\(error)"); return }
        }
        #expect(try await EnvelopeEncryptor(client: client, key: "other").open(foreign, context: ["file": "a"]) == [9, 9])
        try await client.shutdown()
        try await live.stop()
    }
}

extension KeywardClientError {
    var apiMessage: String {
        if case .api(_, _, let message) = self { return message }
        return ""
    }
}
