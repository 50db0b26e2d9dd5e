import Foundation
import Hummingbird
import HummingbirdTesting
import Keyward
import KeywardServer
import Testing
import Yams

@Suite("HTTP API bad input")
struct BadInputTests {
    @Test("malformed JSON, bad base64, missing fields, oversize bodies, unknown keys and routes, wrong purpose and state: typed JSON errors")
    func badInput() async throws {
        let fixture = try await ServerFixture.make { $0.maxBodyBytes = 4096 }
        defer { fixture.remove() }
        let token = fixture.rootToken
        try await fixture.application().test(.router) { client in
            let aes = try await client.call(.post, "/v1/keys", token: token, #"{"spec":"AES-256-GCM"}"#).string("id")
            let cases: [(String, String, String?, Int, String)] = [
                ("POST", "/v1/keys/\(aes)/encrypt", "{not json", 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", #"{"plaintext":"%%%"}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", #"{"plaintext":"QQ"}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", #"{"plaintext":12}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", #"{}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", nil, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt", #"{"plaintext":"\#(String(repeating: "A", count: 8000))"}"#, 413, "body_too_large"),
                ("POST", "/v1/keys/\(aes)/decrypt", #"{"ciphertext":"AAAA"}"#, 400, "invalid_ciphertext"),
                ("POST", "/v1/keys/\(aes)/sign", #"{"message":"AAAA"}"#, 400, "wrong_purpose"),
                ("POST", "/v1/keys/\(aes)/mac", #"{"message":"AAAA"}"#, 400, "wrong_purpose"),
                ("POST", "/v1/keys/no-such-alias/encrypt", #"{"plaintext":"AAAA"}"#, 404, "key_not_found"),
                ("POST", "/v1/keys/\(UUID().uuidString.lowercased())/encrypt", #"{"plaintext":"AAAA"}"#, 404, "key_not_found"),
                ("POST", "/v1/keys/bad%ZZalias/encrypt", #"{"plaintext":"AAAA"}"#, 400, "invalid_request"),
                ("POST", "/v1/keys", #"{"spec":"DES"}"#, 400, "invalid_request"),
                ("POST", "/v1/keys", #"{"initialState":"destroyed"}"#, 400, "invalid_request"),
                ("POST", "/v1/keys", #"{"aliases":["white space"]}"#, 400, "invalid_request"),
                // Lengths count Unicode scalars, as JSON Schema's maxLength does: 600 letters each
                // with a combining mark are 600 characters to Swift but 1,200 scalars.
                ("POST", "/v1/keys", #"{"description":"\#(String(repeating: "e\u{301}", count: 600))"}"#, 400, "invalid_request"),
                ("POST", "/v1/admin/tokens", #"{"principal":"\#(String(repeating: "e\u{301}", count: 200))","rules":["encrypt:*"]}"#, 400, "invalid_request"),
                ("GET", "/v1/keys?limit=0", nil, 400, "invalid_request"),
                ("GET", "/v1/keys?state=sleeping", nil, 400, "invalid_request"),
                ("GET", "/v1/keys?after=xyz", nil, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/encrypt/batch", #"{"items":[]}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/schedule-destruction", #"{"waitingDays":3}"#, 400, "invalid_request"),
                ("POST", "/v1/keys/\(aes)/enable", nil, 409, "wrong_state"),
                ("POST", "/v1/random", #"{"count":5000}"#, 400, "invalid_request"),
                ("GET", "/v1/nothing-here", nil, 404, "route_not_found"),
                ("DELETE", "/v1/keys/\(aes)", nil, 405, "method_not_allowed"),
            ]
            for (method, path, body, status, code) in cases {
                let reply = try await client.call(HTTPRequest.Method(method)!, path, token: token, body)
                #expect(Int(reply.status.code) == status && reply.errorCode == code, "\(method) \(path.prefix(60)) \(body?.prefix(40) ?? "-"): \(reply.status) \(reply.text.prefix(200))")
                #expect(reply.headers[.contentType] == "application/json")
                let message = (reply.json["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(!message.isEmpty && !message.contains("Swift.") && !message.contains("DecodingError"), "\(message)")
            }
            // Disabled: encrypt refused by state with 409.
            _ = try await client.call(.post, "/v1/keys/\(aes)/disable", token: token)
            #expect(try await client.call(.post, "/v1/keys/\(aes)/encrypt", token: token, #"{"plaintext":"AAAA"}"#).errorCode == "wrong_state")
            // Nothing crashed; the server still answers.
            #expect(try await client.call(.get, "/v1/health", token: nil).status == .ok)
        }
    }

    @Test("rate limits: past its burst a principal gets 429 with Retry-After; others are unaffected")
    func rateLimits() async throws {
        // One token per thousand seconds: however slow the machine, nothing refills during the test.
        let fixture = try await ServerFixture.make { $0.rateLimit = .init(requestsPerSecond: 0.001, burst: 3) }
        defer { fixture.remove() }
        let other = try await fixture.token(["*:*"], principal: "other").text
        try await fixture.application().test(.router) { client in
            var statuses: [Int] = []
            for _ in 0..<5 { statuses.append(Int(try await client.call(.post, "/v1/random", token: fixture.rootToken, #"{"count":1}"#).status.code)) }
            #expect(statuses.prefix(3).allSatisfy { $0 == 200 })
            let limited = try await client.call(.post, "/v1/random", token: fixture.rootToken, #"{"count":1}"#)
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited" && limited.headers[.retryAfter] != nil)
            #expect(try await client.call(.post, "/v1/random", token: other, #"{"count":1}"#).status == .ok)
        }
    }
}

@Suite("HTTP API bad input on every route")
struct EveryRouteBadInputTests {
    @Test("every route with a body: malformed JSON is 400, an oversize body 413; every key route: an unknown key is 404")
    func everyRoute() async throws {
        let fixture = try await ServerFixture.make { $0.maxBodyBytes = 2048 }
        defer { fixture.remove() }
        // POST / is the AWS KMS protocol, whose bad input gets AWS's errors (AWSFrontEndTests).
        // Transit answers bad input in Vault's shape (TransitFrontEndTests, scripts/clients/vault_transit.py).
        // The console (/ui/) answers with HTML pages and forms (ConsoleTests).
        let routes = try fixture.server.routeList().filter { $0.path != "/" && !$0.path.hasPrefix("/v1/transit/") && !$0.path.hasPrefix("/ui") }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let unknown = UUID().uuidString.lowercased()
        let oversize = #"{"x":""# + String(repeating: "A", count: 4096) + #""}"#
        let ciphertext = b64(try await fixture.service.encrypt([1], key: key, actor: .owner("test")).ciphertext)
        // Which operations take a body comes from openapi.yaml.
        let document = try #require(try Yams.load(yaml: try String(contentsOf: OpenAPITests.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var bodies: Set<String> = []
        for (path, item) in paths {
            for (method, operation) in item where (operation as? [String: Any])?["requestBody"] != nil { bodies.insert("\(method.uppercased()) \(path)") }
        }
        let withBody = bodies
        try await fixture.application().test(.router) { client in
            for route in routes {
                let method = HTTPRequest.Method(route.method)!
                let label = "\(route.method) \(route.path)"
                let path = route.path.replacingOccurrences(of: "{key}", with: key).replacingOccurrences(of: "{alias}", with: "some-alias")
                let takesBody = withBody.contains(label)
                if takesBody {
                    let malformed = try await client.call(method, path, token: fixture.rootToken, "{\"unterminated\": ")
                    #expect(malformed.status == .badRequest && malformed.errorCode == "invalid_request", "\(label): \(malformed.status) \(malformed.text.prefix(120))")
                    let large = try await client.call(method, path, token: fixture.rootToken, oversize)
                    #expect(large.status == .contentTooLarge && large.errorCode == "body_too_large", "\(label): \(large.status)")
                }
                if route.path.contains("{key}") {
                    let body: String? = takesBody ? Self.validBody(route.path, ciphertext: ciphertext) : nil
                    // An unknown alias everywhere; an unknown id too, except where the ciphertext
                    // names its own key (decrypt), which is then the mismatch reported.
                    var references = ["no-such-alias"]
                    if !route.path.contains("decrypt") { references.append(unknown) }
                    for reference in references {
                        let missing = try await client.call(method, route.path.replacingOccurrences(of: "{key}", with: reference), token: fixture.rootToken, body)
                        #expect(missing.status == .notFound && missing.errorCode == "key_not_found", "\(label) on unknown key \(reference): \(missing.status) \(missing.text.prefix(120))")
                    }
                }
            }
        }
    }

    /// A body that decodes for the route, so the unknown key is what fails.
    static func validBody(_ path: String, ciphertext: String) -> String {
        switch path.split(separator: "/").last.map(String.init) ?? "" {
        case "encrypt": #"{"plaintext":"AQID"}"#
        case "batch": path.contains("encrypt") ? #"{"items":[{"plaintext":"AQID"}]}"# : path.contains("decrypt") ? #"{"items":[{"ciphertext":"\#(ciphertext)"}]}"# : #"{"items":[{"message":"AQID"}]}"#
        case "decrypt", "re-encrypt": #"{"ciphertext":"\#(ciphertext)"}"#
        case "data-key": "{}"
        case "data-key-pair": #"{"pairSpec":"ED25519"}"#
        case "sign", "mac": #"{"message":"AQID"}"#
        case "verify": #"{"message":"AQID","signature":"AQID"}"#
        case "verify-mac": #"{"message":"AQID","mac":"AQID"}"#
        case "derive-shared-secret": #"{"peerPublicKey":"AQID"}"#
        case "decapsulate": #"{"encapsulated":"AQID"}"#
        case "schedule-destruction": #"{"waitingDays":7}"#
        case "destroy-versions": #"{"below":1}"#
        default: "{}"
        }
    }
}
