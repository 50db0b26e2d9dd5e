import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
@testable import KeywardServer
import Testing

/// The Transit front end's own behaviour in process: Vault's methods and envelope, `vault:vN:`
/// ciphertexts that are Keyward's, and errors in Vault's shape. hvac and the bao CLI run in
/// scripts/clients/vault_transit.py.
@Suite("Vault Transit front end")
struct TransitFrontEndTests {
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
        }
    }

    @Test("errors are Vault's: {\"errors\": [...]}, 404 for an unknown key, 403 'permission denied' for a missing or bad token and for a policy that does not cover the call")
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
        }
    }
}
