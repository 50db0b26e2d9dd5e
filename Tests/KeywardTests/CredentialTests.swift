import Foundation
import GRDB
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import Testing

@Suite("API tokens and access policies")
struct CredentialTests {
    @Test("a token authenticates until it is revoked or expires; malformed and unknown tokens do not")
    func tokenLifecycle() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let issued = try await service.issueToken(principal: "billing-app", policy: .everything, lifetime: 3600, actor: .owner("admin"))
        #expect(issued.text.hasPrefix("kw_") && issued.text.count == 3 + 32 + 1 + 43)
        #expect(try await service.authenticate(issued.text).principal == "billing-app")
        // The text is stored nowhere: only its hash.
        let stored = try fixture.fetch("SELECT hash, body FROM tokens")
        // Everything after `kw_<id>_`: the secret is base64url, so it may itself contain "_" (splitting
        // on "_" once took a one-letter fragment, which the body's JSON could contain by chance).
        let secretPart = String(issued.text.dropFirst(3 + 32 + 1))
        #expect(secretPart.count == 43)
        #expect(!stored.contains { String(decoding: ($0["body"] as Data?) ?? Data(), as: UTF8.self).contains(secretPart) })
        for bad in ["", "kw_", "Bearer x", issued.text + "x", String(issued.text.dropLast()) + (issued.text.last == "A" ? "B" : "A"),
                    "kw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43)] {
            guard case .unauthenticated = await keywardError({ () async throws(KeywardError) in _ = try await service.authenticate(bad) }) else {
                Issue.record("'\(bad.prefix(12))…' authenticated"); continue
            }
        }
        fixture.manualClock.advance(by: 3601)
        guard case .unauthenticated(let why) = await keywardError({ () async throws(KeywardError) in _ = try await service.authenticate(issued.text) }), why.contains("expired") else {
            Issue.record("an expired token authenticated"); return
        }
        let other = try await service.issueToken(principal: "ops", policy: .everything, lifetime: nil, actor: .owner("admin"))
        try await service.revokeToken(other.record.id, actor: .owner("admin"))
        guard case .unauthenticated(let revoked) = await keywardError({ () async throws(KeywardError) in _ = try await service.authenticate(other.text) }), revoked.contains("revoked") else {
            Issue.record("a revoked token authenticated"); return
        }
        #expect(try await service.listTokens(actor: .owner("t")).tokens.count == 2)
        // Pages: one token per page, cursors in id order, the last page without a cursor.
        let first = try await service.listTokens(limit: 1, actor: .owner("t"))
        #expect(first.tokens.count == 1 && first.nextCursor != nil)
        let second = try await service.listTokens(after: first.nextCursor, limit: 1, actor: .owner("t"))
        #expect(second.tokens.count == 1 && second.tokens[0].id != first.tokens[0].id)
        let third = try await service.listTokens(after: second.nextCursor, limit: 1, actor: .owner("t"))
        #expect(third.tokens.isEmpty && third.nextCursor == nil)
    }

    @Test("a chosen token text authenticates; one too short, with a space, or beginning with kw_ without a generated token's form is refused, saying which rule it broke")
    func chosenTokenText() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let chosen = "dev-root-token-for-scripts-0123456789abcdef"
        _ = try await service.issueToken(principal: "dev", policy: .everything, lifetime: nil, text: chosen, actor: .owner("admin"))
        #expect(try await service.authenticate(chosen).principal == "dev")
        // A token Keyward generated, given again as the text (a dev root token kept across
        // stores), keeps its form and id.
        let generated = try await service.issueToken(principal: "first", policy: .everything, lifetime: nil, actor: .owner("admin"))
        try await service.revokeToken(generated.record.id, actor: .owner("admin"))
        let other = try await StoreFixture.make()
        defer { other.remove() }
        let reissued = try await other.service.issueToken(principal: "again", policy: .everything, lifetime: nil, text: generated.text, actor: .owner("admin"))
        #expect(reissued.record.id == generated.record.id)
        #expect(try await other.service.authenticate(generated.text).principal == "again")
        for (bad, rule) in [("short-token", "32 to 256"), ("a token with spaces in it, long enough to pass", "32 to 256"),
                            ("kw_devroottoken_0123456789abcdefghijklmnopqrs", "begins with kw_")] {
            guard case .invalidArgument(let message) = await keywardError({ () async throws(KeywardError) in
                _ = try await service.issueToken(principal: "dev", policy: .everything, lifetime: nil, text: bad, actor: .owner("admin"))
            }) else {
                Issue.record("'\(bad)' was issued"); continue
            }
            #expect(message.contains(rule), "\(bad): \(message)")
        }
    }

    @Test("a token row edited in the database (widened policy) is refused")
    func tamperedToken() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let narrow = AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .alias("app/*"))])
        let issued = try await fixture.service.issueToken(principal: "app", policy: narrow, lifetime: nil, actor: .owner("admin"))
        try fixture.tamper("UPDATE tokens SET body = replace(body, '\"app\\/*\"', '\"*\"')")
        try fixture.tamper("UPDATE tokens SET body = replace(body, 'app/*', 'x')")
        let service = try await fixture.reopen()
        guard case .integrityFailure = await keywardError({ () async throws(KeywardError) in _ = try await service.authenticate(issued.text) }) else {
            Issue.record("an edited token row was trusted"); return
        }
    }

    @Test("policies grant only what a rule covers: operation x key id, alias pattern or tag; default deny")
    func policyMatrix() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/payments"], tags: ["team": "pay"]), actor: .owner("t"))
        let id = key.metadata.id
        #expect(!AccessPolicy(rules: []).allows(.encrypt, on: key))
        #expect(AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]).allows(.encrypt, on: key))
        #expect(!AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]).allows(.decrypt, on: key))
        #expect(AccessPolicy(rules: [AccessRule(operations: [.decrypt], keys: .key(id))]).allows(.decrypt, on: key))
        #expect(!AccessPolicy(rules: [AccessRule(operations: [.decrypt], keys: .key(KeyID()))]).allows(.decrypt, on: key))
        #expect(AccessPolicy(rules: [AccessRule(operations: [.sign], keys: .alias("app/*"))]).allows(.sign, on: key))
        #expect(!AccessPolicy(rules: [AccessRule(operations: [.sign], keys: .alias("ops/*"))]).allows(.sign, on: key))
        #expect(AccessPolicy(rules: [AccessRule(operations: [.mac], keys: .alias("app/payments"))]).allows(.mac, on: key))
        #expect(!AccessPolicy(rules: [AccessRule(operations: [.mac], keys: .alias("app/pay"))]).allows(.mac, on: key))
        #expect(AccessPolicy(rules: [AccessRule(operations: [.rotate], keys: .tag(name: "team", value: "pay"))]).allows(.rotate, on: key))
        #expect(!AccessPolicy(rules: [AccessRule(operations: [.rotate], keys: .tag(name: "team", value: "ops"))]).allows(.rotate, on: key))
        #expect(AccessPolicy.everything.allows(.export, on: key))
        // The CLI form.
        let parsed = try AccessPolicy.parseRule("encrypt,decrypt:alias=app/*")
        #expect(parsed == AccessRule(operations: [.encrypt, .decrypt], keys: .alias("app/*")))
        #expect(try AccessPolicy.parseRule("*:tag=team=pay").keys == .tag(name: "team", value: "pay"))
        for bad in ["encrypt", "fly:*", "encrypt:nothing", "encrypt:key=not-a-uuid", ":*", ",:*", "encrypt:tag==pay"] {
            #expect(throws: KeywardError.self) { try AccessPolicy.parseRule(bad) }
        }
        // A pattern that reads as a grant but could match no alias is refused, saying why; a
        // prefix, an exact alias and `*` alone are taken.
        for pattern in ["app/**", "app/*/orders", "*app", "**", "a b", ""] {
            #expect(throws: KeywardError.self, "alias=\(pattern)") { try AccessPolicy.parseRule("encrypt:alias=\(pattern)") }
        }
        for pattern in ["app/*", "app/payments", "*", "app/"] {
            #expect(try AccessPolicy.parseRule("encrypt:alias=\(pattern)").keys == .alias(pattern))
        }
    }
}

@Suite("AWS access keys and Keyward's own keys")
struct AWSCredentialTests {
    @Test("an AWS access key authenticates with its derived secret until revoked; the secret is stored nowhere; unknown, altered and bearer-token ids are refused")
    func accessKeyLifecycle() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let policy = AccessPolicy(rules: [AccessRule(operations: [.encrypt, .decrypt], keys: .any)])
        let issued = try await service.issueAWSCredential(principal: "legacy-app", policy: policy, lifetime: nil, actor: .owner("admin"))
        #expect(issued.accessKeyID.hasPrefix("KW") && issued.accessKeyID.count == 28)
        #expect(issued.secretAccessKey.count == 40)
        let checked = try await service.authenticateAWS(issued.accessKeyID)
        #expect(checked.record.principal == "legacy-app" && checked.record.policy == policy)
        let same = checked.secret.constantTimeEquals(Array(issued.secretAccessKey.utf8))
        #expect(same, "the recomputed secret differs from the one issued")
        // Stored nowhere: no row of any table holds the secret's text.
        for table in ["tokens", "keys", "key_versions", "audit"] {
            let rows = try fixture.fetch("SELECT * FROM \(table)")
            for row in rows {
                for column in row.columnNames {
                    let text: String
                    switch (row[column] as DatabaseValue).storage {
                    case .blob(let data): text = String(decoding: data, as: UTF8.self)
                    case .string(let string): text = string
                    default: text = ""
                    }
                    #expect(!text.contains(issued.secretAccessKey), "\(table).\(column) holds the secret")
                }
            }
        }
        var altered = Array(issued.accessKeyID)
        altered[10] = altered[10] == "A" ? "B" : "A"
        let bearer = try await service.issueToken(principal: "t", policy: policy, lifetime: nil, actor: .owner("admin"))
        for bad in ["", "AKIAIOSFODNN7EXAMPLE", String(altered), "KW" + bearer.record.id.description, AWSProbe.accessKeyID(of: bearer.record)] {
            await #expect(throws: KeywardError.self, "\(bad)") { _ = try await service.authenticateAWS(bad) }
        }
        try await service.revokeToken(issued.record.id, actor: .owner("admin"))
        await #expect(throws: KeywardError.self) { _ = try await service.authenticateAWS(issued.accessKeyID) }
    }

    @Test("attack: a policy granting everything cannot use, move, rotate or destroy Keyward's own keys (the AWS credential key, the backup signer), nor plant a key under their names")
    func reservedKeysRefusePolicies() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let owner = Caller.owner("admin")
        let issued = try await service.issueAWSCredential(principal: "app", policy: .everything, lifetime: nil, actor: owner)
        _ = try await service.backupSigner(actor: owner)
        let attacker = Caller.principal("token:x:root", policy: .everything)
        let credentialKey = try await service.describe(key: "keyward/aws-credentials", actor: attacker).metadata.id.description
        let signer = try await service.describe(key: "keyward/backup-signer", actor: attacker).metadata.id.description
        // Computing any AWS secret access key with the credential key:
        await #expect(throws: KeywardError.self) {
            _ = try await service.mac(Array("keyward aws secret v1".utf8) + issued.record.id.bytes, key: credentialKey, actor: attacker)
        }
        // Signing a forged backup bundle with the store's backup signer:
        await #expect(throws: KeywardError.self) { _ = try await service.sign(.message([1, 2, 3]), key: signer, actor: attacker) }
        for key in [credentialKey, signer] {
            await #expect(throws: KeywardError.self) { _ = try await service.rotate(key: key, actor: attacker) }
            await #expect(throws: KeywardError.self) { _ = try await service.transition(key: key, .disable, actor: attacker) }
            await #expect(throws: KeywardError.self) { _ = try await service.transition(key: key, .scheduleDestruction, waitingDays: 7, actor: attacker) }
        }
        await #expect(throws: KeywardError.self) { try await service.deleteAlias("keyward/aws-credentials", actor: attacker) }
        let own = try await service.createKey(CreateKeyRequest(spec: .hmacSHA256), actor: attacker).metadata.id.description
        await #expect(throws: KeywardError.self) { try await service.setAlias("keyward/aws-credentials", key: own, actor: attacker) }
        await #expect(throws: KeywardError.self) { try await service.setAlias("keyward/other", key: own, actor: attacker) }
        await #expect(throws: KeywardError.self) { _ = try await service.createKey(CreateKeyRequest(aliases: ["keyward/planted"]), actor: attacker) }
        // Nothing moved: the credential still authenticates with the same secret.
        let unchanged = try await service.authenticateAWS(issued.accessKeyID).secret.constantTimeEquals(Array(issued.secretAccessKey.utf8))
        #expect(unchanged)
        #expect(try await service.resolve("keyward/aws-credentials").description == credentialKey)
    }
}

/// What an attacker would send as the access key id of a bearer token's record.
enum AWSProbe {
    static func accessKeyID(of record: TokenRecord) -> String {
        var forged = record
        forged.awsSecretVersion = 1
        return forged.awsAccessKeyID ?? ""
    }
}

@Suite("RSA-OAEP encryption through the key service")
struct AsymmetricEncryptionTests {
    @Test("an RSA-OAEP key encrypts and decrypts bare OAEP ciphertexts, also after rotation; a symmetric key, a tampered ciphertext and a policy without decrypt are refused")
    func rsaOAEP() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let owner = Caller.owner("t")
        let key = try await service.createKey(CreateKeyRequest(spec: .rsa2048OAEPSHA256), actor: owner).metadata.id.description
        let sealed = try await service.encryptAsymmetric(Array("short secret".utf8), key: key, actor: owner)
        #expect(sealed.ciphertext.count == 256)
        #expect(try await service.decryptAsymmetric(sealed.ciphertext, key: key, actor: owner).plaintext == Array("short secret".utf8))
        _ = try await service.rotate(key: key, actor: owner)
        #expect(try await service.decryptAsymmetric(sealed.ciphertext, key: key, actor: owner).version == 1, "an older version's ciphertext")
        var tampered = sealed.ciphertext
        tampered[100] ^= 1
        await #expect(throws: KeywardError.self) { _ = try await service.decryptAsymmetric(tampered, key: key, actor: owner) }
        let symmetric = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        await #expect(throws: KeywardError.self) { _ = try await service.encryptAsymmetric([1], key: symmetric, actor: owner) }
        let encryptOnly = Caller.principal("token:x:app", policy: AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]))
        _ = try await service.encryptAsymmetric([1], key: key, actor: encryptOnly)
        await #expect(throws: KeywardError.self) { _ = try await service.decryptAsymmetric(sealed.ciphertext, key: key, actor: encryptOnly) }
    }
}
