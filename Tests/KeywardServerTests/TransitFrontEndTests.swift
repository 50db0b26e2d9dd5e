import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
import KeywardCrypto
@testable import KeywardServer
import Testing

/// The Transit front end's own behaviour in process: Vault's methods and envelope, `vault:vN:`
/// ciphertexts that are Keyward's, and errors in Vault's shape. hvac and the bao CLI run in
/// scripts/clients/vault_transit.py.
@Suite("Vault Transit front end")
struct TransitFrontEndTests {
    @Test("attack: a client that names a namespace (X-Vault-Namespace, as BAO_NAMESPACE and hvac's namespace= send) is refused, never served from the root's keys")
    func namespacesRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            var vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/orders", token: nil, #"{"type":"aes256-gcm96"}"#, headers: vault).status == .ok)
            for namespace in ["team-a", "team-a/", "/team-a/child", "rooted"] {
                vault[TransitNamespace.header] = namespace
                let calls: [(HTTPRequest.Method, String, String?)] = [(.get, "/v1/transit/keys/orders", nil), (.post, "/v1/transit/encrypt/orders", #"{"plaintext":"aGk="}"#),
                                                                      (.get, "/v1/transit/keys?list=true", nil)]
                for (method, path, body) in calls {
                    let reply = try await client.call(method, path, token: nil, body, headers: vault)
                    #expect(reply.status == .badRequest && reply.text.contains("namespace") && !reply.text.contains("orders") && !reply.text.contains("ciphertext"),
                            "\(namespace) \(path): \(reply.status) \(reply.text.prefix(160))")
                }
            }
            for root in ["", "root", "root/", "/"] {
                vault[TransitNamespace.header] = root
                #expect(try await client.call(.get, "/v1/transit/keys/orders", token: nil, headers: vault).status == .ok, "namespace \(root.debugDescription)")
            }
        }
    }

    @Test("PUT and POST write alike; a Transit key is the Keyward key transit/NAME; its ciphertext is vault:vN: and Keyward's, opened by the native API")
    func keysAndCiphertexts() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.put, "/v1/transit/keys/orders", token: nil, #"{"type":"aes256-gcm96"}"#, headers: vault).status == .ok)
            let read = try await client.call(.get, "/v1/transit/keys/orders", token: nil, headers: vault)
            let data = read.json["data"] as? [String: Any] ?? [:]
            #expect(data["type"] as? String == "aes256-gcm96" && data["latest_version"] as? Int == 1, "\(read.text)")
            let sealed = try await client.call(.post, "/v1/transit/encrypt/orders", token: nil, #"{"plaintext":"aGVsbG8="}"#, headers: vault)
            let ciphertext = (sealed.json["data"] as? [String: Any])?["ciphertext"] as? String ?? ""
            #expect(ciphertext.hasPrefix("vault:v1:"), "\(sealed.text)")
            let native = try await client.call(.post, "/v1/keys/transit%2Forders/decrypt", token: fixture.rootToken,
                                               #"{"ciphertext":"\#(ciphertext.dropFirst(9))"}"#)
            #expect(native.json["plaintext"] as? String == "aGVsbG8=", "\(native.text)")
            // A version prefix that disagrees with the ciphertext, and one that is not base64.
            let relabelled = "vault:v2:" + ciphertext.dropFirst(9)
            #expect(try await client.call(.post, "/v1/transit/decrypt/orders", token: nil, #"{"ciphertext":"\#(relabelled)"}"#, headers: vault).status == .badRequest)
            #expect(try await client.call(.post, "/v1/transit/decrypt/orders", token: nil, #"{"ciphertext":"vault:v1:%%"}"#, headers: vault).status == .badRequest)
            // Malformed prefixes: each a 400 naming the expected form, none a crash.
            let body = ciphertext.dropFirst(9)
            for bad in ["vault:v0:\(body)", "vault:v:\(body)", "vault:v4294967296:\(body)", "vault:v12345678901:\(body)", "vault:v1", "vault:v1\(body)",
                        "vaul:v1:\(body)", "Vault:v1:\(body)", "vault:x1:\(body)", "vault:v-1:\(body)", "vault:v1:\(body)=", "", "vault:v"] {
                let reply = try await client.call(.post, "/v1/transit/decrypt/orders", token: nil, #"{"ciphertext":"\#(bad)"}"#, headers: vault)
                #expect(reply.status == .badRequest && reply.text.contains("expected vault:vN: and base64"), "\(bad.prefix(24)): \(reply.status) \(reply.text.prefix(120))")
            }
            let padded = "vault:v01:" + body
            #expect(try await client.call(.post, "/v1/transit/decrypt/orders", token: nil, #"{"ciphertext":"\#(padded)"}"#, headers: vault).status == .ok)
        }
    }

    @Test("a key name is ASCII letters, digits, '-', '_' and '.', not '.' or '..': others are refused in Transit's words, never with the alias rule behind them")
    func keyNames() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            for name in ["%C3%BCn%C3%AF", "%2E%2E", "%2E", "a%2Fb", "a%20b"] {
                for path in ["/v1/transit/keys/\(name)", "/v1/transit/encrypt/\(name)"] {
                    let reply = try await client.call(.post, path, token: nil, #"{"plaintext":"aGk="}"#, headers: vault)
                    #expect(reply.status == .badRequest && reply.text.contains("a key name is 1 to 128 ASCII") && !reply.text.contains("alias"),
                            "\(path): \(reply.status) \(reply.text)")
                }
            }
            for name in ["...", "app.v2", "A-b_9"] {
                #expect(try await client.call(.post, "/v1/transit/keys/\(name)", token: nil, "{}", headers: vault).status == .ok, "\(name)")
            }
        }
    }

    @Test("creation options Keyward does not keep are refused, never dropped: an exportable signing key, allow_plaintext_backup, an hmac key_size other than the hash's length")
    func creationOptionsRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            let refused: [(String, String)] = [
                (#"{"type":"ed25519","exportable":true}"#, "never exportable"), (#"{"type":"ecdsa-p256","exportable":true}"#, "never exportable"),
                (#"{"type":"rsa-2048","exportable":true}"#, "never exportable"),
                (#"{"type":"aes256-gcm96","allow_plaintext_backup":true}"#, "plaintext backups"),
                (#"{"type":"hmac","key_size":64}"#, "32 bytes"), (#"{"type":"hmac","hash_algorithm":"sha2-512","key_size":32}"#, "64 bytes"),
            ]
            for (index, (body, reason)) in refused.enumerated() {
                let reply = try await client.call(.post, "/v1/transit/keys/refused-\(index)", token: nil, body, headers: vault)
                #expect(reply.status == .badRequest && reply.text.contains(reason), "\(body): \(reply.status) \(reply.text)")
                #expect(try await client.call(.get, "/v1/transit/keys/refused-\(index)", token: nil, headers: vault).status == .notFound, "\(body) made a key")
            }
            let served = [#"{"type":"hmac","key_size":32}"#, #"{"type":"hmac","hash_algorithm":"sha2-384","key_size":48}"#, #"{"type":"hmac","key_size":0}"#,
                          #"{"type":"aes256-gcm96","exportable":true}"#, #"{"type":"aes128-gcm96","key_size":64}"#]
            for (index, body) in served.enumerated() {
                let reply = try await client.call(.post, "/v1/transit/keys/served-\(index)", token: nil, body, headers: vault)
                #expect(reply.status == .ok, "\(body): \(reply.status) \(reply.text)")
            }
            let exportable = try await client.call(.get, "/v1/transit/keys/served-3", token: nil, headers: vault)
            #expect((exportable.json["data"] as? [String: Any])?["exportable"] as? Bool == true, "\(exportable.text)")
        }
    }

    @Test("a JSON null is an absent field: optional ones are ignored, a required one is refused as missing, never taken for a value")
    func nullFieldsAreAbsent() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/nulls", token: nil, #"{"type":"aes256-gcm96","exportable":null}"#, headers: vault).status == .ok)
            let sealed = try await client.call(.post, "/v1/transit/encrypt/nulls", token: nil,
                                               #"{"plaintext":"aGVsbG8=","context":null,"key_version":null,"associated_data":null}"#, headers: vault)
            #expect(sealed.status == .ok, "\(sealed.text)")
            let missing = try await client.call(.post, "/v1/transit/encrypt/nulls", token: nil, #"{"plaintext":null}"#, headers: vault)
            #expect(missing.status == .badRequest && missing.text.contains("plaintext"), "\(missing.status) \(missing.text)")
        }
        // The test the front ends use on parsed members: by type, for Foundation's null only.
        let parsed = try JSONSerialization.jsonObject(with: Data(#"{"a":null,"b":"x","c":0,"d":false,"e":[null]}"#.utf8)) as? [String: Any] ?? [:]
        #expect(parsed.count == 5 && FlatJSONObject.isNull(parsed["a"]!))
        #expect(!["b", "c", "d", "e"].contains { FlatJSONObject.isNull(parsed[$0]!) })
        #expect(!FlatJSONObject.isNull("null") && !FlatJSONObject.isNull(NSNumber(value: 0)))
    }

    @Test("attack: a caller that may not create a key under a name cannot learn from keys/:name whether a key of that name exists")
    func createDoesNotRevealExistence() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let limited = try await fixture.token(["create,describe,encrypt:alias=transit/mine-*"], principal: "limited").text
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/secret-x", token: nil, #"{"type":"aes256-gcm96"}"#, headers: root).status == .ok)
            let caller: HTTPFields = [HTTPField.Name("X-Vault-Token")!: limited]
            let existing = try await client.call(.post, "/v1/transit/keys/secret-x", token: nil, #"{"type":"aes256-gcm96"}"#, headers: caller)
            let missing = try await client.call(.post, "/v1/transit/keys/secret-none", token: nil, #"{"type":"aes256-gcm96"}"#, headers: caller)
            #expect(existing.status == .forbidden && existing.status == missing.status && existing.text == missing.text, "\(existing.text) against \(missing.text)")
            // Its own names still work, and creating one twice is still idempotent.
            for _ in 0..<2 {
                #expect(try await client.call(.post, "/v1/transit/keys/mine-a", token: nil, #"{"type":"aes256-gcm96"}"#, headers: caller).status == .ok)
            }
        }
    }

    @Test("attack: a keys/:name/config that withdraws deletion_allowed while a delete of the key runs either wins (the delete is refused) or loses (it is refused on the deleted key): never both succeed")
    func deletionAllowedWithdrawnDuringDelete() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            var outcomes: [String: Int] = [:]
            for round in 0..<40 {
                let path = "/v1/transit/keys/race-\(round)"
                #expect(try await client.call(.post, path, token: nil, #"{"type":"aes256-gcm96"}"#, headers: root).status == .ok)
                #expect(try await client.call(.post, path + "/config", token: nil, #"{"deletion_allowed":true}"#, headers: root).status == .ok)
                // One of the two starts a little later each round (0 to 2 ms), so that some rounds
                // land the withdrawal inside the delete.
                let delay = Duration.microseconds(100 * (round / 2)), configLater = round % 2 == 0
                async let withdrawn = { () async throws -> Reply in
                    if configLater { try await Task.sleep(for: delay) }
                    return try await client.call(.post, path + "/config", token: nil, #"{"deletion_allowed":false}"#, headers: root)
                }()
                async let deleted = { () async throws -> Reply in
                    if !configLater { try await Task.sleep(for: delay) }
                    return try await client.call(.delete, path, token: nil, nil, headers: root)
                }()
                let (config, delete) = try await (withdrawn, deleted)
                #expect(!(config.status == .ok && delete.status == .noContent),
                        "round \(round): deletion_allowed was withdrawn (\(config.text)) and the key was deleted all the same")
                let state = try await client.call(.get, path, token: nil, nil, headers: root).text
                if delete.status == .noContent { #expect(state.contains("pending-destruction")) } else { #expect(state.contains(#""deletion_allowed":false"#), "\(state)") }
                outcomes["config \(config.status.code), delete \(delete.status.code)", default: 0] += 1
            }
            // Once withdrawn, a delete is refused with Transit's 400 and the reason.
            let refused = try await client.call(.delete, "/v1/transit/keys/race-0", token: nil, nil, headers: root)
            if !(try await client.call(.get, "/v1/transit/keys/race-0", token: nil, nil, headers: root).text.contains("pending-destruction")) {
                #expect(refused.status == .badRequest && refused.text.contains("deletion is not allowed for this key"), "\(refused.text)")
            }
            print("deletion race outcomes: \(outcomes)")
        }
    }

    @Test("attack: keys/:name/config and create refuse numbers out of range (which trapped the server), negative ones and a rotation period that is not whole days, changing nothing")
    func configNumbersChecked() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/cfg", token: nil, #"{"type":"aes256-gcm96","auto_rotate_period":"720h"}"#, headers: vault).status == .ok)
            #expect(try await client.call(.post, "/v1/transit/keys/cfg/rotate", token: nil, nil, headers: vault).status == .ok)
            let refused: [(String, String)] = [
                (#"{"min_decryption_version":5000000000}"#, "not a version number"),
                (#"{"min_decryption_version":-1}"#, "not a version number"),
                (#"{"min_decryption_version":5,"min_encryption_version":1}"#, "minimum decryption version 5"),
                (#"{"min_decryption_version":2,"min_encryption_version":1}"#, "min_encryption_version 1 must be 0 or from min_decryption_version (2)"),
                (#"{"min_encryption_version":3}"#, "to the latest version (2)"),
                (#"{"min_encryption_version":-2}"#, "min_encryption_version -2"),
                (#"{"auto_rotate_period":"1h"}"#, "whole days"),
                (#"{"auto_rotate_period":"36h"}"#, "whole days"),
                (#"{"auto_rotate_period":"-24h"}"#, "cannot be negative"),
                (#"{"auto_rotate_period":-86400}"#, "cannot be negative"),
                (#"{"auto_rotate_period":"1e308h"}"#, "out of range"),
                (#"{"auto_rotate_period":"61464h"}"#, "whole days"),
            ]
            for (body, words) in refused {
                let reply = try await client.call(.post, "/v1/transit/keys/cfg/config", token: nil, body, headers: vault)
                #expect(reply.status == .badRequest && reply.text.contains(words), "\(body): \(reply.status) \(reply.text)")
            }
            let create = try await client.call(.post, "/v1/transit/keys/hourly", token: nil, #"{"type":"aes256-gcm96","auto_rotate_period":"1h"}"#, headers: vault)
            #expect(create.status == .badRequest && create.text.contains("whole days"), "\(create.text)")
            // Nothing changed: the period read back is the one set, in seconds, and the minimum is 1.
            let read = try await client.call(.get, "/v1/transit/keys/cfg", token: nil, headers: vault)
            let data = read.json["data"] as? [String: Any] ?? [:]
            #expect(data["auto_rotate_period"] as? Int == 720 * 3600 && data["min_decryption_version"] as? Int == 1 && data["latest_version"] as? Int == 2, "\(read.text)")
            // 0 is Transit's "version 1" for the minimum and "off" for the period.
            #expect(try await client.call(.post, "/v1/transit/keys/cfg/config", token: nil, #"{"min_decryption_version":2}"#, headers: vault).status == .ok)
            let reset = try await client.call(.post, "/v1/transit/keys/cfg/config", token: nil, #"{"min_decryption_version":0,"auto_rotate_period":0}"#, headers: vault)
            let after = reset.json["data"] as? [String: Any] ?? [:]
            #expect(reset.status == .ok && after["min_decryption_version"] as? Int == 1 && after["auto_rotate_period"] as? Int == 0, "\(reset.text)")
        }
    }

    @Test("attack: a min_decryption_version raised above the key's min_encryption_version is refused, as Transit refuses it, alone or racing the call that sets the other")
    func encryptionMinimumHeldAcrossCalls() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/minima", token: nil, #"{"type":"aes256-gcm96"}"#, headers: vault).status == .ok)
            for _ in 0..<2 { #expect(try await client.call(.post, "/v1/transit/keys/minima/rotate", token: nil, nil, headers: vault).status == .ok) }
            #expect(try await client.call(.post, "/v1/transit/keys/minima/config", token: nil, #"{"min_encryption_version":2}"#, headers: vault).status == .ok)
            // The second call alone names no min_encryption_version; the key's own is checked.
            let raised = try await client.call(.post, "/v1/transit/keys/minima/config", token: nil, #"{"min_decryption_version":3}"#, headers: vault)
            #expect(raised.status == .badRequest && raised.text.contains("min_encryption_version 2 must be 0 or from min_decryption_version (3)"), "\(raised.text)")
            let kept = try await client.call(.get, "/v1/transit/keys/minima", token: nil, headers: vault).json["data"] as? [String: Any] ?? [:]
            #expect(kept["min_decryption_version"] as? Int == 1 && kept["min_encryption_version"] as? Int == 2, "\(kept)")
            // Both in one call, in an order that holds: accepted.
            #expect(try await client.call(.post, "/v1/transit/keys/minima/config", token: nil, #"{"min_decryption_version":3,"min_encryption_version":3}"#,
                                          headers: vault).status == .ok)

            // Racing: one call sets min_encryption_version 2, the other min_decryption_version 3;
            // whichever commits second sees the first and is refused, so both never succeed.
            var outcomes: [String: Int] = [:]
            for round in 0..<20 {
                let path = "/v1/transit/keys/minima-\(round)"
                #expect(try await client.call(.post, path, token: nil, #"{"type":"aes256-gcm96"}"#, headers: vault).status == .ok)
                for _ in 0..<2 { #expect(try await client.call(.post, path + "/rotate", token: nil, nil, headers: vault).status == .ok) }
                let delay = Duration.microseconds(100 * (round / 2)), encryptionLater = round % 2 == 0
                async let encryption = { () async throws -> Reply in
                    if encryptionLater { try await Task.sleep(for: delay) }
                    return try await client.call(.post, path + "/config", token: nil, #"{"min_encryption_version":2}"#, headers: vault)
                }()
                async let decryption = { () async throws -> Reply in
                    if !encryptionLater { try await Task.sleep(for: delay) }
                    return try await client.call(.post, path + "/config", token: nil, #"{"min_decryption_version":3}"#, headers: vault)
                }()
                let (first, second) = try await (encryption, decryption)
                #expect(!(first.status == .ok && second.status == .ok), "round \(round): both minima were accepted")
                let data = try await client.call(.get, path, token: nil, headers: vault).json["data"] as? [String: Any] ?? [:]
                let enc = data["min_encryption_version"] as? Int ?? -1, dec = data["min_decryption_version"] as? Int ?? -1
                #expect(enc == 0 || enc >= dec, "round \(round): min_encryption_version \(enc) below min_decryption_version \(dec)")
                outcomes["encryption \(first.status.code), decryption \(second.status.code)", default: 0] += 1
            }
            print("minima race outcomes: \(outcomes)")
        }
    }

    @Test("every Transit route with a body answers an oversize one 413 in Vault's shape, naming the limit, as HTTP/2 delivers it (no transport check before the route)")
    func oversizeBodiesAre413() async throws {
        let fixture = try await ServerFixture.make { $0.maxBodyBytes = 2048 }
        defer { fixture.remove() }
        let routes = try fixture.server.routeList().filter { $0.path.hasPrefix("/v1/transit/") && ($0.method == "POST" || $0.method == "PUT") }
        #expect(routes.count > 20, "\(routes.count) Transit routes with a body")
        let oversize = #"{"plaintext":""# + String(repeating: "A", count: 4096) + #""}"#
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            for route in routes {
                var path = route.path
                for (parameter, value) in ["{name}": "k", "{algorithm}": "sha2-256", "{kind}": "plaintext", "{source}": "platform", "{bytes}": "32"] {
                    path = path.replacingOccurrences(of: parameter, with: value)
                }
                let reply = try await client.call(HTTPRequest.Method(route.method)!, path, token: nil, oversize, headers: vault)
                let errors = reply.json["errors"] as? [String] ?? []
                #expect(reply.status == .contentTooLarge && errors.first?.contains("larger than 2048 bytes") == true, "\(route.method) \(route.path): \(reply.status) \(reply.text)")
            }
        }
    }

    @Test("attack: a body naming a field twice is refused in Transit's words, never read as one of its values")
    func repeatedFieldsRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let vault: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/twice", token: nil, #"{"type":"aes256-gcm96"}"#, headers: vault).status == .ok)
            let bodies: [(String, String, String)] = [
                ("/v1/transit/encrypt/twice", #"{"plaintext":"aGVsbG8=","plaintext":"d29ybGQ="}"#, "plaintext"),
                ("/v1/transit/encrypt/twice", #"{"batch_input":[{"plaintext":"aGk="},{"plaintext":"aGk=","plaintext":"aGk="}]}"#, "batch_input[1].plaintext"),
                ("/v1/transit/keys/twice/config", #"{"deletion_allowed":false,"deletion_allowed":true}"#, "deletion_allowed"),
            ]
            for (path, body, field) in bodies {
                let reply = try await client.call(.post, path, token: nil, body, headers: vault)
                #expect(reply.status == .badRequest && reply.text.contains("field '\(field)' appears more than once") && reply.json["errors"] != nil,
                        "\(path) \(body): \(reply.status) \(reply.text)")
            }
            // The first value alone is served.
            let sealed = try await client.call(.post, "/v1/transit/encrypt/twice", token: nil, #"{"plaintext":"aGVsbG8="}"#, headers: vault)
            #expect(sealed.status == .ok)
        }
    }

    @Test("errors are Vault's: {\"errors\": [...]}, 404 for an unknown key, 403 'permission denied' for a missing or bad token and for a policy that does not cover the call; the token is found in Vault's order")
    func vaultShapedErrors() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let narrow = try await fixture.token(["encrypt:alias=transit/*"]).text
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            _ = try await client.call(.post, "/v1/transit/keys/k", token: nil, "{}", headers: root)
            let cases: [(HTTPFields, String, HTTPResponse.Status)] = [
                (root, "/v1/transit/keys/missing", .notFound),
                ([:], "/v1/transit/keys/k", .forbidden),
                ([HTTPField.Name("X-Vault-Token")!: "nope"], "/v1/transit/keys/k", .forbidden),
                ([HTTPField.Name("X-Vault-Token")!: narrow], "/v1/transit/keys/k", .forbidden),
            ]
            for (headers, path, status) in cases {
                let reply = try await client.call(.get, path, token: nil, headers: headers)
                #expect(reply.status == status && (reply.json["errors"] as? [String])?.isEmpty == false, "\(path): \(reply.status) \(reply.text)")
            }
            let denied = try await client.call(.get, "/v1/transit/keys/k", token: nil, headers: [HTTPField.Name("X-Vault-Token")!: "nope"])
            #expect((denied.json["errors"] as? [String])?.first?.hasPrefix("permission denied") == true)
            // Vault's order: X-Vault-Token first; an Authorization of another scheme (a proxy's
            // Basic credentials) is passed over, not refused; a bearer one counts only alone.
            let vaultName = HTTPField.Name("X-Vault-Token")!
            let basic: HTTPFields = [vaultName: fixture.rootToken, .authorization: "Basic dXNlcjpwYXNz"]
            #expect(try await client.call(.get, "/v1/transit/keys/k", token: nil, headers: basic).status == .ok)
            let both: HTTPFields = [vaultName: fixture.rootToken, .authorization: "Bearer \(narrow)"]
            #expect(try await client.call(.get, "/v1/transit/keys/k", token: nil, headers: both).status == .ok)
            #expect(try await client.call(.get, "/v1/transit/keys/k", token: nil, headers: [.authorization: "Bearer \(fixture.rootToken)"]).status == .ok)
            #expect(try await client.call(.get, "/v1/transit/keys/k", token: nil, headers: [.authorization: "Basic dXNlcjpwYXNz"]).status == .forbidden)
            // Keyward's own API keeps its order: Authorization first, another scheme refused by name.
            let native = try await client.call(.get, "/v1/keys", token: nil, headers: basic)
            #expect(native.status == .unauthorized && native.text.contains("Bearer"), "\(native.text)")
        }
    }

    @Test("a batch_input is one batch call: per-item errors in their places, one audit entry naming the item count, and a token without the operation refused for the whole request")
    func batchesAreOneCall() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let encryptOnly = try await fixture.token(["encrypt:alias=transit/*"]).text
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/b", token: nil, "{}", headers: root).status == .ok)
            let sealed = try await client.call(.post, "/v1/transit/encrypt/b", token: nil,
                                               #"{"batch_input":[{"plaintext":"YQ=="},{"plaintext":"%%"},{"plaintext":"Yg==","context":"Yw=="},{"plaintext":"Yw==","key_version":2}]}"#, headers: root)
            let items = (sealed.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []
            // A failed item makes the reply 400, as Transit's, with every item's result in it.
            #expect(sealed.status == .badRequest && items.count == 4, "\(sealed.text)")
            guard items.count == 4 else { return }
            #expect((items[0]["ciphertext"] as? String)?.hasPrefix("vault:v1:") == true && items[0]["key_version"] as? Int == 1)
            #expect(items[1]["error"] as? String != nil && items[1]["ciphertext"] == nil)
            #expect((items[2]["ciphertext"] as? String)?.hasPrefix("vault:v1:") == true)
            #expect((items[3]["error"] as? String)?.contains("key_version 2") == true, "\(items[3])")
            let first = items[0]["ciphertext"] as? String ?? "", third = items[2]["ciphertext"] as? String ?? ""
            // Decrypt: a good item, one with the wrong context, one relabelled as v2, one good with its context.
            let body = #"{"batch_input":[{"ciphertext":"\#(first)"},{"ciphertext":"\#(third)"},{"ciphertext":"vault:v2:\#(first.dropFirst(9))"},{"ciphertext":"\#(third)","context":"Yw=="}]}"#
            let opened = try await client.call(.post, "/v1/transit/decrypt/b", token: nil, body, headers: root)
            let plain = (opened.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []
            #expect(opened.status == .badRequest && plain.count == 4, "\(opened.text)")
            guard plain.count == 4 else { return }
            #expect(plain[0]["plaintext"] as? String == "YQ==" && plain[3]["plaintext"] as? String == "Yg==")
            #expect(plain[1]["error"] != nil && plain[1]["plaintext"] == nil && plain[2]["error"] != nil && plain[2]["plaintext"] == nil, "\(plain)")
            // A token that may encrypt but not decrypt: the whole request is refused, not each item.
            let denied = try await client.call(.post, "/v1/transit/decrypt/b", token: nil, body, headers: [HTTPField.Name("X-Vault-Token")!: encryptOnly])
            #expect(denied.status == .forbidden && (denied.json["errors"] as? [String])?.first?.hasPrefix("permission denied") == true, "\(denied.text)")
        }
        let key = try await fixture.service.resolve("transit/b")
        let entries = try await fixture.service.auditEntries(AuditQuery(limit: 100, keyID: key), actor: .owner("t")).entries.map(\.event)
        let encrypts = entries.filter { $0.operation == "encrypt" }, decrypts = entries.filter { $0.operation == "decrypt" }
        // The item that is not base64 never reaches the service; the one asking for key_version 2 fails after it.
        #expect(encrypts.count == 1 && encrypts.first?.detail == "batch of 3 items, 0 failed", "\(encrypts.map { $0.detail ?? "" })")
        #expect(decrypts.count == 2 && decrypts.contains { $0.detail?.hasPrefix("batch of 4 items, 1 failed") == true }
                && decrypts.contains { $0.outcome != "success" }, "\(decrypts.map { "\($0.outcome) \($0.detail ?? "")" })")
    }

    @Test("a sign batch signs each item with the key's latest version, asn1 or jws per item, and each signature verifies; a bad item fails alone")
    func signBatches() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/s", token: nil, #"{"type":"ecdsa-p256"}"#, headers: root).status == .ok)
            let signed = try await client.call(.post, "/v1/transit/sign/s", token: nil,
                                               #"{"batch_input":[{"input":"YQ=="},{"input":"YQ==","marshaling_algorithm":"jws"},{"input":"%%"}]}"#, headers: root)
            let items = (signed.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []
            #expect(items.count == 3 && items[2]["error"] != nil, "\(signed.text)")
            guard items.count == 3 else { return }
            for (item, marshaling) in zip(items.prefix(2), ["asn1", "jws"]) {
                let signature = item["signature"] as? String ?? ""
                #expect(signature.hasPrefix("vault:v1:") && item["key_version"] as? Int == 1, "\(item)")
                let verified = try await client.call(.post, "/v1/transit/verify/s", token: nil,
                                                     #"{"input":"YQ==","signature":"\#(signature)","marshaling_algorithm":"\#(marshaling)"}"#, headers: root)
                #expect((verified.json["data"] as? [String: Any])?["valid"] as? Bool == true, "\(marshaling): \(verified.text)")
            }
        }
    }

    @Test("Keyward's post-quantum types under names of their own: ML-DSA signs and verifies through Transit; ML-KEM and X-Wing keys are created, read with their public key, rotated and exported, decapsulate through the native API, and refuse Transit's operations")
    func postQuantumTypes() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            func data(_ reply: Reply) -> [String: Any] { reply.json["data"] as? [String: Any] ?? [:] }
            /// The base64 public key of each version, as a Transit read gives it.
            func publicKeys(_ name: String) async throws -> [String: String] {
                let read = try await client.call(.get, "/v1/transit/keys/\(name)", token: nil, headers: root)
                #expect(read.status == .ok, "\(read.text)")
                let keys = data(read)["keys"] as? [String: [String: Any]] ?? [:]
                return keys.compactMapValues { $0["public_key"] as? String }
            }
            for (type, spec) in [("ml-dsa-65", KeySpec.mlDSA65), ("ml-dsa-87", .mlDSA87)] {
                #expect(try await client.call(.post, "/v1/transit/keys/\(type)", token: nil, #"{"type":"\#(type)"}"#, headers: root).status == .ok)
                let read = data(try await client.call(.get, "/v1/transit/keys/\(type)", token: nil, headers: root))
                #expect(read["type"] as? String == type && read["supports_signing"] as? Bool == true)
                let published = try await publicKeys(type)
                #expect(published.count == 1 && (try? PublicKey(spec: spec, bytes: Array(Data(base64Encoded: published["1"] ?? "") ?? Data()))) != nil,
                        "\(type): \(published)")
                let signed = data(try await client.call(.post, "/v1/transit/sign/\(type)", token: nil, #"{"input":"YQ=="}"#, headers: root))
                let signature = signed["signature"] as? String ?? ""
                #expect(signature.hasPrefix("vault:v1:"))
                let verified = data(try await client.call(.post, "/v1/transit/verify/\(type)", token: nil, #"{"input":"YQ==","signature":"\#(signature)"}"#, headers: root))
                #expect(verified["valid"] as? Bool == true)
            }
            for (type, spec) in [("ml-kem-768", KeySpec.mlKEM768), ("ml-kem-1024", .mlKEM1024), ("x-wing", .xWing)] {
                let created = try await client.call(.post, "/v1/transit/keys/\(type)", token: nil, #"{"type":"\#(type)"}"#, headers: root)
                #expect(created.status == .ok && data(created)["type"] as? String == type, "\(type): \(created.text)")
                #expect(data(created)["supports_encryption"] as? Bool == false && data(created)["supports_signing"] as? Bool == false)
                #expect(try await client.call(.post, "/v1/transit/keys/\(type)/rotate", token: nil, headers: root).status == .ok)
                let published = try await publicKeys(type)
                #expect(Set(published.keys) == ["1", "2"] && published["1"] != published["2"], "\(type): \(published)")
                // export/public-key gives the same keys.
                let exported = data(try await client.call(.get, "/v1/transit/export/public-key/\(type)", token: nil, headers: root))
                #expect(exported["keys"] as? [String: String] == published, "\(type)")
                // The latest version's public key is the key's: a secret encapsulated to it locally
                // is what the native API decapsulates.
                let id = data(created)["keyward_key_id"] as? String ?? ""
                let publicKey = try PublicKey(spec: spec, bytes: Array(Data(base64Encoded: published["2"] ?? "") ?? Data()))
                let encapsulation = try publicKey.encapsulate()
                let opened = try await client.call(.post, "/v1/keys/\(id)/decapsulate", token: fixture.rootToken,
                                                   #"{"encapsulated":"\#(Data(encapsulation.encapsulated).base64EncodedString())"}"#)
                #expect(opened.bytes("sharedSecret") == encapsulation.sharedSecret.withSecretBytes(InsecureSecretAccess.token) { Array($0) }, "\(type): \(opened.text)")
                // One key, one purpose: Transit's operations refuse it, in Vault's shape.
                for path in ["encrypt", "sign", "hmac", "datakey/plaintext"] {
                    let refused = try await client.call(.post, "/v1/transit/\(path)/\(type)", token: nil, #"{"plaintext":"YQ==","input":"YQ=="}"#, headers: root)
                    #expect(refused.status == .badRequest && (refused.json["errors"] as? [String])?.isEmpty == false, "\(type) \(path): \(refused.status) \(refused.text)")
                }
            }
        }
    }

    @Test("hash_algorithm, HMAC's algorithm, signature_algorithm and salt_length: the key's own is served, another is refused with 400 and never ignored, in single calls and batches")
    func oneKeyOneAlgorithm() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(spec: .rsa2048PKCS1SHA384, aliases: ["transit/pk"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/p384", token: nil, #"{"type":"ecdsa-p384"}"#, headers: root).status == .ok)
            #expect(try await client.call(.post, "/v1/transit/keys/m", token: nil, #"{"type":"hmac"}"#, headers: root).status == .ok)
            #expect(try await client.call(.post, "/v1/transit/keys/pss", token: nil, #"{"type":"rsa-2048"}"#, headers: root).status == .ok)
            func status(_ path: String, _ body: String) async throws -> (HTTPResponse.Status, String) {
                let reply = try await client.call(.post, path, token: nil, body, headers: root)
                return (reply.status, reply.text)
            }
            for (path, body, served) in [
                ("/v1/transit/sign/p384", #"{"input":"YQ==","hash_algorithm":"sha2-384"}"#, true),
                ("/v1/transit/sign/p384", #"{"input":"YQ=="}"#, true),
                ("/v1/transit/sign/p384", #"{"input":"YQ==","hash_algorithm":"sha2-256"}"#, false),
                ("/v1/transit/sign/p384", #"{"batch_input":[{"input":"YQ==","hash_algorithm":"sha2-512"}]}"#, false),
                ("/v1/transit/sign/pk", #"{"input":"YQ==","hash_algorithm":"sha2-384","signature_algorithm":"pkcs1v15"}"#, true),
                ("/v1/transit/sign/pk", #"{"input":"YQ==","signature_algorithm":"pss"}"#, false),
                ("/v1/transit/sign/pk", #"{"input":"YQ==","signature_algorithm":"pkcs1"}"#, false),
                ("/v1/transit/hmac/m", #"{"input":"YQ==","algorithm":"sha2-256"}"#, true),
                ("/v1/transit/hmac/m", #"{"input":"YQ==","hash_algorithm":"sha2-512"}"#, false),
                // Transit's older name for the hash, on signatures too.
                ("/v1/transit/sign/p384", #"{"input":"YQ==","algorithm":"sha2-512"}"#, false),
                // The path's algorithm segment (`vault write transit/sign/k/sha2-384`) wins over the body's.
                ("/v1/transit/sign/p384/sha2-384", #"{"input":"YQ==","hash_algorithm":"sha2-256"}"#, true),
                ("/v1/transit/sign/p384/sha2-256", #"{"input":"YQ=="}"#, false),
                ("/v1/transit/hmac/m/sha2-256", #"{"input":"YQ=="}"#, true),
                ("/v1/transit/hmac/m/sha2-512", #"{"input":"YQ==","algorithm":"sha2-256"}"#, false),
                ("/v1/transit/verify/p384/sha2-256", #"{"input":"YQ==","signature":"vault:v1:AA=="}"#, false),
                // Beside batch_input, as Vault's clients send them: every item is checked with them.
                ("/v1/transit/sign/p384", #"{"hash_algorithm":"sha2-512","batch_input":[{"input":"YQ=="},{"input":"Yg=="}]}"#, false),
                ("/v1/transit/sign/p384/sha2-512", #"{"batch_input":[{"input":"YQ=="}]}"#, false),
                ("/v1/transit/hmac/m", #"{"algorithm":"sha2-512","batch_input":[{"input":"YQ=="}]}"#, false),
                ("/v1/transit/sign/pk", #"{"signature_algorithm":"pss","batch_input":[{"input":"YQ=="}]}"#, false),
                // RSA-PSS's salt_length: the hash's length (auto, hash, 32) is served, another refused; other keys ignore it.
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":"auto"}"#, true),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":"hash"}"#, true),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":32}"#, true),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":"32"}"#, true),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":"20"}"#, false),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":222}"#, false),
                ("/v1/transit/sign/pss", #"{"input":"YQ==","salt_length":"max"}"#, false),
                ("/v1/transit/verify/pss", #"{"input":"YQ==","signature":"vault:v1:AA==","salt_length":20}"#, false),
                ("/v1/transit/sign/p384", #"{"input":"YQ==","salt_length":20}"#, true),
            ] {
                let (code, text) = try await status(path, body)
                if served {
                    #expect(code == .ok, "\(path) \(body): \(text)")
                } else if body.contains("batch_input") {
                    let items = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                        .flatMap { ($0["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] } ?? []
                    #expect(!items.isEmpty && items.allSatisfy { ($0["error"] as? String)?.contains("is not this key's") == true && $0["signature"] == nil && $0["hmac"] == nil },
                            "\(path) \(body): \(text)")
                } else {
                    #expect(code == .badRequest && text.contains("errors") && (!body.contains("salt_length") || text.contains("salt_length")), "\(path) \(body): \(text)")
                }
            }
            // A PKCS #1 v1.5 signature made through Transit verifies with the key's public key.
            let signed = try await client.call(.post, "/v1/transit/sign/pk", token: nil, #"{"input":"YQ==","signature_algorithm":"pkcs1v15"}"#, headers: root)
            let signature = ((signed.json["data"] as? [String: Any])?["signature"] as? String ?? "").split(separator: ":").last.map(String.init) ?? ""
            let publicKey = try await fixture.service.publicKey(key: "transit/pk", actor: .owner("test"))
            #expect(try publicKey.verify(Array(Data(base64Encoded: signature) ?? Data()), for: .message(Array("a".utf8))))
        }
    }

    @Test("prehashed beside batch_input, as hvac sends it, signs every item as a digest: each signature verifies for the message the digest is of")
    func prehashedBatches() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/pre", token: nil, #"{"type":"ecdsa-p256"}"#, headers: root).status == .ok)
            let messages = ["first release", "second release"]
            let digests = messages.map { Data(SHA256Hash.hash(Array($0.utf8))).base64EncodedString() }
            let signed = try await client.call(.post, "/v1/transit/sign/pre", token: nil,
                                               #"{"prehashed":true,"hash_algorithm":"sha2-256","batch_input":[{"input":"\#(digests[0])"},{"input":"\#(digests[1])"}]}"#, headers: root)
            let items = (signed.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []
            #expect(items.count == 2, "\(signed.text)")
            let publicKey = try await fixture.service.publicKey(key: "transit/pre", actor: .owner("test"))
            for (item, message) in zip(items, messages) {
                let signature = (item["signature"] as? String ?? "").split(separator: ":").last.map(String.init) ?? ""
                let der = Array(Data(base64Encoded: signature) ?? Data())
                // Signed over the message's digest, not over the digest's own digest.
                #expect(try publicKey.verify(der, for: .message(Array(message.utf8))), "\(message): \(item)")
            }
            // And verified the same way: a batch verify with prehashed beside it.
            let first = items.first?["signature"] as? String ?? ""
            let verified = try await client.call(.post, "/v1/transit/verify/pre", token: nil,
                                                 #"{"prehashed":true,"batch_input":[{"input":"\#(digests[0])","signature":"\#(first)"},{"input":"\#(digests[1])","signature":"\#(first)"}]}"#, headers: root)
            let results = ((verified.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []).map { $0["valid"] as? Bool }
            #expect(results == [true, false], "\(verified.text)")
        }
    }

    @Test("batch results carry each item's reference; encrypt and decrypt answer a batch with a failed item 400 (or partial_failure_response_code when some succeeded), as OpenBao does, and 200 when all succeed")
    func batchReferencesAndStatuses() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/r", token: nil, "{}", headers: root).status == .ok)
            #expect(try await client.call(.post, "/v1/transit/keys/rs", token: nil, #"{"type":"ed25519"}"#, headers: root).status == .ok)
            func batch(_ path: String, _ body: String) async throws -> (HTTPResponse.Status, [[String: Any]], String) {
                let reply = try await client.call(.post, path, token: nil, body, headers: root)
                return (reply.status, (reply.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? [], reply.text)
            }
            let (allGood, sealed, text) = try await batch("/v1/transit/encrypt/r", #"{"batch_input":[{"plaintext":"YQ==","reference":"first"},{"plaintext":"Yg=="}]}"#)
            #expect(allGood == .ok && sealed.map { $0["reference"] as? String } == ["first", ""], "\(text)")
            for (body, expected) in [
                (#"{"batch_input":[{"plaintext":"YQ==","reference":"a"},{"plaintext":"%%","reference":"b"}]}"#, HTTPResponse.Status.badRequest),
                (#"{"partial_failure_response_code":207,"batch_input":[{"plaintext":"YQ==","reference":"a"},{"plaintext":"%%","reference":"b"}]}"#, HTTPResponse.Status(code: 207)),
                // Every item failed: the override does not apply.
                (#"{"partial_failure_response_code":207,"batch_input":[{"plaintext":"%%","reference":"a"},{"plaintext":"%%","reference":"b"}]}"#, .badRequest),
                // Not a status: Transit's default.
                (#"{"partial_failure_response_code":700,"batch_input":[{"plaintext":"YQ==","reference":"a"},{"plaintext":"%%","reference":"b"}]}"#, .badRequest),
            ] {
                let (status, items, text) = try await batch("/v1/transit/encrypt/r", body)
                #expect(status == expected && items.map { $0["reference"] as? String } == ["a", "b"] && items[1]["error"] != nil, "\(body): \(text)")
            }
            let ciphertext = sealed.first?["ciphertext"] as? String ?? ""
            let (opened, plain, openedText) = try await batch("/v1/transit/decrypt/r",
                                                              #"{"batch_input":[{"ciphertext":"\#(ciphertext)","reference":"ok"},{"ciphertext":"vault:v1:AAAA","reference":"bad"}]}"#)
            #expect(opened == .badRequest && plain.map { $0["reference"] as? String } == ["ok", "bad"] && plain[0]["plaintext"] as? String == "YQ==", "\(openedText)")
            // Sign, verify and HMAC batches answer 200 with their per-item errors, as OpenBao's do; references as everywhere.
            let (signed, signatures, signedText) = try await batch("/v1/transit/sign/rs", #"{"batch_input":[{"input":"YQ==","reference":"s1"},{"input":"%%","reference":"s2"}]}"#)
            #expect(signed == .ok && signatures.map { $0["reference"] as? String } == ["s1", "s2"] && signatures[1]["error"] != nil, "\(signedText)")
            let signature = signatures.first?["signature"] as? String ?? ""
            let (verified, checks, verifiedText) = try await batch("/v1/transit/verify/rs", #"{"batch_input":[{"input":"YQ==","signature":"\#(signature)","reference":"v1"},{"input":"Yg==","signature":"\#(signature)"}]}"#)
            #expect(verified == .ok && checks.map { $0["reference"] as? String } == ["v1", ""] && checks.map { $0["valid"] as? Bool } == [true, false], "\(verifiedText)")
        }
    }

    @Test("encrypt to a key that does not exist creates it (upsert) for a caller that may create it: aes256-gcm96 or the type asked, derived with a context, once for a batch; a caller that may not gets 403 and no key is made")
    func encryptUpserts() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let creator = try await fixture.token(["encrypt,decrypt:alias=transit/*", "create:alias=transit/app-*"]).text
        let encryptOnly = try await fixture.token(["encrypt:alias=transit/*"]).text
        let createOnly = try await fixture.token(["create:alias=transit/*"]).text
        try await fixture.application().test(.router) { client in
            func call(_ path: String, _ body: String, _ token: String) async throws -> (HTTPResponse.Status, [String: Any], String) {
                let reply = try await client.call(.post, path, token: nil, body, headers: [HTTPField.Name("X-Vault-Token")!: token])
                return (reply.status, reply.json["data"] as? [String: Any] ?? [:], reply.text)
            }
            let (created, sealed, text) = try await call("/v1/transit/encrypt/app-one", #"{"plaintext":"YQ=="}"#, creator)
            #expect(created == .ok && (sealed["ciphertext"] as? String)?.hasPrefix("vault:v1:") == true, "\(text)")
            #expect(try await fixture.service.describe(key: "transit/app-one", actor: .owner("test")).metadata.spec == .aes256GCM)
            let (opened, plain, _) = try await call("/v1/transit/decrypt/app-one", #"{"ciphertext":"\#(sealed["ciphertext"] as? String ?? "")"}"#, creator)
            #expect(opened == .ok && plain["plaintext"] as? String == "YQ==")

            // The type asked for; a context makes it derived: its ciphertexts need that context.
            let (chacha, _, chachaText) = try await call("/v1/transit/encrypt/app-two", #"{"plaintext":"YQ==","type":"chacha20-poly1305","context":"Yw=="}"#, creator)
            #expect(chacha == .ok, "\(chachaText)")
            let two = try await fixture.service.describe(key: "transit/app-two", actor: .owner("test")).metadata
            #expect(two.spec == .chaCha20Poly1305 && two.contextRequired == true)
            #expect(try await call("/v1/transit/encrypt/app-two", #"{"plaintext":"YQ=="}"#, creator).0 == .badRequest)

            // A batch creates the key once and encrypts every item.
            let (batch, results, batchText) = try await call("/v1/transit/encrypt/app-three", #"{"batch_input":[{"plaintext":"YQ=="},{"plaintext":"Yg=="}]}"#, creator)
            #expect(batch == .ok && (results["batch_results"] as? [[String: Any]])?.allSatisfy { ($0["ciphertext"] as? String)?.hasPrefix("vault:v1:") == true } == true, "\(batchText)")

            // Two first uses of one name at once: both encrypt, under the one key either made.
            async let first = call("/v1/transit/encrypt/app-race", #"{"plaintext":"YQ=="}"#, creator)
            async let second = call("/v1/transit/encrypt/app-race", #"{"plaintext":"Yg=="}"#, creator)
            let (one, other) = try await (first, second)
            #expect(one.0 == .ok && other.0 == .ok, "\(one.2) \(other.2)")
            let raced = try await fixture.service.resolve("transit/app-race")
            for ciphertext in [one.1["ciphertext"], other.1["ciphertext"]].compactMap({ $0 as? String }) {
                let (status, opened, text) = try await call("/v1/transit/decrypt/app-race", #"{"ciphertext":"\#(ciphertext)"}"#, creator)
                #expect(status == .ok && opened["plaintext"] != nil, "\(raced): \(text)")
            }

            // Not an encryption type: refused, nothing made.
            let (signing, _, signingText) = try await call("/v1/transit/encrypt/app-four", #"{"plaintext":"YQ==","type":"ed25519"}"#, creator)
            #expect(signing == .badRequest && signingText.contains("not supported for this operation"), "\(signingText)")
            // Attack: a caller without create, or with create only elsewhere, cannot make keys by
            // encrypting, whatever type it asks for; it gets the 403 of a key it may not use.
            // A caller that may create but not encrypt is refused before a key is made: a refused
            // request leaves nothing behind.
            for (name, token, type) in [("app-five", encryptOnly, "aes256-gcm96"), ("other", creator, "aes256-gcm96"), ("other", creator, "ed25519"),
                                        ("app-six", createOnly, "aes256-gcm96")] {
                let (status, _, refusedText) = try await call("/v1/transit/encrypt/\(name)", #"{"plaintext":"YQ==","type":"\#(type)"}"#, token)
                #expect(status == .forbidden && refusedText.contains("permission denied"), "\(name) \(type): \(refusedText)")
            }
            for name in ["app-four", "app-five", "app-six", "other"] {
                await #expect(throws: KeywardError.self) { try await fixture.service.resolve("transit/\(name)") }
            }
        }
    }

    @Test("random: the count in the path or body, the platform source named (in the path or body) or not, base64 or hex; seal, all, unknown sources and formats refused")
    func randomBytes() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            func random(_ path: String, _ body: String = "{}") async throws -> (HTTPResponse.Status, String?, String) {
                let reply = try await client.call(.post, "/v1/transit/" + path, token: nil, body, headers: root)
                return (reply.status, (reply.json["data"] as? [String: Any])?["random_bytes"] as? String, reply.text)
            }
            for (path, body, count, hex) in [("random", "{}", 32, false), ("random/16", "{}", 16, false), ("random", #"{"bytes":8,"format":"hex"}"#, 8, true),
                                             ("random/platform", "{}", 32, false), ("random/platform/24", #"{"format":"hex"}"#, 24, true),
                                             ("random", #"{"source":"platform","bytes":12}"#, 12, false)] {
                let (status, text, reply) = try await random(path, body)
                let decoded = hex ? text.flatMap(Self.hexBytes) : text.flatMap { Data(base64Encoded: $0).map(Array.init) }
                #expect(status == .ok && decoded?.count == count, "\(path) \(body): \(reply)")
            }
            for (path, body) in [("random/seal", "{}"), ("random/all/16", "{}"), ("random/mars/16", "{}"), ("random/16", #"{"format":"base32"}"#), ("random/0", "{}"), ("random/platform/x", "{}"),
                                 ("random", #"{"source":"seal"}"#), ("random/16", #"{"source":"all"}"#), ("random", #"{"source":"mars"}"#)] {
                let (status, _, reply) = try await random(path, body)
                #expect(status == .badRequest, "\(path) \(body): \(reply)")
            }
        }
    }

    @Test("sign, HMAC, rewrap and data keys with key_version: the latest (or 0) is served; a superseded or unknown version is refused, never ignored, single and in a batch")
    func supersededVersionsDoNotSign() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let root: HTTPFields = [HTTPField.Name("X-Vault-Token")!: fixture.rootToken]
            #expect(try await client.call(.post, "/v1/transit/keys/kv-box", token: nil, #"{"type":"aes256-gcm96"}"#, headers: root).status == .ok)
            let sealed = try await client.call(.post, "/v1/transit/encrypt/kv-box", token: nil, #"{"plaintext":"YQ=="}"#, headers: root)
            let ciphertext = (sealed.json["data"] as? [String: Any])?["ciphertext"] as? String ?? ""
            #expect(try await client.call(.post, "/v1/transit/keys/kv-box/rotate", token: nil, "", headers: root).status == .ok)
            // Another key's ciphertext is not rewrapped under this one; a key that does not exist is
            // 404 to a caller that may see every key (others get the mismatch: AuthorityAttackTests).
            #expect(try await client.call(.post, "/v1/transit/keys/kv-other", token: nil, #"{"type":"aes256-gcm96"}"#, headers: root).status == .ok)
            let foreign = try await client.call(.post, "/v1/transit/rewrap/kv-other", token: nil, #"{"ciphertext":"\#(ciphertext)"}"#, headers: root)
            #expect(foreign.status == .badRequest && foreign.text.contains("the ciphertext was made under key"), "\(foreign.status) \(foreign.text)")
            #expect(try await client.call(.post, "/v1/transit/rewrap/kv-none", token: nil, #"{"ciphertext":"\#(ciphertext)"}"#, headers: root).status == .notFound)
            for (path, body, version, served) in [("rewrap/kv-box", #""ciphertext":"\#(ciphertext)","#, 2, true), ("rewrap/kv-box", #""ciphertext":"\#(ciphertext)","#, 1, false),
                                                  ("rewrap/kv-box", #""ciphertext":"\#(ciphertext)","#, 5, false),
                                                  ("datakey/wrapped/kv-box", "", 0, true), ("datakey/plaintext/kv-box", "", 1, false), ("datakey/wrapped/kv-box", "", 7, false)] {
                let reply = try await client.call(.post, "/v1/transit/" + path, token: nil, #"{\#(body)"key_version":\#(version)}"#, headers: root)
                if served {
                    #expect(reply.status == .ok && reply.text.contains("vault:v2:"), "\(path) v\(version): \(reply.text)")
                } else {
                    #expect(reply.status == .badRequest && reply.text.contains("key_version \(version)") && !reply.text.contains("vault:v"),
                            "\(path) v\(version): \(reply.text)")
                }
            }
            for (name, type) in [("kv-sign", "ed25519"), ("kv-mac", "hmac")] {
                #expect(try await client.call(.post, "/v1/transit/keys/\(name)", token: nil, #"{"type":"\#(type)"}"#, headers: root).status == .ok)
                #expect(try await client.call(.post, "/v1/transit/keys/\(name)/rotate", token: nil, "", headers: root).status == .ok)
            }
            for (path, version, served) in [("sign/kv-sign", 2, true), ("sign/kv-sign", 0, true), ("sign/kv-sign", 1, false),
                                            ("hmac/kv-mac", 2, true), ("hmac/kv-mac", 1, false)] {
                let reply = try await client.call(.post, "/v1/transit/" + path, token: nil, #"{"input":"YQ==","key_version":\#(version)}"#, headers: root)
                if served {
                    #expect(reply.status == .ok && reply.text.contains("vault:v2:"), "\(path) v\(version): \(reply.text)")
                } else {
                    #expect(reply.status == .badRequest && reply.text.contains("key_version 1"), "\(path) v\(version): \(reply.text)")
                }
            }
            let batch = try await client.call(.post, "/v1/transit/sign/kv-sign", token: nil, #"{"batch_input":[{"input":"YQ=="},{"input":"YQ==","key_version":1}]}"#, headers: root)
            let items = (batch.json["data"] as? [String: Any])?["batch_results"] as? [[String: Any]] ?? []
            #expect(items.count == 2 && (items[0]["signature"] as? String)?.hasPrefix("vault:v2:") == true
                    && (items[1]["error"] as? String)?.contains("key_version 1") == true && items[1]["signature"] == nil, "\(batch.text)")
        }
    }

    /// The bytes of lowercase or uppercase hex text; nil when it is not hex.
    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        return try? stride(from: 0, to: digits.count, by: 2).map { index in
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { throw NotHex() }
            return byte
        }
    }
    private struct NotHex: Error {}
}
