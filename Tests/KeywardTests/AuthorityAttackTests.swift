import Foundation
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Attacks by a caller holding a valid but limited policy: each is performed and shown refused.
@Suite("Authority attacks")
struct AuthorityAttackTests {
    private func principal(_ name: String, _ rules: String...) throws -> Caller {
        .principal(name, policy: AccessPolicy(rules: try rules.map { rule throws(KeywardError) in try AccessPolicy.parseRule(rule) }))
    }

    private func isDenied(_ error: KeywardError?) -> Bool {
        if case .accessDenied = error { return true }
        return false
    }

    @Test("attack: a caller cannot plant its key inside another principal's alias scope, nor move another scope's alias onto its key")
    func aliasPlanting() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let mine = try await service.createKey(CreateKeyRequest(aliases: ["team-a/app"]), actor: .owner("t")).metadata.id.description
        let theirs = try await service.createKey(CreateKeyRequest(aliases: ["billing/invoices"]), actor: .owner("t")).metadata.id.description
        let attacker = try principal("team-a", "update,describe,encrypt:alias=team-a/*")
        let billing = try principal("billing", "encrypt,describe:alias=billing/*")

        // Planting: the attacker names its own key billing/evil, so billing's clients would use it.
        let planted = await keywardError { () async throws(KeywardError) in try await service.setAlias("billing/evil", key: mine, actor: attacker) }
        #expect(isDenied(planted), "\(String(describing: planted))")
        // Hijacking: moving billing's alias onto the attacker's key.
        let hijacked = await keywardError { () async throws(KeywardError) in try await service.setAlias("billing/invoices", key: mine, actor: attacker) }
        #expect(isDenied(hijacked), "\(String(describing: hijacked))")
        #expect(try await service.describe(key: "billing/invoices", actor: billing).metadata.id.description == theirs)
        let planting = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: "billing/evil", actor: .owner("t")) }
        #expect(planting != nil, "the planted alias exists")

        // A grant by key id or tag does not reach into alias scopes either, at creation or later.
        let byTag = try principal("tagged", "create,update,describe:tag=team=a")
        let created = await keywardError { () async throws(KeywardError) in
            _ = try await service.createKey(CreateKeyRequest(aliases: ["billing/tagged"], tags: ["team": "a"]), actor: byTag)
        }
        #expect(isDenied(created), "\(String(describing: created))")
        let tagged = try await service.createKey(CreateKeyRequest(tags: ["team": "a"]), actor: byTag).metadata.id.description
        let named = await keywardError { () async throws(KeywardError) in try await service.setAlias("billing/tagged", key: tagged, actor: byTag) }
        #expect(isDenied(named), "\(String(describing: named))")

        // Within its own scope the attacker may still name its key.
        try await service.setAlias("team-a/second", key: mine, actor: attacker)
        #expect(try await service.describe(key: "team-a/second", actor: attacker).metadata.id.description == mine)
    }

    @Test("attack: a caller allowed to name keys cannot pile aliases onto one (at most 50, AWS's quota), at creation or one by one; a move within the limit still works")
    func aliasesPerKeyBounded() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let namer = try principal("team-a", "create,update,describe:alias=team-a/*")
        let limit = KeyService.maximumAliasesPerKey
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createKey(CreateKeyRequest(aliases: (0...limit).map { "team-a/k\($0)" }), actor: namer)
        }) else { Issue.record("a key was created with \(limit + 1) aliases"); return }
        let key = try await service.createKey(CreateKeyRequest(aliases: (0..<limit - 1).map { "team-a/k\($0)" }), actor: namer).metadata.id.description
        try await service.setAlias("team-a/last", key: key, actor: namer)
        guard case .limitExceeded(let message) = await keywardError({ () async throws(KeywardError) in
            try await service.setAlias("team-a/one-more", key: key, actor: namer)
        }) else { Issue.record("a key took alias \(limit + 1)"); return }
        #expect(message.contains("delete one first"))
        // Pointing an alias the key already has at it again is no new alias; another key takes one.
        try await service.setAlias("team-a/last", key: key, actor: namer)
        let other = try await service.createKey(CreateKeyRequest(aliases: ["team-a/other"]), actor: namer).metadata.id.description
        try await service.setAlias("team-a/last", key: other, actor: namer)
        try await service.setAlias("team-a/one-more", key: key, actor: namer)
        #expect(try await service.describe(key: key, actor: namer).aliases.count == limit)
    }

    @Test("attack: an alias with dot or empty segments (team-a/../billing/x), which a rule on team-a/* would cover while a URL resolves it into billing's scope, is refused at creation and on a move")
    func dotSegmentAliases() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let attacker = try principal("team-a", "create,update,describe:alias=team-a/*")
        let mine = try await service.createKey(CreateKeyRequest(aliases: ["team-a/app"]), actor: attacker).metadata.id.description
        for name in ["team-a/../billing/invoices", "team-a/./app2", "team-a//app3", "team-a/app4/", "team-a/.."] {
            let created = await keywardError { () async throws(KeywardError) in
                _ = try await service.createKey(CreateKeyRequest(aliases: [name]), actor: attacker)
            }
            #expect(created?.description.contains("segment") == true, "\(name): \(String(describing: created))")
            let moved = await keywardError { () async throws(KeywardError) in try await service.setAlias(name, key: mine, actor: attacker) }
            #expect(moved?.description.contains("segment") == true, "\(name): \(String(describing: moved))")
        }
        // Dots inside a segment are names like any other.
        try await service.setAlias("team-a/app.v2", key: mine, actor: attacker)
        #expect(try await service.describe(key: "team-a/app.v2", actor: attacker).metadata.id.description == mine)
    }

    @Test("attack: retagging cannot move a key into another tag scope or grant the caller operations it lacked")
    func retagging() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let key = try await service.createKey(CreateKeyRequest(tags: ["team": "a"]), actor: .owner("t")).metadata.id.description
        // May update team=a keys and sign with team=b keys; not encrypt with its own.
        let attacker = try principal("a-admin", "update,describe:tag=team=a", "encrypt:tag=team=b")
        let retagged = await keywardError { () async throws(KeywardError) in _ = try await service.update(key: key, tags: ["team": "b"], actor: attacker) }
        #expect(isDenied(retagged), "\(String(describing: retagged))")
        let gained = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: key, actor: attacker) }
        #expect(isDenied(gained))
        #expect(try await service.describe(key: key, actor: .owner("t")).metadata.tags == ["team": "a"])
        // A tag change that keeps the key in scope is allowed.
        #expect(try await service.update(key: key, tags: ["team": "a", "env": "prod"], actor: attacker).metadata.tags["env"] == "prod")
    }

    @Test("attack: re-encrypt needs the re-encrypt permission on both keys; decrypt and encrypt are not enough")
    func reEncryptPermission() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let source = try await service.createKey(CreateKeyRequest(aliases: ["src/k"]), actor: .owner("t")).metadata.id.description
        let destination = try await service.createKey(CreateKeyRequest(aliases: ["dst/k"]), actor: .owner("t")).metadata.id.description
        let ciphertext = try await service.encrypt([7, 7], key: source, actor: .owner("t")).ciphertext

        let decryptEncrypt = try principal("de", "decrypt:alias=src/*", "encrypt:alias=dst/*")
        let sourceOnly = try principal("src", "re-encrypt:alias=src/*")
        let destinationOnly = try principal("dst", "re-encrypt:alias=dst/*")
        let both = try principal("both", "re-encrypt:alias=src/*", "re-encrypt:alias=dst/*")
        for caller in [decryptEncrypt, sourceOnly, destinationOnly] {
            let error = await keywardError { () async throws(KeywardError) in
                _ = try await service.reEncrypt(ciphertext, destinationKey: destination, actor: caller)
            }
            #expect(isDenied(error), "\(caller.principal): \(String(describing: error))")
        }
        let moved = try await service.reEncrypt(ciphertext, destinationKey: destination, actor: both)
        #expect(moved.keyID.description == destination)
        #expect(try await service.decrypt(moved.ciphertext, actor: .owner("t")).plaintext == [7, 7])

        // Re-encryption is how data leaves a deactivated key; a deactivated destination refuses.
        _ = try await service.transition(key: source, .deactivate, actor: .owner("t"))
        #expect(try await service.reEncrypt(ciphertext, destinationKey: destination, actor: both).keyID.description == destination)
        let intoDeactivated = await keywardError { () async throws(KeywardError) in
            _ = try await service.reEncrypt(moved.ciphertext, destinationKey: source, actor: .owner("t"))
        }
        guard case .wrongState = intoDeactivated else { Issue.record("expected wrongState, got \(String(describing: intoDeactivated))"); return }
    }

    @Test("attack: when the audit log fails, a refusal is an audit failure (503), never an unaudited denial")
    func deniedButUnaudited() async throws {
        let fixture = try await FailingStoreFixture.make()
        defer { fixture.remove() }
        let store = fixture.store, service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(aliases: ["other/k"]), actor: .owner("t")).metadata.id.description
        let ciphertext = try await service.encrypt([1], key: id, actor: .owner("t")).ciphertext
        let stranger = try principal("stranger", "encrypt,decrypt:alias=mine/*")
        store.failing = true
        let refusals: [(String, () async throws(KeywardError) -> Void)] = [
            ("encrypt", { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: stranger) }),
            ("decrypt", { () async throws(KeywardError) in _ = try await service.decrypt(ciphertext, actor: stranger) }),
            ("garbage ciphertext", { () async throws(KeywardError) in _ = try await service.decrypt([1, 2, 3], actor: .owner("t")) }),
            ("wrong expected key", { () async throws(KeywardError) in _ = try await service.decrypt(ciphertext, expectedKey: UUID().uuidString.lowercased(), actor: .owner("t")) }),
            ("re-encrypt", { () async throws(KeywardError) in _ = try await service.reEncrypt(ciphertext, destinationKey: id, actor: stranger) }),
        ]
        for (name, call) in refusals {
            let error = await keywardError(call)
            guard case .auditUnavailable = error else { Issue.record("\(name): expected auditUnavailable, got \(String(describing: error))"); continue }
        }
        store.failing = false
        #expect(try await service.verifyAudit().isIntact)
    }

    @Test("attack: a limited caller pages through only the keys it may see, and no cursor names another key")
    func listingFiltersBeforePaging() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        var visible: Set<String> = []
        for index in 0..<24 {
            let alias = index % 8 == 3 ? "mine/\(index)" : "theirs/\(index)"
            let id = try await service.createKey(CreateKeyRequest(aliases: [alias]), actor: .owner("t")).metadata.id.description
            if alias.hasPrefix("mine/") { visible.insert(id) }
        }
        #expect(visible.count == 3)
        let caller = try principal("mine", "describe:alias=mine/*")
        var seen: [String] = []
        var cursor: KeyID? = nil
        var pages = 0
        repeat {
            let page = try await service.listKeys(after: cursor, limit: 2, actor: caller)
            pages += 1
            seen += page.keys.map(\.metadata.id.description)
            if let next = page.nextCursor { #expect(visible.contains(next.description), "the cursor names a key the caller cannot see") }
            // Every page but the last is full: the caller cannot count hidden keys by short pages.
            if page.nextCursor != nil { #expect(page.keys.count == 2) }
            cursor = page.nextCursor
        } while cursor != nil && pages < 20
        #expect(Set(seen) == visible && seen.count == 3 && pages == 2)
    }

    @Test("attack: a limited caller cannot tell a key that does not exist from one it may not use")
    func unknownLooksLikeForbidden() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let other = try await service.createKey(CreateKeyRequest(aliases: ["other/k"]), actor: .owner("t")).metadata.id.description
        let caller = try principal("mine", "encrypt,decrypt,describe,update:alias=mine/*")
        let references = [other, "other/k", UUID().uuidString.lowercased(), "nobody/here"]
        for reference in references {
            let encrypted = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: reference, actor: caller) }
            #expect(isDenied(encrypted), "encrypt \(reference): \(String(describing: encrypted))")
            let described = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: reference, actor: caller) }
            #expect(isDenied(described), "describe \(reference): \(String(describing: described))")
            let disabled = await keywardError { () async throws(KeywardError) in _ = try await service.transition(key: reference, .disable, actor: caller) }
            #expect(isDenied(disabled), "disable \(reference): \(String(describing: disabled))")
        }
        // A ciphertext naming a key this store lacks reads as forbidden too.
        let elsewhere = try await StoreFixture.make()
        defer { elsewhere.remove() }
        let foreignKey = try await elsewhere.service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let foreign = try await elsewhere.service.encrypt([1], key: foreignKey, actor: .owner("t")).ciphertext
        let decrypted = await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(foreign, actor: caller) }
        #expect(isDenied(decrypted), "\(String(describing: decrypted))")
        // The owner, and a policy that covers every key, still learn that a key is missing.
        let missing = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: "nobody/here", actor: .owner("t")) }
        guard case .keyNotFound = missing else { Issue.record("owner: \(String(describing: missing))"); return }
        let everywhere = try principal("all", "describe:*")
        let missingForAll = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: "nobody/here", actor: everywhere) }
        guard case .keyNotFound = missingForAll else { Issue.record("describe:*: \(String(describing: missingForAll))"); return }
    }

    @Test("attack: a refusal names the key as the caller did, so it never reveals which key an alias stands for, nor tells an alias that exists from one that does not")
    func refusalsDoNotResolveAliases() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let hidden = try await service.createKey(CreateKeyRequest(aliases: ["other/k"]), actor: .owner("t")).metadata.id.description
        let mine = try await service.createKey(CreateKeyRequest(aliases: ["mine/k"]), actor: .owner("t")).metadata.id.description
        let caller = try principal("mine", "encrypt,decrypt,describe,update,destroy:alias=mine/*")
        let ownCiphertext = try await service.encrypt([1], key: "mine/k", actor: caller).ciphertext
        // Each attempt, made with an alias that names another principal's key and with one that
        // names nothing: the two refusals must be the same, word for word, and never name the id.
        let attempts: [(String, @Sendable (String) async throws(KeywardError) -> Void)] = [
            ("encrypt", { reference throws(KeywardError) in _ = try await service.encrypt([1], key: reference, actor: caller) }),
            ("describe", { reference throws(KeywardError) in _ = try await service.describe(key: reference, actor: caller) }),
            ("describe for use", { reference throws(KeywardError) in _ = try await service.describe(key: reference, forUseIn: .encrypt, actor: caller) }),
            ("disable", { reference throws(KeywardError) in _ = try await service.transition(key: reference, .disable, actor: caller) }),
            ("destroy versions", { reference throws(KeywardError) in _ = try await service.destroyVersions(key: reference, below: 1, actor: caller) }),
            ("point an alias", { reference throws(KeywardError) in try await service.setAlias("mine/new", key: reference, actor: caller) }),
            ("delete the alias", { reference throws(KeywardError) in try await service.deleteAlias(reference, actor: caller) }),
            ("move the alias onto my key", { reference throws(KeywardError) in try await service.setAlias(reference, key: "mine/k", actor: caller) }),
            ("create it for my key", { reference throws(KeywardError) in try await service.setAlias(reference, key: "mine/k", as: .create, actor: caller) }),
            ("move it to my key", { reference throws(KeywardError) in try await service.setAlias(reference, key: "mine/k", as: .move, actor: caller) }),
            ("decrypt expecting it", { reference throws(KeywardError) in _ = try await service.decrypt(ownCiphertext, expectedKey: reference, actor: caller) }),
            ("re-encrypt expecting it as the source", { reference throws(KeywardError) in
                _ = try await service.reEncrypt(ownCiphertext, expectedSourceKey: reference, destinationKey: "mine/k", actor: caller)
            }),
        ]
        for (name, attempt) in attempts {
            let existing = await keywardError { () async throws(KeywardError) in try await attempt("other/k") }
            let absent = await keywardError { () async throws(KeywardError) in try await attempt("other/none") }
            let shownExisting = existing.map { "\($0)".replacingOccurrences(of: "other/k", with: "other/X") }
            let shownAbsent = absent.map { "\($0)".replacingOccurrences(of: "other/none", with: "other/X") }
            #expect(existing != nil && shownExisting == shownAbsent, "\(name): \(String(describing: existing)) against \(String(describing: absent))")
            #expect(!"\(String(describing: existing))".contains(hidden), "\(name) named the key an alias stands for: \(String(describing: existing))")
        }
        // The caller's own key, and an owner, still get the id.
        _ = try await service.describe(key: "mine/k", actor: caller)
        let ownerRefusal = await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(ownCiphertext, expectedKey: "other/k", actor: .owner("t")) }
        #expect(ownerRefusal == .ciphertextKeyMismatch(ciphertextKey: KeyID(parsing: mine)!, named: "other/k"), "\(String(describing: ownerRefusal))")
        // A caller that may name the alias learns whether it exists, as create and move need.
        let taken = await keywardError { () async throws(KeywardError) in try await service.setAlias("other/k", key: mine, as: .create, actor: .owner("t")) }
        #expect(taken == .aliasTaken("other/k"), "\(String(describing: taken))")
        let missing = await keywardError { () async throws(KeywardError) in try await service.setAlias("other/none", key: mine, as: .move, actor: .owner("t")) }
        #expect(missing == .keyNotFound("other/none"), "\(String(describing: missing))")
        #expect(try await service.describe(key: "other/k", actor: .owner("t")).metadata.id.description == hidden)
    }

    @Test("attack: text one caller writes for others to read (description, tags, principals, grantees) cannot carry control characters such as a terminal escape sequence")
    func controlCharactersRefused() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let caller = try principal("mine", "create,describe,update,manage-grants:alias=mine/*")
        let key = try await service.createKey(CreateKeyRequest(aliases: ["mine/k"]), actor: caller).metadata.id.description
        let escape = "\u{1B}]52;c;cHduZWQ=\u{07}", carriageReturn = "ok\rforged", c1 = "x\u{9B}2J"
        for evil in [escape, carriageReturn, c1] {
            let attempts: [(String, () async throws(KeywardError) -> Void)] = [
                ("create with a description", { () async throws(KeywardError) in _ = try await service.createKey(CreateKeyRequest(aliases: ["mine/n"], description: evil), actor: caller) }),
                ("create with a tag", { () async throws(KeywardError) in _ = try await service.createKey(CreateKeyRequest(aliases: ["mine/n"], tags: ["t": evil]), actor: caller) }),
                ("create with a tag name", { () async throws(KeywardError) in _ = try await service.createKey(CreateKeyRequest(aliases: ["mine/n"], tags: [evil: "v"]), actor: caller) }),
                ("update the description", { () async throws(KeywardError) in _ = try await service.update(key: key, description: evil, actor: caller) }),
                ("update the tags", { () async throws(KeywardError) in _ = try await service.update(key: key, tags: ["t": evil], actor: caller) }),
                ("grant to", { () async throws(KeywardError) in _ = try await service.createGrant(key: key, grantee: evil, operations: [.encrypt], actor: caller) }),
                ("issue a token for", { () async throws(KeywardError) in _ = try await service.issueToken(principal: evil, policy: AccessPolicy(rules: []), lifetime: nil, actor: .owner("t")) }),
            ]
            for (name, attempt) in attempts {
                let error = await keywardError(attempt)
                guard case .invalidArgument(let message) = error, message.contains("control character U+") else {
                    Issue.record("\(name) with \(evil.unicodeScalars.map(\.value)): \(String(describing: error))")
                    continue
                }
            }
        }
        #expect(try await service.describe(key: key, actor: caller).metadata.description.isEmpty)
        // A description may still span lines.
        _ = try await service.update(key: key, description: "line one\n\tline two", actor: caller)
    }

    @Test("attack: one forged alias row breaks neither listing nor describing, and verify names it")
    func forgedAliasIsContained() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(aliases: ["real/one", "forged/one"]), actor: .owner("t")).metadata.id.description
        _ = try await service.createKey(CreateKeyRequest(aliases: ["bystander/k"]), actor: .owner("t"))
        try fixture.tamper("UPDATE aliases SET mac = zeroblob(32) WHERE name = 'forged/one'")
        let reopened = try await fixture.reopen()
        let page = try await reopened.listKeys(actor: .owner("t"))
        #expect(page.keys.count == 2)
        let described = try await reopened.describe(key: id, actor: .owner("t"))
        #expect(described.aliases == ["real/one"])
        #expect(try await reopened.describe(key: "bystander/k", actor: .owner("t")).aliases == ["bystander/k"])
        let report = try await reopened.verifyStore()
        #expect(!report.isIntact && report.problems.contains { $0.contains("forged/one") }, "\(report.problems)")
    }
}
