import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
@testable import KeywardServer
import Testing

/// Transit's backup and restore of one key, encrypted: a recipient bundle of that key alone,
/// sealed to the recipient the source's operator pins and signed by the source store; restored
/// into another store that already holds keys, under a new name, and only from a trusted store.
@Suite("Transit backup and restore of one key")
struct TransitBackupTests {
    private static func vault(_ token: String) -> HTTPFields { [HTTPField.Name("X-Vault-Token")!: token] }

    private static func body(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test("backup/:name seals that key alone to the pinned recipient; restore/:name adds it to a store holding other keys, where its old ciphertexts decrypt; a second restore, force, a tampered bundle, an untrusted store's bundle and a Transit-scoped token are refused")
    func oneKeyMoves() async throws {
        let source = try TemporaryStore(label: "transit-backup-source"), target = try TemporaryStore(label: "transit-backup-target")
        let rogue = try TemporaryStore(label: "transit-backup-rogue")
        defer { source.remove(); target.remove(); rogue.remove() }
        let owner = Caller.owner("t")
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: source.path("store.db")), root: source.root(), actor: owner)
        let root = try await service.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: owner).text
        let scoped = try await service.issueToken(principal: "app", policy: AccessPolicy(rules: [try AccessPolicy.parseRule("encrypt,decrypt,describe:alias=transit/*")]),
                                                  lifetime: nil, actor: owner).text
        let site = try KeyMaterial.generate(.x25519)
        try BackupKeyFiles.recipientText(site).write(toFile: source.path("site.pub"), atomically: true, encoding: .utf8)
        var configuration = ServerConfiguration()
        configuration.insecureHTTP = true
        configuration.backup.recipients = [source.path("site.pub")]
        let (ciphertext, bundle): (String, [UInt8]) = try await Application(router: try KeywardServer(service: service, configuration: configuration).makeRouter()).test(.router) { client in
            #expect(try await client.call(.post, "/v1/transit/keys/orders", token: nil, "{}", headers: Self.vault(root)).status == .ok)
            #expect(try await client.call(.post, "/v1/transit/keys/other", token: nil, "{}", headers: Self.vault(root)).status == .ok)
            let sealed = try await client.call(.post, "/v1/transit/encrypt/orders", token: nil, #"{"plaintext":"bGVkZ2Vy"}"#, headers: Self.vault(root))
            let ciphertext = (sealed.json["data"] as? [String: Any])?["ciphertext"] as? String ?? ""
            let denied = try await client.call(.get, "/v1/transit/backup/orders", token: nil, headers: Self.vault(scoped))
            #expect(denied.status == .forbidden, "a Transit-scoped token took a backup: \(denied.text)")
            let made = try await client.call(.get, "/v1/transit/backup/orders", token: nil, headers: Self.vault(root))
            let text = (made.json["data"] as? [String: Any])?["backup"] as? String ?? ""
            #expect(made.status == .ok && !text.isEmpty, "\(made.text)")
            return (ciphertext, [UInt8](Data(base64Encoded: text) ?? Data()))
        }
        // The bundle is encrypted (no plaintext key material), holds the one key, and names the source's signer.
        let signer = try await service.backupSigner(actor: owner)
        let opened = try KeyService.openBackup(bundle, identity: site, signer: signer)
        #expect(opened.keys.count == 1 && opened.keys.first?.aliases == ["transit/orders"])

        // A bundle from another store, sealed to the same site: not signed by a store the target trusts.
        let rogueService = try await KeyService.initialize(store: try SQLiteKeyStore(path: rogue.path("store.db")), root: rogue.root(), actor: owner)
        _ = try await rogueService.createKey(CreateKeyRequest(aliases: ["transit/planted"]), actor: owner)
        let rogueBundle = try await rogueService.createBackup(protection: .recipient(try site.publicKey()), actor: owner).bytes

        // The target already holds keys of its own.
        let recovered = try await KeyService.initialize(store: try SQLiteKeyStore(path: target.path("store.db")), root: target.root(), actor: owner)
        _ = try await recovered.createKey(CreateKeyRequest(aliases: ["transit/resident"]), actor: owner)
        let targetRoot = try await recovered.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: owner).text
        try BackupKeyFiles.identityText(site).write(toFile: target.path("site.identity"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target.path("site.identity"))
        try #require(signer.pem).write(toFile: target.path("source-signer.pem"), atomically: true, encoding: .utf8)
        var targetConfiguration = ServerConfiguration()
        targetConfiguration.insecureHTTP = true
        targetConfiguration.backup.identity = target.path("site.identity")
        targetConfiguration.backup.signers = [target.path("source-signer.pem")]
        try await Application(router: try KeywardServer(service: recovered, configuration: targetConfiguration).makeRouter()).test(.router) { client in
            let headers = Self.vault(targetRoot)
            let encoded = Data(bundle).base64EncodedString()
            let untrusted = try await client.call(.post, "/v1/transit/restore/planted", token: nil, try Self.body(["backup": Data(rogueBundle).base64EncodedString()]), headers: headers)
            #expect(untrusted.status == .forbidden && untrusted.text.contains("backup.signers"), "\(untrusted.status) \(untrusted.text)")
            var tampered = bundle
            tampered[tampered.count - 80] ^= 1  // in the sealed payload, which the signature covers
            let broken = try await client.call(.post, "/v1/transit/restore/moved", token: nil, try Self.body(["backup": Data(tampered).base64EncodedString()]), headers: headers)
            #expect(broken.status == .badRequest && broken.text.contains("the bundle was refused"), "a tampered bundle: \(broken.status) \(broken.text)")
            let forced = try await client.call(.post, "/v1/transit/restore/moved", token: nil, try Self.body(["backup": encoded, "force": true]), headers: headers)
            #expect(forced.status == .badRequest)
            let restored = try await client.call(.post, "/v1/transit/restore/moved", token: nil, try Self.body(["backup": encoded]), headers: headers)
            #expect(restored.status == .noContent, "\(restored.status) \(restored.text)")
            let again = try await client.call(.post, "/v1/transit/restore/moved", token: nil, try Self.body(["backup": encoded]), headers: headers)
            #expect(again.status == .badRequest && again.text.contains("already holds key"), "a second restore: \(again.status) \(again.text)")
            // The old ciphertext decrypts under the new name; the resident key is untouched.
            let decrypted = try await client.call(.post, "/v1/transit/decrypt/moved", token: nil, try Self.body(["ciphertext": ciphertext]), headers: headers)
            #expect((decrypted.json["data"] as? [String: Any])?["plaintext"] as? String == "bGVkZ2Vy", "\(decrypted.text)")
            #expect(try await client.call(.get, "/v1/transit/keys/resident", token: nil, headers: headers).status == .ok)
            #expect(try await client.call(.get, "/v1/transit/keys/planted", token: nil, headers: headers).status == .notFound)
        }
        #expect(try await recovered.verifyStore(actor: owner).isIntact)
        let audit = try await recovered.auditTail(50).map(\.event)
        #expect(audit.contains { $0.operation == "restore" && $0.outcome == "ok" && $0.keyID == opened.keys.first?.metadata.id }, "\(audit.map { "\($0.operation) \($0.outcome)" })")
    }
}
