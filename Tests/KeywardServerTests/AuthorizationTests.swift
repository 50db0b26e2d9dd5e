import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
import KeywardCrypto
@testable import KeywardServer
import Synchronization
import Testing

@Suite("HTTP API credentials, policies and audit")
struct AuthorizationTests {
    /// Fresh keys of each purpose, and a valid request body for every route that touches them.
    struct Keys {
        let aes, signer, hmac, agreement, kem, wrapping: String
        let ciphertext: String

        static func make(_ fixture: ServerFixture, wrapping: String) async throws -> Keys {
            let service = fixture.service
            func create(_ spec: KeySpec) async throws -> String {
                try await service.createKey(CreateKeyRequest(spec: spec), actor: .owner("test")).metadata.id.description
            }
            let aes = try await create(.aes256GCM)
            let ciphertext = b64(try await service.encrypt([1, 2, 3], key: aes, actor: .owner("test")).ciphertext)
            return Keys(aes: aes, signer: try await create(.ed25519), hmac: try await create(.hmacSHA256),
                        agreement: try await create(.x25519), kem: try await create(.mlKEM768), wrapping: wrapping, ciphertext: ciphertext)
        }

        var all: [String] { [aes, signer, hmac, agreement, kem] }

        /// The concrete path and body for a route template.
        func request(_ method: String, _ template: String) throws -> (path: String, body: String?) {
            let peer = b64(try KeyMaterial.generate(.x25519).publicKey().representation)
            let key: String = switch template {
            case let path where path.contains("sign") || path.hasSuffix("/verify") || path.hasSuffix("public-key"): signer
            case let path where path.contains("mac"): hmac
            case let path where path.contains("derive"): agreement
            case let path where path.contains("decapsulate"): kem
            default: aes
            }
            let path = template.replacingOccurrences(of: "{key}", with: key).replacingOccurrences(of: "{alias}", with: "matrix-alias")
                .replacingOccurrences(of: "{token}", with: UUID().uuidString.lowercased())
            let body: String? = switch (method, template) {
            case ("POST", "/v1/keys"): #"{"spec":"AES-256-GCM"}"#
            case ("PATCH", _): #"{"description":"x"}"#
            case ("POST", "/v1/keys/{key}/schedule-destruction"): #"{"waitingDays":7}"#
            case ("POST", "/v1/keys/{key}/destroy-versions"): #"{"below":1}"#
            case ("POST", "/v1/import-wrapping-keys"): #"{"hours":1}"#
            case ("POST", "/v1/keys/import"): #"{"wrappingKeyId":"\#(wrapping)","wrappedMaterial":"AAAA","key":{}}"#
            case ("PUT", "/v1/admin/tokens/{token}/policy"): #"{"rules":["encrypt:key=\#(aes)"]}"#
            case ("PUT", _): #"{"key":"\#(aes)"}"#
            case ("POST", "/v1/keys/{key}/encrypt"): #"{"plaintext":"AQID"}"#
            case ("POST", "/v1/keys/{key}/encrypt/batch"): #"{"items":[{"plaintext":"AQID"}]}"#
            case ("POST", "/v1/keys/{key}/decrypt"), ("POST", "/v1/decrypt"): #"{"ciphertext":"\#(ciphertext)"}"#
            case ("POST", "/v1/keys/{key}/decrypt/batch"): #"{"items":[{"ciphertext":"\#(ciphertext)"}]}"#
            case ("POST", "/v1/keys/{key}/re-encrypt"): #"{"ciphertext":"\#(ciphertext)"}"#
            case ("POST", "/v1/keys/{key}/data-key"): #"{}"#
            case ("POST", "/v1/keys/{key}/data-key-pair"): #"{"pairSpec":"ED25519"}"#
            case ("POST", "/v1/keys/{key}/sign"): #"{"message":"AQID"}"#
            case ("POST", "/v1/keys/{key}/sign/batch"): #"{"items":[{"message":"AQID"}]}"#
            case ("POST", "/v1/keys/{key}/verify"): #"{"message":"AQID","signature":"AQID"}"#
            case ("POST", "/v1/keys/{key}/mac"): #"{"message":"AQID"}"#
            case ("POST", "/v1/keys/{key}/verify-mac"): #"{"message":"AQID","mac":"AQID"}"#
            case ("POST", "/v1/keys/{key}/derive-shared-secret"): #"{"peerPublicKey":"\#(peer)"}"#
            case ("POST", "/v1/keys/{key}/decapsulate"): #"{"encapsulated":"\#(b64([UInt8](repeating: 0, count: 1088)))"}"#
            case ("POST", "/v1/random"): #"{"count":8}"#
            case ("POST", "/v1/admin/tokens"), ("POST", "/v1/admin/credentials/aws"): #"{"principal":"made","rules":["encrypt:key=\#(aes)"]}"#
            case ("POST", "/v1/admin/backup"): try Self.json(["recipient": BackupKeyFiles.recipientText(try KeyMaterial.generate(.x25519))])
            case ("POST", "/v1/admin/restore"): #"{"bundle":"AAAA"}"#
            case ("POST", "/v1/admin/audit/export"): #"{"after":0}"#
            default: nil
            }
            return (path, body)
        }
    }

    @Test("auth matrix: every route against no credential, a malformed, expired or revoked token, a policy that does not cover it, and one that does; every request audited, every answer marked no-store")
    func authMatrix() async throws {
        // Five failed credentials per route from one peer: far past the failed-login limit, which
        // `failedLoginFlood` tests on its own.
        let fixture = try await ServerFixture.make { $0.failedLogins.burst = 1_000_000 }
        defer { fixture.remove() }
        let unaudited: Set<String> = ["/v1/health", "/v1/ready", "/metrics", "/v1/openapi.yaml"]
        // POST / is the AWS KMS protocol: SigV4, not bearer tokens, and AWS's errors
        // (AWSFrontEndTests and scripts/clients/aws_kms.py cover it).
        // Transit (/v1/transit/) answers in Vault's shape and statuses (scripts/clients/vault_transit.py).
        // The console (/ui/) signs in with sessions, not bearer tokens (ConsoleTests).
        let routes = try fixture.server.routeList().filter { !unaudited.contains($0.path) && $0.path != "/" && !$0.path.hasPrefix("/v1/transit/") && !$0.path.hasPrefix("/ui") }
        #expect(routes.count >= 29)
        let expired = try await fixture.token(["*:*"], lifetime: 60).text
        let revoked = try await fixture.token(["*:*"])
        try await fixture.service.revokeToken(revoked.record.id, actor: .owner("test"))
        fixture.clock.advance(by: 120)
        let wrapping = try await fixture.service.createImportWrappingKey(hours: 1, actor: .owner("test")).keyID.description
        let requestIDs = Mutex<[String]>([])
        try await fixture.application().test(.router) { client in
            for route in routes {
                let made = try await Keys.make(fixture, wrapping: wrapping)
                // Naming a key needs a grant on the alias scope the name falls in (a key-id grant is
                // not enough); an import wrapping key serves only the principal it was issued to.
                let insiderToken = try await fixture.token(made.all.map { "*:key=\($0)" } + ["create,random:*", "update:alias=matrix-alias",
                                                                                            "manage-tokens,read-audit,verify-store,rotate-kek,maintenance,backup,restore:*"], principal: "insider")
                let insiderWrapping = try await fixture.service.createImportWrappingKey(
                    hours: 1, actor: .principal("token:\(insiderToken.record.id):insider", policy: insiderToken.record.policy)).keyID.description
                let keys = Keys(aes: made.aes, signer: made.signer, hmac: made.hmac, agreement: made.agreement, kem: made.kem,
                                wrapping: insiderWrapping, ciphertext: made.ciphertext)
                // Pre-existing alias for the alias routes.
                try await fixture.service.setAlias("matrix-alias", key: keys.aes, actor: .owner("test"))
                let (path, body) = try keys.request(route.method, route.path)
                let method = HTTPRequest.Method(route.method)!
                let label = "\(route.method) \(route.path)"
                func check(_ token: String?, _ headers: HTTPFields = [:], expect: (Reply) -> Bool, _ what: String) async throws {
                    let reply = try await client.call(method, path, token: token, body, headers: headers)
                    #expect(expect(reply), "\(label) with \(what): \(reply.status) \(reply.text.prefix(160))")
                    if let id = reply.headers[.init("X-Request-Id")!] { requestIDs.withLock { $0.append(id) } } else { Issue.record("\(label): no request id") }
                    // No answer may be kept by a cache: they carry plaintexts, data keys, metadata.
                    #expect(reply.headers[.cacheControl] == "no-store", "\(label) with \(what): Cache-Control \(reply.headers[.cacheControl] ?? "none")")
                }
                try await check(nil, expect: { $0.status == .unauthorized && $0.errorCode == "unauthenticated" }, "no credential")
                try await check(nil, [.authorization: "Basic dXNlcjpwYXNz"], expect: { $0.status == .unauthorized }, "basic auth")
                try await check("kw_not-a-token", expect: { $0.status == .unauthorized }, "a malformed token")
                try await check(expired, expect: { $0.status == .unauthorized && $0.text.contains("expired") }, "an expired token")
                try await check(revoked.text, expect: { $0.status == .unauthorized && $0.text.contains("revoked") }, "a revoked token")

                let outsider = try await fixture.token(["describe:key=\(UUID().uuidString.lowercased())"], principal: "outsider").text
                if route.method == "GET" && route.path == "/v1/keys" {
                    try await check(outsider, expect: { ($0.json["keys"] as? [Any])?.isEmpty == true }, "a policy that covers none of the keys (an empty list)")
                } else {
                    try await check(outsider, expect: { $0.status == .forbidden && $0.errorCode == "access_denied" }, "a policy that does not cover it")
                }
                let insider = insiderToken.text
                if route.path == "/v1/admin/backup" || route.path == "/v1/admin/restore" {
                    // Granted, and told why not: no recipient is pinned here, and no restore
                    // identity is configured.
                    try await check(insider, expect: { $0.status == .forbidden && $0.errorCode == "not_permitted" && $0.text.contains("backup.") },
                                    "a policy that covers it (nothing pinned here)")
                } else if route.path == "/v1/admin/kek/rotate" {
                    // This fixture's server holds no root of trust: granted, and told why it cannot.
                    try await check(insider, expect: { $0.status == .serviceUnavailable && $0.text.contains("root of trust") }, "a policy that covers it (no root here)")
                } else {
                    try await check(insider, expect: { ![401, 403].contains($0.status.code) && $0.status.code < 500 }, "a policy that covers it")
                }
            }
        }
        // Every request, refused or not, left an audit entry under its request id.
        let audited = Set(try await fixture.service.auditTail(10_000).compactMap(\.event.requestID))
        let sent = requestIDs.withLock { $0 }
        let missing = sent.filter { !audited.contains($0) }
        #expect(!sent.isEmpty && missing.isEmpty, "\(missing.count) of \(sent.count) requests were not audited")
        #expect(try await fixture.service.verifyAudit().problems.isEmpty)
    }

    @Test("audit entries name principal, route, key, version, outcome, request id and peer")
    func auditEntry() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let app = try await fixture.token(["encrypt:key=\(key)"], principal: "billing")
        try await fixture.application().test(.router) { client in
            let reply = try await client.call(.post, "/v1/keys/\(key)/encrypt", token: app.text, #"{"plaintext":"AQID"}"#)
            let denied = try await client.call(.post, "/v1/keys/\(key)/decrypt", token: app.text, #"{"ciphertext":"\#(reply.string("ciphertext"))"}"#)
            #expect(denied.errorCode == "access_denied")
            let events = try await fixture.service.auditTail(10).map(\.event)
            let encrypt = try #require(events.first { $0.requestID == reply.headers[.init("X-Request-Id")!] })
            #expect(encrypt.actor == "token:\(app.record.id):billing" && encrypt.operation == "encrypt" && encrypt.outcome == "ok")
            #expect(encrypt.keyID?.description == key && encrypt.version == 1 && encrypt.route == "POST /v1/keys/{key}/encrypt")
            let refusal = try #require(events.first { $0.requestID == denied.headers[.init("X-Request-Id")!] })
            #expect(refusal.outcome == "denied" && refusal.operation == "decrypt" && refusal.keyID?.description == key)
        }
    }

    @Test("a malformed request from an authenticated client is audited under its principal, not as anonymous")
    func refusedRequestNamesItsPrincipal() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let app = try await fixture.token(["encrypt:key=\(key)"], principal: "billing")
        try await fixture.application().test(.router) { client in
            // A body that fails before KeyService is reached: only the request audit records it.
            let reply = try await client.call(.post, "/v1/keys/\(key)/encrypt", token: app.text, #"{"plaintext":"%%% not base64"}"#)
            #expect(reply.status == .badRequest)
            let events = try await fixture.service.auditTail(10).map(\.event)
            let entry = try #require(events.first { $0.requestID == reply.headers[.init("X-Request-Id")!] })
            #expect(entry.actor == "token:\(app.record.id):billing" && entry.operation == "request" && entry.outcome == "denied")
        }
    }

    @Test("fail-closed: when the audit log cannot be written every audited request gets 503, probes still answer")
    func auditFailClosed() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        try await fixture.application().test(.router) { client in
            #expect(try await client.call(.post, "/v1/keys/\(key)/encrypt", token: fixture.rootToken, #"{"plaintext":"AQID"}"#).status == .ok)
            fixture.store.failing = true
            let refused = try await client.call(.post, "/v1/keys/\(key)/encrypt", token: fixture.rootToken, #"{"plaintext":"AQID"}"#)
            #expect(refused.status == .serviceUnavailable && refused.errorCode == "audit_unavailable" && refused.json["ciphertext"] == nil)
            #expect(try await client.call(.post, "/v1/keys/\(key)/encrypt", token: nil, #"{"plaintext":"AQID"}"#).status == .serviceUnavailable)
            #expect(try await client.call(.get, "/v1/keys/\(key)", token: fixture.rootToken).status == .serviceUnavailable)
            #expect(try await client.call(.get, "/v1/health", token: nil).status == .ok)
            fixture.store.failing = false
            #expect(try await client.call(.post, "/v1/keys/\(key)/encrypt", token: fixture.rootToken, #"{"plaintext":"AQID"}"#).status == .ok)
        }
    }

    @Test("a run's logs, audit entries, metrics and every file the server wrote (store, WAL) never contain its plaintexts, tokens or key bytes")
    func noSecretsLeak() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let exportable = try await fixture.service.createKey(CreateKeyRequest(aliases: ["leak"], exportable: true), actor: .owner("test"))
        let keyBytes = try await fixture.service.exportKey(key: "leak", actor: .owner("test")).material.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
        let app = try await fixture.token(["*:*"], principal: "leaker")
        let plaintext = "TOP-SECRET-PLAINTEXT-4711"
        let secrets = Mutex([plaintext, b64(plaintext), fixture.rootToken, app.text, String(app.text.suffix(43)), b64(keyBytes),
                       keyBytes.map { String(format: "%02x", $0) }.joined()])
        try await fixture.application().test(.router) { client in
            for token in [fixture.rootToken, app.text, "kw_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
                let sealed = try await client.call(.post, "/v1/keys/leak/encrypt", token: token, #"{"plaintext":"\#(b64(plaintext))"}"#)
                _ = try await client.call(.post, "/v1/decrypt", token: token, #"{"ciphertext":"\#(sealed.string("ciphertext"))"}"#)
                let dataKey = try await client.call(.post, "/v1/keys/leak/data-key", token: token, "{}")
                if !dataKey.string("plaintext").isEmpty { secrets.withLock { $0.append(dataKey.string("plaintext")) } }
                _ = try await client.call(.post, "/v1/keys/leak/encrypt", token: token, #"{"plaintext":"\#(plaintext)"}"#)
                _ = try await client.call(.post, "/v1/keys/\(exportable.metadata.id)/sign", token: token, #"{"message":"\#(b64(plaintext))"}"#)
            }
            let metrics = try await client.call(.get, "/metrics", token: nil).text
            let audit = try await fixture.service.auditTail(1000).map { "\($0.event)" }.joined(separator: "\n")
            let logs = fixture.logs.text
            #expect(logs.contains("request") && audit.contains("encrypt") && metrics.contains("keyward_http_requests_total"))
            for secret in secrets.withLock({ $0 }) {
                for (name, text) in [("logs", logs), ("audit", audit), ("metrics", metrics)] {
                    #expect(!text.contains(secret), "\(name) contain a secret (\(secret.prefix(6))...)")
                }
            }
        }
        // Every file under the server's folder (the store, its WAL and shared memory, while the
        // store is open), as bytes: the markers in text form, and the key's raw bytes.
        let files = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { !$0.hasSuffix(".key") }
        #expect(files.contains { $0.hasSuffix(".db") } && files.contains { $0.hasSuffix("-wal") }, "\(files)")
        let needles = secrets.withLock { $0 }.map { Array($0.utf8) } + [keyBytes]
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: fixture.directory.appendingPathComponent(file)))
            for needle in needles where needle.count >= 16 {
                let found = bytes.count >= needle.count && (0...(bytes.count - needle.count)).contains { start in
                    bytes[start] == needle[0] && bytes[start..<(start + needle.count)].elementsEqual(needle)
                }
                #expect(!found, "\(file) holds a secret (\(needle.count) bytes)")
            }
        }
    }

    @Test("attack: a flood of bad tokens and unknown paths from one peer is refused early and cannot flood the audit log")
    func failedLoginFlood() async throws {
        let fixture = try await ServerFixture.make { $0.failedLogins = .init(perSecond: 0.01, burst: 10) }
        defer { fixture.remove() }
        let before = try await fixture.service.auditTail(10_000).count
        try await fixture.application().test(.router) { client in
            var statuses: [Int: Int] = [:]
            for index in 0..<300 {
                let reply = index % 2 == 0
                    ? try await client.call(.post, "/v1/keys", token: "kw_guess\(index)", "{}")
                    : try await client.call(.get, "/no/such/route/\(index)", token: nil)
                statuses[Int(reply.status.code), default: 0] += 1
            }
            #expect(statuses[401] == 10 && statuses[429] == 290, "\(statuses)")
            // Once over the limit, even a good token from that peer waits: the charge comes first.
            let good = try await client.call(.get, "/v1/keys", token: fixture.rootToken)
            #expect(good.status == .tooManyRequests && good.text.contains("failed authentications"))
        }
        let after = try await fixture.service.auditTail(10_000).count
        #expect(after - before <= 12, "\(after - before) audit entries for 301 refused requests")
    }

    @Test("attack: a batch is charged to its principal's rate limit item by item, on the native and Transit front ends, so batching does not multiply the limit a thousandfold")
    func batchesChargedPerItem() async throws {
        let fixture = try await ServerFixture.make { $0.rateLimit = .init(requestsPerSecond: 0.01, burst: 20) }
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["transit/k"]), actor: .owner("test"))
        let native = try await fixture.token(["encrypt:alias=transit/*"], principal: "native").text
        let transit = try await fixture.token(["encrypt:alias=transit/*"], principal: "transit").text
        let items = Array(repeating: #"{"plaintext":"AQID"}"#, count: 50).joined(separator: ",")
        try await fixture.application().test(.router) { client in
            // One request of 50 items is served (the burst admits the request) ...
            let batch = try await client.call(.post, "/v1/keys/transit%2Fk/encrypt/batch", token: native, #"{"items":[\#(items)]}"#)
            #expect(batch.status == .ok, "\(batch.text.prefix(200))")
            // ... and leaves the budget 30 short: the next request waits.
            let after = try await client.call(.post, "/v1/keys/transit%2Fk/encrypt", token: native, #"{"plaintext":"AQID"}"#)
            #expect(after.status == .tooManyRequests, "\(after.status)")
            var vault = HTTPFields()
            vault[HTTPField.Name("X-Vault-Token")!] = transit
            let transitBatch = try await client.call(.post, "/v1/transit/encrypt/k", token: nil, #"{"batch_input":[\#(items.replacingOccurrences(of: "AQID", with: "YQ=="))]}"#, headers: vault)
            #expect(transitBatch.status == .ok, "\(transitBatch.text.prefix(200))")
            let transitAfter = try await client.call(.post, "/v1/transit/encrypt/k", token: nil, #"{"plaintext":"YQ=="}"#, headers: vault)
            #expect(transitAfter.status == .tooManyRequests, "\(transitAfter.status)")
        }
        let limiter = RateLimiter(rate: 1, burst: 5)
        #expect(limiter.admit("p") == nil)
        limiter.charge("p", 10)
        #expect((limiter.admit("p") ?? 0) >= 5, "a debt of six tokens at one a second is a wait of at least five seconds")
    }

    @Test("the failed-login table stays bounded under a flood of distinct peers, and good credentials cost nothing")
    func failedLoginTableBounded() {
        let limiter = RateLimiter(rate: 1, burst: 2, capacity: 100)
        for index in 0..<10_000 { _ = limiter.admit("peer:10.0.\(index / 256).\(index % 256)") }
        #expect(limiter.count <= 100)
        // admit + refund (a good credential) never drains a peer's budget.
        for _ in 0..<1_000 {
            #expect(limiter.admit("peer:good") == nil)
            limiter.refund("peer:good")
        }
        #expect(limiter.admit("peer:bad") == nil && limiter.admit("peer:bad") == nil && limiter.admit("peer:bad") != nil)
    }

    @Test("attack: X-Forwarded-For is believed only from a trusted proxy, and then only its nearest untrusted hop")
    func forwardedForNeedsATrustedProxy() {
        let peers = PeerAddress(trustedProxies: ["10.0.0.1", "10.0.0.2"])
        #expect(peers.resolve(socket: "203.0.113.9", ["1.2.3.4"]) == "203.0.113.9")
        #expect(peers.resolve(socket: "10.0.0.1", ["198.51.100.7"]) == "198.51.100.7")
        #expect(peers.resolve(socket: "10.0.0.1", ["6.6.6.6, 198.51.100.7, 10.0.0.2"]) == "198.51.100.7")
        #expect(peers.resolve(socket: "10.0.0.1", ["not-an-address"]) == "10.0.0.1")
        #expect(peers.resolve(socket: "10.0.0.1", []) == "10.0.0.1")
        #expect(peers.resolve(socket: nil, ["1.2.3.4"]) == nil)
    }
}

extension AuthorizationTests.Keys {
    /// `object` as a JSON body.
    static func json(_ object: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }
}
