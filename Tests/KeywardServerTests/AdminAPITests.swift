import Foundation
import Hummingbird
import HummingbirdTesting
import Keyward
import KeywardCrypto
@testable import KeywardServer
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// `/v1/admin`: a cluster administered without a shell on any node.
@Suite("Administration over the API")
struct AdminAPITests {
    @Test("attack: a token allowed to manage tokens cannot mint one wider than its own grants; within them it can")
    func noEscalationThroughTokens() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let admin = try await fixture.token(["manage-tokens:*", "encrypt:alias=app/*"], principal: "team-admin").text
        try await fixture.application().test(.router) { client in
            for rules in [#"["*:*"]"#, #"["encrypt:*"]"#, #"["decrypt:alias=app/*"]"#, #"["encrypt:alias=ap*"]"#, #"["manage-tokens:*","read-audit:*"]"#] {
                let reply = try await client.call(.post, "/v1/admin/tokens", token: admin, #"{"principal":"minted","rules":\#(rules)}"#)
                #expect(reply.status == .forbidden, "\(rules): \(reply.status) \(reply.text)")
            }
            let narrower = try await client.call(.post, "/v1/admin/tokens", token: admin, #"{"principal":"minted","rules":["encrypt:alias=app/billing/*"]}"#)
            #expect(narrower.status == .created && narrower.string("token").hasPrefix("kw_"), "\(narrower.text)")
            let same = try await client.call(.post, "/v1/admin/tokens", token: admin, #"{"principal":"minted","rules":["manage-tokens:*","encrypt:alias=app/*"]}"#)
            #expect(same.status == .created)
        }
        // Every refusal is in the audit log as denied.
        let denied = try await fixture.service.auditTail(100).map(\.event).filter { $0.operation == "token-issue" && $0.outcome != "ok" }
        #expect(denied.count == 5)
    }

    @Test("attack: a token's policy changed over the API applies on this node at once; a manager cannot widen a token past its own grants, nor rewrite a wider one")
    func tokenPolicyOverTheAPI() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let admin = try await fixture.token(["manage-tokens:*", "encrypt,decrypt:alias=app/*"], principal: "team-admin").text
        let app = try await fixture.token(["encrypt:alias=app/*"], principal: "app")
        let wide = try await fixture.token(["*:*"], principal: "wide")
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            #expect(try await client.call(.post, "/v1/keys/app%2Fk/encrypt", token: app.text, #"{"plaintext":"AQID"}"#).status == .ok)
            for rules in [#"["*:*"]"#, #"["encrypt:*"]"#, #"["sign:alias=app/*"]"#] {
                let reply = try await client.call(.put, "/v1/admin/tokens/\(app.record.id)/policy", token: admin, #"{"rules":\#(rules)}"#)
                #expect(reply.status == .forbidden, "\(rules): \(reply.status) \(reply.text)")
            }
            let downgrade = try await client.call(.put, "/v1/admin/tokens/\(wide.record.id)/policy", token: admin, #"{"rules":["encrypt:alias=app/*"]}"#)
            #expect(downgrade.status == .forbidden, "rewriting a wider token: \(downgrade.text)")
            #expect(try await client.call(.put, "/v1/admin/tokens/\(app.record.id)/policy", token: admin, #"{"rules":[]}"#).status == .badRequest)
            #expect(try await client.call(.put, "/v1/admin/tokens/\(app.record.id)/policy", token: admin, #"{"rules":["nonsense"]}"#).status == .badRequest)
            let changed = try await client.call(.put, "/v1/admin/tokens/\(app.record.id)/policy", token: admin, #"{"rules":["decrypt:alias=app/*"]}"#)
            #expect(changed.status == .ok && (changed.json["rules"] as? [String]) == ["decrypt:alias=app/*"], "\(changed.text)")
            // The token was cached as able to encrypt; the change applies to the next request.
            #expect(try await client.call(.post, "/v1/keys/app%2Fk/encrypt", token: app.text, #"{"plaintext":"AQID"}"#).status == .forbidden)
        }
        let events = try await fixture.service.auditTail(100).map(\.event).filter { $0.operation == "token-policy" }
        #expect(events.filter { $0.outcome == "ok" }.count == 1 && events.filter { $0.outcome == "denied" }.count == 4, "\(events.map(\.outcome))")
        #expect(try await fixture.service.verifyStore(actor: .owner("test")).isIntact)
    }

    @Test("attack: a token manager cannot revoke a token wider than itself (the operator's root token, another team's); it revokes those within its grants, and its own")
    func revocationBoundedByGrants() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let admin = try await fixture.token(["manage-tokens:*", "encrypt,decrypt:alias=app/*"], principal: "team-admin")
        let other = try await fixture.token(["encrypt:alias=billing/*"], principal: "billing")
        let app = try await fixture.token(["encrypt:alias=app/*"], principal: "app")
        let root = try #require(try await fixture.service.listTokens(actor: .owner("test")).tokens.first { $0.principal == "root" })
        try await fixture.application().test(.router) { client in
            for target in [root.id, other.record.id] {
                let reply = try await client.call(.post, "/v1/admin/tokens/\(target)/revoke", token: admin.text)
                #expect(reply.status == .forbidden, "revoking \(target): \(reply.status) \(reply.text)")
            }
            // Both still work.
            #expect(try await client.call(.get, "/v1/admin/tokens?limit=10", token: fixture.rootToken).status == .ok)
            #expect(try await client.call(.post, "/v1/admin/tokens/\(app.record.id)/revoke", token: admin.text).status == .ok)
            #expect(try await client.call(.post, "/v1/admin/tokens/\(admin.record.id)/revoke", token: admin.text).status == .ok)
            #expect(try await client.call(.get, "/v1/admin/tokens?limit=10", token: admin.text).status == .unauthorized)
        }
        let events = try await fixture.service.auditTail(100).map(\.event).filter { $0.operation == "token-revoke" }
        #expect(events.map(\.outcome) == ["denied", "denied", "ok", "ok"], "\(events.map(\.outcome))")
        let records = try await fixture.service.listTokens(limit: 1000, actor: .owner("test")).tokens
        #expect(records.first { $0.id == other.record.id }?.revokedAt == nil && records.first { $0.id == root.id }?.revokedAt == nil)
    }

    @Test("attack: a token manager whose own token expires cannot mint a credential that outlives it; a token or access key it issues expires no later")
    func issuedCredentialsDoNotOutliveTheIssuer() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let admin = try await fixture.token(["manage-tokens:*", "encrypt:alias=app/*"], lifetime: 3 * 86_400, principal: "contractor")
        let limit = try #require(admin.record.expiresAt)
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            var minted: [String] = []
            for lifetime in ["", #","expiresInDays":30"#] {
                let reply = try await client.call(.post, "/v1/admin/tokens", token: admin.text, #"{"principal":"kept","rules":["encrypt:alias=app/*"]\#(lifetime)}"#)
                #expect(reply.status == .created && reply.string("expiresAt") == ISO8601DateFormatter().string(from: limit), "\(lifetime): \(reply.text)")
                minted.append(reply.string("token"))
            }
            let aws = try await client.call(.post, "/v1/admin/credentials/aws", token: admin.text, #"{"principal":"kept-aws","rules":["encrypt:alias=app/*"]}"#)
            #expect(aws.status == .created && aws.string("expiresAt") == ISO8601DateFormatter().string(from: limit), "\(aws.text)")
            // A shorter lifetime stays as asked; the root token's issues are unbounded.
            let shorter = try await client.call(.post, "/v1/admin/tokens", token: admin.text, #"{"principal":"brief","rules":["encrypt:alias=app/*"],"expiresInDays":1}"#)
            #expect(shorter.status == .created && shorter.string("expiresAt") != ISO8601DateFormatter().string(from: limit), "\(shorter.text)")
            let unbounded = try await client.call(.post, "/v1/admin/tokens", token: fixture.rootToken, #"{"principal":"ops","rules":["encrypt:alias=app/*"]}"#)
            #expect(unbounded.status == .created && unbounded.json["expiresAt"] == nil, "\(unbounded.text)")
            // They work until then (checked in the store, so no cache holds them past the jump).
            for token in minted { _ = try await fixture.service.authenticate(token) }
            fixture.clock.advance(by: 3 * 86_400 + 1)
            for token in minted {
                #expect(try await client.call(.post, "/v1/keys/app%2Fk/encrypt", token: token, #"{"plaintext":"AQID"}"#).status == .unauthorized)
            }
        }
    }

    @Test("tokens issued, listed (never their text), used and revoked over the API; audit queried by actor and operation, and verified; store verified; maintenance run and reported")
    func administration() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/orders"]), actor: .owner("test")).metadata.id.description
        try await fixture.application().test(.router) { client in
            let root = fixture.rootToken
            let issued = try await client.call(.post, "/v1/admin/tokens", token: root, #"{"principal":"orders","rules":["encrypt,decrypt:alias=app/*"],"expiresInDays":30}"#)
            #expect(issued.status == .created)
            let token = issued.string("token"), id = issued.string("id")
            #expect(try await client.call(.post, "/v1/keys/app/orders/encrypt".replacingOccurrences(of: "app/orders", with: key), token: token, #"{"plaintext":"AQID"}"#).status == .ok)

            let list = try await client.call(.get, "/v1/admin/tokens?limit=1000", token: root)
            let tokens = try #require(list.json["tokens"] as? [[String: Any]])
            let listed = try #require(tokens.first { $0["id"] as? String == id })
            #expect(listed["rules"] as? [String] == ["decrypt,encrypt:alias=app/*"] && listed["principal"] as? String == "orders")
            #expect(!list.text.contains(token), "the list shows a token's text")

            #expect(try await client.call(.post, "/v1/admin/tokens/\(id)/revoke", token: root).status == .ok)
            #expect(try await client.call(.post, "/v1/keys/\(key)/encrypt", token: token, #"{"plaintext":"AQID"}"#).status == .unauthorized)
            #expect(try await client.call(.post, "/v1/admin/tokens/\(UUID().uuidString)/revoke", token: root).status == .badRequest)

            let audit = try await client.call(.get, "/v1/admin/audit?operation=encrypt&actor=token:\(id):orders", token: root)
            let entries = try #require(audit.json["entries"] as? [[String: Any]])
            #expect(entries.count == 1 && entries.first?["keyId"] as? String == key && entries.first?["outcome"] as? String == "ok", "\(audit.text)")
            // Paging two entries at a time reaches the end (each read is itself audited, one
            // entry per page, so a page of two catches up) and sees every sequence once.
            var after = 0, seen: [Int] = []
            for _ in 0..<1000 {
                let page = try await client.call(.get, "/v1/admin/audit?limit=2&after=\(after)", token: root)
                for entry in page.json["entries"] as? [[String: Any]] ?? [] { seen.append(entry["sequence"] as? Int ?? -1) }
                guard let next = page.json["nextAfter"] as? Int else { break }
                after = next
            }
            #expect(seen == Array(1...seen.count) && seen.count > 5)
            #expect(try await client.call(.get, "/v1/admin/audit?since=yesterday", token: root).status == .badRequest)
            // The newest entries, read from the log's end: the last three sequences, in order, the
            // newest being this very read's own entry or the one just before it.
            let tail = try await client.call(.get, "/v1/admin/audit?tail=3", token: root)
            let tailed = (tail.json["entries"] as? [[String: Any]] ?? []).compactMap { $0["sequence"] as? Int }
            #expect(tailed.count == 3 && tailed == Array(tailed[0]...(tailed[0] + 2)) && tailed[0] > seen.count - 3 && tail.json["nextAfter"] == nil, "\(tail.text)")
            #expect(try await client.call(.get, "/v1/admin/audit?tail=3&after=1", token: root).status == .badRequest)
            #expect(try await client.call(.get, "/v1/admin/audit?tail=0", token: root).status == .badRequest)
            #expect(try await client.call(.get, "/v1/admin/audit?tail=3", token: token).status == .unauthorized)

            let chain = try await client.call(.post, "/v1/admin/audit/verify", token: root)
            #expect(chain.json["intact"] as? Bool == true && (chain.json["entries"] as? Int ?? 0) > 5 && chain.json["unchained"] as? Int == 0)
            let verified = try await client.call(.post, "/v1/admin/verify", token: root)
            #expect(verified.json["intact"] as? Bool == true && verified.json["keys"] as? Int == 1, "\(verified.text)")

            let run = try await client.call(.post, "/v1/admin/maintenance/run", token: root)
            #expect(run.status == .ok && run.json["keys"] as? Int == 1 && run.json["ranAt"] != nil)
            let status = try await client.call(.get, "/v1/admin/maintenance", token: root)
            #expect(status.json["ranAt"] as? String == run.json["ranAt"] as? String)
            let cluster = try await client.call(.get, "/v1/admin/cluster", token: root)
            #expect(cluster.status == .ok && cluster.json["leases"] is [Any] && cluster.json["nodes"] is [Any], "\(cluster.text)")
        }
    }

    @Test("audit segments over the API: a signed segment of the log and the signer's public key, which verify the segment offline; a token without read-audit, an empty or reversed range and sequence numbers near Int64.max are refused without a crash")
    func auditSegments() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/ledger"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let root = fixture.rootToken
            let made = try await client.call(.post, "/v1/admin/audit/export", token: root, #"{"after":0,"through":3}"#)
            #expect(made.status == .ok && made.json["first"] as? Int == 1 && made.json["last"] as? Int == 3 && made.json["entries"] as? Int == 3, "\(made.text)")
            let signer = try await client.call(.get, "/v1/admin/audit/signer", token: root)
            let pem = signer.string("publicKeyPem")
            #expect(pem.hasPrefix("-----BEGIN PUBLIC KEY-----"), "\(signer.text)")
            // The segment is the file `keyward audit export` writes: its signature checks against the served key.
            let segment = try AuditSegment(parsing: made.bytes("segment"))
            #expect(segment.header.first == 1 && segment.header.last == 3 && segment.header.signerKeyID.description == made.string("signerKeyId"))
            #expect(segment.problems(signer: try PublicKey(spec: .ed25519, pem: pem)).isEmpty)
            // The rest of the log, from where that segment ended.
            let next = try await client.call(.post, "/v1/admin/audit/export", token: root, #"{"after":3}"#)
            #expect(next.status == .ok && next.json["first"] as? Int == 4, "\(next.text)")

            let reader = try await fixture.token(["encrypt:*"]).text
            #expect(try await client.call(.post, "/v1/admin/audit/export", token: reader, "{}").status == .forbidden)
            #expect(try await client.call(.get, "/v1/admin/audit/signer", token: reader).status == .forbidden)
            for body in [#"{"after":5,"through":5}"#, #"{"after":-1}"#, #"{"after":9223372036854775807}"#,
                         #"{"after":9223372036854775000}"#, #"{"after":0,"through":9223372036854775807}"#, #"{"since":1}"#] {
                let refused = try await client.call(.post, "/v1/admin/audit/export", token: root, body)
                #expect(refused.status == .badRequest, "\(body): \(refused.status) \(refused.text)")
            }
        }
    }

    @Test("backup over the API goes only to a recipient the operator pinned (attack: a stolen admin token asks for the keys sealed to its own key, refused and audited); the bundle restores over the API into another cluster's empty store, which trusts the source's signer, and old ciphertexts decrypt there")
    func backupAndRestoreOverTheAPI() async throws {
        let source = try TemporaryStore(label: "admin-backup-source"), target = try TemporaryStore(label: "admin-backup-target")
        defer { source.remove(); target.remove() }
        let owner = Caller.owner("t")
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: source.path("store.db")), root: source.root(), actor: owner)
        let key = try await service.createKey(CreateKeyRequest(aliases: ["app/orders"]), actor: owner).metadata.id.description
        let sealed = try await service.encrypt(Array("ledger".utf8), key: key, context: ["t": "1"], actor: owner)
        let admin = try await service.issueToken(principal: "ops", policy: AccessPolicy(rules: [AccessRule(operations: [.backup], keys: .any)]), lifetime: nil, actor: owner).text
        let narrow = try await service.issueToken(principal: "reader", policy: AccessPolicy(rules: [AccessRule(operations: [.readAudit], keys: .any)]), lifetime: nil, actor: owner).text
        // The recovery site's recipient, pinned in the source's configuration; the attacker's is not.
        let site = try KeyMaterial.generate(.x25519), attacker = try KeyMaterial.generate(.x25519)
        try BackupKeyFiles.recipientText(site).write(toFile: source.path("site.pub"), atomically: true, encoding: .utf8)
        let signer = try await service.backupSigner(actor: owner)
        var configuration = ServerConfiguration()
        configuration.insecureHTTP = true
        configuration.backup.recipients = [source.path("site.pub")]
        let server = try KeywardServer(service: service, configuration: configuration)
        let bundle: [UInt8] = try await Application(router: try server.makeRouter()).test(.router) { client in
            let stolen = try await client.call(.post, "/v1/admin/backup", token: admin, try json(["recipient": BackupKeyFiles.recipientText(attacker)]))
            #expect(stolen.status == .forbidden && stolen.text.contains("backup.recipients"), "\(stolen.status) \(stolen.text)")
            let unauthorised = try await client.call(.post, "/v1/admin/backup", token: narrow, try json(["recipient": BackupKeyFiles.recipientText(site)]))
            #expect(unauthorised.status == .forbidden)
            #expect(try await client.call(.post, "/v1/admin/backup", token: admin, #"{"recipient":"not a key"}"#).status == .badRequest)
            let made = try await client.call(.post, "/v1/admin/backup", token: admin, try json(["recipient": BackupKeyFiles.recipientText(site)]))
            #expect(made.status == .ok && made.json["keys"] as? Int == 1, "\(made.status) \(made.text)")
            return [UInt8](Data(base64Encoded: made.string("bundle")) ?? Data())
        }
        let refusals = try await service.auditTail(50).map(\.event).filter { $0.operation == "backup-create" && $0.outcome != "ok" }
        #expect(refusals.count == 2, "\(refusals.map(\.outcome))")
        // The bundle opens only with the site's identity and the source's signer.
        #expect(try KeyService.openBackup(bundle, identity: site, signer: signer).keys.count == 1)

        // The recovery cluster: its own store, the site identity and the source's signer pinned.
        let recovered = try await KeyService.initialize(store: try SQLiteKeyStore(path: target.path("store.db")), root: target.root(), actor: owner)
        try BackupKeyFiles.identityText(site).write(toFile: target.path("site.identity"), atomically: true, encoding: .utf8)
        try #require(signer.pem).write(toFile: target.path("source-signer.pem"), atomically: true, encoding: .utf8)
        let restorer = try await recovered.issueToken(principal: "ops", policy: AccessPolicy(rules: [AccessRule(operations: [.restore], keys: .any)]), lifetime: nil, actor: owner).text
        var targetConfiguration = ServerConfiguration()
        targetConfiguration.insecureHTTP = true
        targetConfiguration.backup.identity = target.path("site.identity")
        // Attack: an identity file others on the machine can read (written with mode 0644) is
        // refused at start, naming its mode, rather than used.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target.path("site.identity"))
        do {
            _ = try KeywardServer(service: recovered, configuration: targetConfiguration)
            Issue.record("a world-readable backup.identity was accepted")
        } catch {
            #expect("\(error)".contains("mode 644") && "\(error)".contains("backup.identity"), "\(error)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target.path("site.identity"))
        let untrusting = try KeywardServer(service: recovered, configuration: targetConfiguration)
        try await Application(router: try untrusting.makeRouter()).test(.router) { client in
            let refused = try await client.call(.post, "/v1/admin/restore", token: restorer, try json(["bundle": Data(bundle).base64EncodedString()]))
            #expect(refused.status == .forbidden && refused.text.contains("backup.signers"), "\(refused.text)")
        }
        targetConfiguration.backup.signers = [target.path("source-signer.pem")]
        let trusting = try KeywardServer(service: recovered, configuration: targetConfiguration)
        try await Application(router: try trusting.makeRouter()).test(.router) { client in
            var tampered = bundle
            tampered[tampered.count - 80] ^= 1  // in the sealed payload, which the signature covers
            let broken = try await client.call(.post, "/v1/admin/restore", token: restorer, try json(["bundle": Data(tampered).base64EncodedString()]))
            #expect(broken.status == .badRequest && broken.text.contains("the bundle was refused"), "a tampered bundle: \(broken.status) \(broken.text)")
            let garbage = try await client.call(.post, "/v1/admin/restore", token: restorer, #"{"bundle":"AAAA"}"#)
            #expect(garbage.status == .badRequest, "a bundle that is not one: \(garbage.status) \(garbage.text)")
            let restored = try await client.call(.post, "/v1/admin/restore", token: restorer, try json(["bundle": Data(bundle).base64EncodedString()]))
            #expect(restored.status == .ok && restored.json["restored"] as? Int == 1, "\(restored.text)")
            let again = try await client.call(.post, "/v1/admin/restore", token: restorer, try json(["bundle": Data(bundle).base64EncodedString()]))
            #expect(again.status == .forbidden, "a restore into a store that holds keys: \(again.text)")
        }
        #expect(try await recovered.decrypt(sealed.ciphertext, context: ["t": "1"], actor: owner).plaintext == Array("ledger".utf8))
        #expect(try await recovered.describe(key: "app/orders", actor: owner).metadata.id.description == key)
    }

    @Test("the KEK rotates over the API on a server holding its root of trust: old ciphertexts decrypt, new writes work, the store verifies")
    func kekRotationOverTheAPI() async throws {
        let temporary = try TemporaryStore(label: "admin-kek")
        defer { temporary.remove() }
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: temporary.path("store.db")), root: temporary.root(), actor: .owner("t"))
        let root = try await service.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: .owner("t")).text
        let narrow = try await service.issueToken(principal: "ops", policy: AccessPolicy(rules: [AccessRule(operations: [.verifyStore], keys: .any)]),
                                                  lifetime: nil, actor: .owner("t")).text
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let sealed = b64(try await service.encrypt([7], key: key, actor: .owner("t")).ciphertext)
        var configuration = ServerConfiguration()
        configuration.insecureHTTP = true
        let server = try KeywardServer(service: service, configuration: configuration, rootOfTrust: try temporary.root())
        let before = service.header.activeKEK
        try await Application(router: try server.makeRouter()).test(.router) { client in
            #expect(try await client.call(.post, "/v1/admin/kek/rotate", token: narrow).status == .forbidden)
            let rotated = try await client.call(.post, "/v1/admin/kek/rotate", token: root)
            #expect(rotated.status == .ok && rotated.string("activeKek") != before.description && (rotated.json["records"] as? Int ?? 0) > 0, "\(rotated.text)")
            #expect(try await client.call(.post, "/v1/decrypt", token: root, #"{"ciphertext":"\#(sealed)"}"#).string("plaintext") == "Bw==")
            #expect(try await client.call(.post, "/v1/keys", token: root, #"{"spec":"AES-256-GCM"}"#).status == .created)
            #expect(try await client.call(.post, "/v1/admin/verify", token: narrow).json["intact"] as? Bool == true)
        }
    }
}

/// `object` as a JSON body.
private func json(_ object: [String: String]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}
