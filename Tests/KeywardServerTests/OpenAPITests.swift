import Foundation
import Hummingbird
import HummingbirdTesting
import Keyward
import KeywardAPI
import KeywardCrypto
import KeywardServer
import Testing
import Yams

@Suite("OpenAPI document")
struct OpenAPITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func documentedRoutes(_ text: String) throws -> Set<String> {
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var routes: Set<String> = []
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    @Test("the document and the server's routes agree, both ways, and every documented route is served")
    func routesAgree() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let file = try String(contentsOf: Self.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let documented = try Self.documentedRoutes(file)
        // Vault's LIST method (served for HTTP/2 clients) has no place in OpenAPI 3.1; GET with
        // ?list=true, documented, is the same route.
        // The web console (/ui/) serves HTML pages, not the API: docs/console.md lists them and
        // ConsoleTests and scripts/clients/console_browser.py test them.
        let served = Set(try fixture.server.routeList().filter { $0.method != "LIST" && !$0.path.hasPrefix("/ui") }.map { "\($0.method) \($0.path)" })
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        try await fixture.application().test(.router) { client in
            // The served copy is the repository's file: KeywardAPI compiles it in as its resource.
            #expect(try await client.call(.get, "/v1/openapi.yaml", token: nil).text == file)
            for route in documented {
                let parts = route.split(separator: " ")
                let path = String(parts[1]).replacingOccurrences(of: "{key}", with: "k").replacingOccurrences(of: "{alias}", with: "a")
                let reply = try await client.call(HTTPRequest.Method(String(parts[0]))!, path, token: fixture.rootToken, "{}")
                #expect(reply.errorCode != "route_not_found", "\(route) is documented but the router does not route it")
            }
        }
    }

    /// The `$ref` target of `node`, or `node` itself.
    static func resolve(_ node: Any?, in document: [String: Any]) -> [String: Any]? {
        guard var object = node as? [String: Any] else { return nil }
        while let reference = object["$ref"] as? String {
            var target: Any? = document
            for part in reference.dropFirst(2).split(separator: "/") { target = (target as? [String: Any])?[String(part)] }
            guard let resolved = target as? [String: Any] else { return nil }
            object = resolved
        }
        return object
    }

    /// The property names of the JSON schema of `method path`'s 200 (or 201) response.
    static func responseProperties(_ method: String, _ path: String, in document: [String: Any]) -> Set<String>? {
        let operation = ((document["paths"] as? [String: Any])?[path] as? [String: Any])?[method] as? [String: Any]
        let responses = operation?["responses"] as? [String: Any]
        let response = resolve(responses?["200"] ?? responses?["201"], in: document)
        let content = (response?["content"] as? [String: Any])?["application/json"] as? [String: Any]
        let schema = resolve(content?["schema"], in: document)
        return (schema?["properties"] as? [String: Any]).map { Set($0.keys) }
    }

    @Test("every authenticated operation documents every status it can return: 400, 401, 403, 429, 500, 503; 404 with a path parameter; 409 on a key; 413 with a body")
    func everyStatusDocumented() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var checked = 0
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in ["get", "put", "post", "delete", "patch"] {
                guard let operation = item[method] as? [String: Any] else { continue }
                if let security = operation["security"] as? [Any], security.isEmpty { continue }
                // The AWS KMS protocol answers in AWS's statuses (400 for every client error), and
                // Transit in Vault's (403 for a refused token).
                if path == "/" || path.hasPrefix("/v1/transit/") || path.hasPrefix("/ui") { continue }
                let responses = Set((operation["responses"] as? [String: Any] ?? [:]).keys.map { "\($0)" })
                var needed: Set<String> = ["400", "401", "403", "429", "500", "503"]
                if operation["requestBody"] != nil { needed.insert("413") }
                if path.contains("{") { needed.insert("404") }
                // A key's state can refuse any operation on it (wrong_state).
                if path.contains("{key}") || path == "/v1/decrypt" { needed.insert("409") }
                #expect(needed.isSubset(of: responses), "\(method.uppercased()) \(path) lacks \(needed.subtracting(responses).sorted())")
                checked += 1
            }
        }
        #expect(checked >= 30)
    }

    @Test("attack: a body with a field the API does not define is refused naming the field, on the fast path and the slow one")
    func unknownFieldsRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        try await fixture.application().test(.router) { client in
            let bodies: [(String, String)] = [
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AQID","contxt":{"tenant":"a"}}"#),        // fast path
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AQID","context":{"tenant":"a"},"extra":1}"#),
                ("/v1/keys/\(key)/encrypt/batch", #"{"items":[{"plaintext":"AQID","contxt":{}}]}"#),
                ("/v1/keys", #"{"spec":"AES-256-GCM","exportble":true}"#),                              // slow path
                ("/v1/random", #"{"count":8,"format":"hex"}"#),
            ]
            for (path, body) in bodies {
                let reply = try await client.call(.post, path, token: fixture.rootToken, body)
                #expect(reply.status == .badRequest && reply.text.contains("unknown field"), "\(path) \(body): \(reply.status) \(reply.text)")
            }
            // Keys of a context map are data, not fields.
            let fine = try await client.call(.post, "/v1/keys/\(key)/encrypt", token: fixture.rootToken, #"{"plaintext":"AQID","context":{"anything":"x"}}"#)
            #expect(fine.status == .ok)
            // No field is nullable: a null is refused by name, known field or not (fast and slow path).
            let nulls: [(String, String, String)] = [
                ("/v1/keys", #"{"spec":"AES-256-GCM","description":null}"#, "description"),
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AQID","context":null}"#, "context"),
                ("/v1/import-wrapping-keys", #"{"":null}"#, ""),
                ("/v1/keys/\(key)/schedule-destruction", #"{"waitingDays":null}"#, "waitingDays"),
            ]
            for (path, body, field) in nulls {
                let reply = try await client.call(.post, path, token: fixture.rootToken, body)
                #expect(reply.status == .badRequest && reply.text.contains("field '\(field)' is null"), "\(path) \(body): \(reply.status) \(reply.text)")
            }
            // A batch item the schema refuses (a context over 64 pairs) fails the request, naming the item.
            let context = (0..<65).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
            let batch = try await client.call(.post, "/v1/keys/\(key)/encrypt/batch", token: fixture.rootToken,
                                              #"{"items":[{"plaintext":"AQ=="},{"plaintext":"AQ==","context":{"# + context + "}}]}")
            #expect(batch.status == .badRequest && batch.text.contains("items[1]"), "\(batch.status) \(batch.text)")
        }
    }

    @Test("attack: a body naming a field twice is refused naming it (fast path or slow), never read as its first or its last value")
    func repeatedFieldsRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id
        try await fixture.application().test(.router) { client in
            let bodies: [(String, String, String)] = [
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AA==","plaintext":"AQ=="}"#, "plaintext"),
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AQ==","context":{"tenant":"a","tenant":"b"}}"#, "context.tenant"),
                ("/v1/keys/\(key)/encrypt", #"{"plaintext":"AQ==","pl\u0061intext":"AA=="}"#, "plaintext"),
                // Two spellings of one accented key: distinct bytes, one String.
                ("/v1/keys/\(key)/encrypt", "{\"plaintext\":\"AQ==\",\"context\":{\"\u{E9}\":\"a\",\"e\u{301}\":\"b\"}}", "context.\u{E9}"),
                ("/v1/keys/\(key)/encrypt/batch", #"{"items":[{"plaintext":"AQ=="},{"plaintext":"AQ==","plaintext":"AA=="}]}"#, "items[1].plaintext"),
                ("/v1/keys", #"{"spec":"AES-256-GCM","spec":"Ed25519"}"#, "spec"),
                ("/v1/random", #"{"count":8,"count":4096}"#, "count"),
            ]
            for (path, body, field) in bodies {
                let reply = try await client.call(.post, path, token: fixture.rootToken, body)
                #expect(reply.status == .badRequest && reply.text.contains("field '\(field)' appears more than once"), "\(path) \(body): \(reply.status) \(reply.text)")
            }
            // One name in two objects of a batch is two fields, not a repeat.
            let batch = try await client.call(.post, "/v1/keys/\(key)/encrypt/batch", token: fixture.rootToken,
                                              #"{"items":[{"plaintext":"AQ==","context":{"t":"a"}},{"plaintext":"AQ==","context":{"t":"a"}}]}"#)
            #expect(batch.status == .ok, "\(batch.text)")
        }
    }

    @Test("a known path asked with a method it does not serve gets 405 with Allow; an unknown path gets 404")
    func methodNotAllowed() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let cases: [(HTTPRequest.Method, String, String)] = [
                (.trace, "/v1/keys", "GET, POST"),
                (.delete, "/v1/keys/some-alias/encrypt", "POST"),
                (.options, "/v1/keys/import", "POST"),                 // the literal route, not /v1/keys/{key}
                (.put, "/v1/keys/0b6d1c1e-8a56-4a39-9d6a-0d7f3c1b2a44", "GET, PATCH"),
            ]
            for (method, path, allowed) in cases {
                let reply = try await client.call(method, path, token: fixture.rootToken)
                #expect(reply.status == .methodNotAllowed && reply.errorCode == "method_not_allowed", "\(method) \(path): \(reply.status)")
                #expect(reply.headers[.allow] == allowed, "\(method) \(path): \(reply.headers[.allow] ?? "-")")
            }
            let unknown = try await client.call(.get, "/v1/nothing/here", token: fixture.rootToken)
            #expect(unknown.status == .notFound && unknown.errorCode == "route_not_found")
        }
    }

    @Test("every reply type writes exactly the fields the document's schema for its routes names")
    func repliesMatchTheDocument() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let key = KeyID(), bytes = Base64Bytes([1, 2, 3])
        let keyReply = KeyReply(id: key, spec: .aes256GCM, state: "active", description: "", aliases: [], tags: [:], createdAt: Date(),
                                stateChangedAt: Date(), currentVersion: 1, minDecryptionVersion: 1, rotationPeriodDays: 30,
                                nextRotationAt: Date(), destructionDate: Date(), expiresAt: Date(), exportable: false,
                                backupAllowed: true, origin: "keyward", minAvailableVersion: 1, contextRequired: true)
        let replies: [(method: String, path: String, reply: any WritableReply)] = [
            ("post", "/v1/keys/{key}/encrypt", CiphertextReply(ciphertext: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/re-encrypt", CiphertextReply(ciphertext: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/decrypt", PlaintextReply(plaintext: bytes, keyId: key, version: 1)),
            ("post", "/v1/decrypt", PlaintextReply(plaintext: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/sign", SignatureReply(signature: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/mac", MACReply(mac: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/data-key", DataKeyReply(plaintext: bytes, ciphertext: bytes, keyId: key, version: 1)),
            ("post", "/v1/keys/{key}/verify", ValidityReply(valid: true)),
            ("post", "/v1/keys/{key}/verify-mac", ValidityReply(valid: true)),
            ("post", "/v1/random", RandomReply(random: bytes)),
            ("post", "/v1/keys/{key}/derive-shared-secret", SharedSecretReply(sharedSecret: bytes)),
            ("post", "/v1/keys/{key}/decapsulate", SharedSecretReply(sharedSecret: bytes)),
            ("get", "/v1/keys/{key}", keyReply),
            ("post", "/v1/keys", keyReply),
            ("get", "/v1/keys", KeyPageReply(keys: [keyReply], nextCursor: key)),
            ("get", "/v1/keys/{key}/public-key", PublicKeyReply(keyReference: "k", spec: .ed25519, publicKey: bytes, publicKeyPem: "pem")),
            ("post", "/v1/import-wrapping-keys", ImportWrappingKeyReply(keyId: key, spec: .rsa3072OAEPSHA256, publicKey: bytes, publicKeyPem: "pem",
                                                                        expiresAt: Date(), wrapping: "w")),
            ("put", "/v1/aliases/{alias}", AliasReply(alias: "a", key: "k")),
            ("post", "/v1/keys/{key}/data-key-pair", DataKeyPairReply(spec: .x25519, publicKey: bytes, publicKeyPem: "pem",
                                                                      privateKeyCiphertext: bytes, keyId: key, version: 1)),
            ("get", "/v1/health", StatusReply(status: "ok")),
            ("get", "/v1/ready", StatusReply(status: "ready")),
        ]
        for entry in replies {
            let found = Self.responseProperties(entry.method, entry.path, in: document)
            guard let documented = found else {
                Issue.record("no 200 or 201 schema for \(entry.method) \(entry.path)")
                continue
            }
            let written = try #require(try JSONSerialization.jsonObject(with: Data(entry.reply.json())) as? [String: Any])
            #expect(Set(written.keys) == documented, "\(entry.method) \(entry.path): writes \(written.keys.sorted()), documented \(documented.sorted())")
        }
        let errorSchema = try #require(Self.resolve(["$ref": "#/components/schemas/Error"], in: document))
        let errorWritten = try #require(try JSONSerialization.jsonObject(with: Data(ErrorReply(code: "c", message: "m").json())) as? [String: Any])
        #expect(Set(errorWritten.keys) == Set((errorSchema["properties"] as? [String: Any] ?? [:]).keys))
    }
}
