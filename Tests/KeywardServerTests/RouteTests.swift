import Foundation
import Hummingbird
import HummingbirdTesting
import Keyward
import KeywardCrypto
import KeywardServer
import Testing

@Suite("HTTP API routes")
struct RouteTests {
    @Test("keys: create, describe, list, update, rotate, lifecycle transitions, aliases, public key")
    func keyRoutes() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let token = fixture.rootToken
        try await fixture.application().test(.router) { client in
            let created = try await client.call(.post, "/v1/keys", token: token, #"{"spec":"AES-256-GCM","aliases":["app/orders"],"tags":{"team":"pay"},"description":"orders"}"#)
            #expect(created.status == .created)
            let id = created.string("id")
            #expect(created.string("state") == "active" && created.json["aliases"] as? [String] == ["app/orders"])
            #expect(created.headers[.init("X-Request-Id")!] != nil)

            let described = try await client.call(.get, "/v1/keys/app%2Forders", token: token)
            #expect(described.status == .ok && described.string("id") == id)
            #expect(try await client.call(.get, "/v1/keys/\(id)", token: token).string("description") == "orders")

            let listed = try await client.call(.get, "/v1/keys?tag=team=pay&limit=10", token: token)
            #expect((listed.json["keys"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            #expect((try await client.call(.get, "/v1/keys?state=disabled", token: token).json["keys"] as? [Any])?.isEmpty == true)

            let updated = try await client.call(.patch, "/v1/keys/\(id)", token: token, #"{"description":"orders v2","rotationPeriodDays":90}"#)
            #expect(updated.status == .ok && updated.string("description") == "orders v2" && updated.json["rotationPeriodDays"] as? Int == 90)

            #expect(try await client.call(.post, "/v1/keys/\(id)/rotate", token: token).json["currentVersion"] as? Int == 2)
            #expect(try await client.call(.post, "/v1/keys/\(id)/disable", token: token).string("state") == "disabled")
            #expect(try await client.call(.post, "/v1/keys/\(id)/enable", token: token).string("state") == "active")
            let scheduled = try await client.call(.post, "/v1/keys/\(id)/schedule-destruction", token: token, #"{"waitingDays":7}"#)
            #expect(scheduled.string("state") == "pending-destruction" && !scheduled.string("destructionDate").isEmpty)
            #expect(try await client.call(.post, "/v1/keys/\(id)/cancel-destruction", token: token).string("state") == "disabled")
            #expect(try await client.call(.post, "/v1/keys/\(id)/deactivate", token: token).string("state") == "deactivated")
            #expect(try await client.call(.post, "/v1/keys/\(id)/mark-compromised", token: token).string("state") == "compromised")

            let signing = try await client.call(.post, "/v1/keys", token: token, #"{"spec":"ECDSA-P256-SHA256"}"#).string("id")
            let publicKey = try await client.call(.get, "/v1/keys/\(signing)/public-key", token: token)
            #expect(publicKey.status == .ok && publicKey.string("publicKeyPem").hasPrefix("-----BEGIN PUBLIC KEY-----"))
            #expect(try await client.call(.get, "/v1/keys/\(id)/public-key", token: token).errorCode == "not_permitted")

            #expect(try await client.call(.put, "/v1/aliases/signer", token: token, #"{"key":"\#(signing)"}"#).status == .ok)
            #expect(try await client.call(.get, "/v1/keys/signer", token: token).string("id") == signing)
            #expect(try await client.call(.delete, "/v1/aliases/signer", token: token).status == .noContent)
            #expect(try await client.call(.get, "/v1/keys/signer", token: token).errorCode == "key_not_found")
        }
    }

    @Test("PATCH with setTags and removeTags changes only those tags, on the tags as the update reads them: concurrent callers all keep theirs; with tags as well it is refused")
    func tagChangesOverTheAPI() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let token = fixture.rootToken
        try await fixture.application().test(.router) { client in
            let id = try await client.call(.post, "/v1/keys", token: token, #"{"tags":{"team":"pay","old":"x"}}"#).string("id")
            let changed = try await client.call(.patch, "/v1/keys/\(id)", token: token, #"{"setTags":{"env":"prod","team":"ledger"},"removeTags":["old","absent"]}"#)
            #expect(changed.status == .ok && changed.json["tags"] as? [String: String] == ["env": "prod", "team": "ledger"], "\(changed.text)")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<12 {
                    group.addTask { try await client.call(.patch, "/v1/keys/\(id)", token: token, #"{"setTags":{"t\#(index)":"v"}}"#).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .ok }, "\(statuses)")
            let tags = try await client.call(.get, "/v1/keys/\(id)", token: token).json["tags"] as? [String: String] ?? [:]
            #expect(tags.count == 14 && (0..<12).allSatisfy { tags["t\($0)"] == "v" }, "\(tags)")
            let both = try await client.call(.patch, "/v1/keys/\(id)", token: token, #"{"tags":{},"removeTags":["env"]}"#)
            #expect(both.status == .badRequest && both.text.contains("not both"), "\(both.text)")
            #expect(try await client.call(.get, "/v1/keys/\(id)", token: token).json["tags"] as? [String: String] == tags)
        }
    }

    @Test("operations: encrypt, decrypt, batches, re-encrypt, data keys, sign, verify, MAC, ECDH, KEM, random")
    func operationRoutes() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let token = fixture.rootToken
        try await fixture.application().test(.router) { client in
            func create(_ spec: String) async throws -> String {
                try await client.call(.post, "/v1/keys", token: token, #"{"spec":"\#(spec)"}"#).string("id")
            }
            let aes = try await create("AES-256-GCM")
            let other = try await create("AES-256-GCM")

            let sealed = try await client.call(.post, "/v1/keys/\(aes)/encrypt", token: token, #"{"plaintext":"\#(b64("secret"))","context":{"tenant":"a"}}"#)
            #expect(sealed.status == .ok && sealed.json["version"] as? Int == 1)
            let ciphertext = sealed.string("ciphertext")
            let opened = try await client.call(.post, "/v1/keys/\(aes)/decrypt", token: token, #"{"ciphertext":"\#(ciphertext)","context":{"tenant":"a"}}"#)
            #expect(opened.bytes("plaintext") == Array("secret".utf8))
            #expect(try await client.call(.post, "/v1/decrypt", token: token, #"{"ciphertext":"\#(ciphertext)","context":{"tenant":"a"}}"#).bytes("plaintext") == Array("secret".utf8))
            #expect(try await client.call(.post, "/v1/keys/\(aes)/decrypt", token: token, #"{"ciphertext":"\#(ciphertext)","context":{"tenant":"b"}}"#).errorCode == "invalid_ciphertext")
            #expect(try await client.call(.post, "/v1/keys/\(other)/decrypt", token: token, #"{"ciphertext":"\#(ciphertext)","context":{"tenant":"a"}}"#).errorCode == "invalid_request")

            let items = (0..<20).map { index in "{\"plaintext\":\"\(b64("item \(index)"))\"}" }.joined(separator: ",")
            let batch = try await client.call(.post, "/v1/keys/\(aes)/encrypt/batch", token: token, #"{"items":[\#(items)]}"#)
            let results = batch.json["results"] as? [[String: Any]] ?? []
            #expect(results.count == 20)
            let decryptItems = results.map { #"{"ciphertext":"\#($0["ciphertext"] as? String ?? "")"}"# } + [#"{"ciphertext":"AAAA"}"#]
            let decrypted = try await client.call(.post, "/v1/keys/\(aes)/decrypt/batch", token: token, #"{"items":[\#(decryptItems.joined(separator: ","))]}"#)
            let plain = decrypted.json["results"] as? [[String: Any]] ?? []
            #expect(plain.count == 21)
            #expect(plain.prefix(20).enumerated().allSatisfy { index, item in
                Data(base64Encoded: item["plaintext"] as? String ?? "") == Data("item \(index)".utf8)
            })
            #expect((plain[20]["error"] as? [String: Any])?["code"] as? String == "invalid_ciphertext")

            let moved = try await client.call(.post, "/v1/keys/\(other)/re-encrypt", token: token, #"{"ciphertext":"\#(ciphertext)","sourceContext":{"tenant":"a"}}"#)
            #expect(moved.string("keyId") == other)
            #expect(try await client.call(.post, "/v1/decrypt", token: token, #"{"ciphertext":"\#(moved.string("ciphertext"))"}"#).bytes("plaintext") == Array("secret".utf8))

            let dataKey = try await client.call(.post, "/v1/keys/\(aes)/data-key", token: token, #"{"context":{"file":"x"}}"#)
            #expect(dataKey.bytes("plaintext").count == 32)
            let unsealed = try await client.call(.post, "/v1/decrypt", token: token, #"{"ciphertext":"\#(dataKey.string("ciphertext"))","context":{"file":"x"}}"#)
            #expect(unsealed.bytes("plaintext") == dataKey.bytes("plaintext"))
            let sealedOnly = try await client.call(.post, "/v1/keys/\(aes)/data-key", token: token, #"{"includePlaintext":false}"#)
            #expect(sealedOnly.json["plaintext"] == nil && !sealedOnly.string("ciphertext").isEmpty)
            let pair = try await client.call(.post, "/v1/keys/\(aes)/data-key-pair", token: token, #"{"pairSpec":"ED25519"}"#)
            #expect(pair.string("spec") == "ED25519" && !pair.string("privateKeyCiphertext").isEmpty)

            for spec in ["ED25519", "ECDSA-P256-SHA256"] {
                let signer = try await create(spec)
                let signed = try await client.call(.post, "/v1/keys/\(signer)/sign", token: token, #"{"message":"\#(b64("contract"))"}"#)
                let signature = signed.string("signature")
                #expect(try await client.call(.post, "/v1/keys/\(signer)/verify", token: token, #"{"message":"\#(b64("contract"))","signature":"\#(signature)"}"#).json["valid"] as? Bool == true)
                #expect(try await client.call(.post, "/v1/keys/\(signer)/verify", token: token, #"{"message":"\#(b64("contrast"))","signature":"\#(signature)"}"#).json["valid"] as? Bool == false)
                let signedBatch = try await client.call(.post, "/v1/keys/\(signer)/sign/batch", token: token, #"{"items":[{"message":"\#(b64("a"))"},{"message":"\#(b64("b"))"}]}"#)
                #expect((signedBatch.json["results"] as? [[String: Any]])?.allSatisfy { $0["signature"] != nil } == true)
            }

            let hmac = try await create("HMAC-SHA256")
            let tag = try await client.call(.post, "/v1/keys/\(hmac)/mac", token: token, #"{"message":"\#(b64("m"))"}"#).string("mac")
            #expect(try await client.call(.post, "/v1/keys/\(hmac)/verify-mac", token: token, #"{"message":"\#(b64("m"))","mac":"\#(tag)"}"#).json["valid"] as? Bool == true)
            #expect(try await client.call(.post, "/v1/keys/\(hmac)/verify-mac", token: token, #"{"message":"\#(b64("n"))","mac":"\#(tag)"}"#).json["valid"] as? Bool == false)

            // ECDH: the service's secret equals the one the peer computes locally.
            let agreement = try await create("X25519")
            let servicePublic = try await client.call(.get, "/v1/keys/\(agreement)/public-key", token: token).bytes("publicKey")
            let peer = try KeyMaterial.generate(.x25519)
            let peerPublic = try peer.publicKey()
            let derived = try await client.call(.post, "/v1/keys/\(agreement)/derive-shared-secret", token: token, #"{"peerPublicKey":"\#(b64(peerPublic.representation))"}"#)
            let local = try peer.sharedSecret(with: try PublicKey(spec: .x25519, bytes: servicePublic)).withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            #expect(derived.bytes("sharedSecret") == local)

            // KEM: encapsulate locally to the service's public key; the service decapsulates the same secret.
            let kem = try await create("ML-KEM-768")
            let kemPublic = try PublicKey(spec: .mlKEM768, bytes: try await client.call(.get, "/v1/keys/\(kem)/public-key", token: token).bytes("publicKey"))
            let encapsulation = try kemPublic.encapsulate()
            let decapsulated = try await client.call(.post, "/v1/keys/\(kem)/decapsulate", token: token, #"{"encapsulated":"\#(b64(encapsulation.encapsulated))"}"#)
            #expect(decapsulated.bytes("sharedSecret") == encapsulation.sharedSecret.withSecretBytes(InsecureSecretAccess.token) { Array($0) })

            let random = try await client.call(.post, "/v1/random", token: token, #"{"count":48}"#)
            #expect(random.bytes("random").count == 48)
        }
    }

    @Test("bring your own key over HTTP: a wrapping key, material wrapped locally, imported, usable")
    func importRoute() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let token = fixture.rootToken
        try await fixture.application().test(.router) { client in
            let wrapping = try await client.call(.post, "/v1/import-wrapping-keys", token: token, #"{"hours":1}"#)
            #expect(wrapping.status == .created)
            let wrappingKey = try PublicKey(spec: .rsa3072OAEPSHA256, bytes: wrapping.bytes("publicKey"))
            let material = try SecretBytes.random(count: 32)
            let wrapped = try ImportWrapping.wrap(material, to: wrappingKey)
            // A tampered blob is refused and does not use the wrapping key up.
            var tampered = wrapped
            tampered[10] ^= 1
            let refused = try await client.call(.post, "/v1/keys/import", token: token,
                                                #"{"wrappingKeyId":"\#(wrapping.string("keyId"))","wrappedMaterial":"\#(b64(tampered))","key":{"spec":"AES-256-GCM"}}"#)
            #expect(refused.status == .badRequest)
            let imported = try await client.call(.post, "/v1/keys/import", token: token,
                                                 #"{"wrappingKeyId":"\#(wrapping.string("keyId"))","wrappedMaterial":"\#(b64(wrapped))","key":{"spec":"AES-256-GCM","aliases":["byok"]}}"#)
            #expect(imported.status == .created && imported.string("origin") == "imported")
            #expect(try await client.call(.post, "/v1/keys/byok/encrypt", token: token, #"{"plaintext":"AQID"}"#).status == .ok)
            // It serves one import: a second is refused.
            let again = try await client.call(.post, "/v1/keys/import", token: token,
                                              #"{"wrappingKeyId":"\#(wrapping.string("keyId"))","wrappedMaterial":"\#(b64(wrapped))","key":{"spec":"AES-256-GCM"}}"#)
            #expect(again.status.code >= 400 && again.status.code < 500 && again.status != .created)
        }
    }

    @Test("probes, metrics and the OpenAPI document need no credential")
    func systemRoutes() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            #expect(try await client.call(.get, "/v1/health", token: nil).string("status") == "ok")
            #expect(try await client.call(.get, "/v1/ready", token: nil).string("status") == "ready")
            _ = try await client.call(.post, "/v1/keys", token: fixture.rootToken, "{}")
            let metrics = try await client.call(.get, "/metrics", token: nil)
            #expect(metrics.text.contains(#"keyward_http_requests_total{method="POST",route="/v1/keys",status="201"} 1"#))
            #expect(metrics.text.contains("keyward_http_request_duration_seconds_bucket{route=\"/v1/keys\""))
            #expect(metrics.text.contains("keyward_key_cache_hits_total"))
            let document = try await client.call(.get, "/v1/openapi.yaml", token: nil)
            #expect(document.text.hasPrefix("openapi: 3.1.0"))
        }
    }

    @Test("metric labels stay in closed sets: invented methods and unknown paths become 'other' and 'unmatched'")
    func metricLabelsAreBounded() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            for index in 0..<20 {
                _ = try await client.call(HTTPRequest.Method("BREW\(index)")!, "/v1/keys/secret-name-\(index)", token: fixture.rootToken)
                _ = try await client.call(.get, "/no/such/path/\(index)", token: nil)
            }
            let metrics = try await client.call(.get, "/metrics", token: nil).text
            #expect(!metrics.contains("BREW") && !metrics.contains("secret-name") && !metrics.contains("/no/such"))
            #expect(metrics.contains(#"method="other""#) && metrics.contains(#"route="unmatched""#))
            // 20 invented methods and 20 paths add at most a handful of series, not 40.
            let series = metrics.split(separator: "\n").filter { $0.hasPrefix("keyward_http_requests_total{") }
            #expect(series.count <= 5, "\(series)")
        }
    }
}
