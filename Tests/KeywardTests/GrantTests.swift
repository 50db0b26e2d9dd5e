import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import KeywardTestSupport
import Testing

@Suite("Grants")
struct GrantTests {
    static let owner = Caller.owner("t")

    /// A caller as a front end makes it for a token of `name` with these rules.
    static func caller(_ name: String, _ rules: String...) throws -> Caller {
        .principal("token:\(KeyID()):\(name)", policy: AccessPolicy(rules: try rules.map { try AccessPolicy.parseRule($0) }))
    }

    @Test("a grant lets its grantee, and no one else, use the key for exactly its operations, until it is revoked")
    func grantAddsToThePolicy() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: Self.owner).metadata.id.description
        let admin = try Self.caller("admin", "manage-grants,encrypt,decrypt,describe:alias=app/*")
        let bob = try Self.caller("bob"), eve = try Self.caller("eve")
        let sealed = try await service.encrypt([7], key: id, actor: Self.owner).ciphertext
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed, actor: bob) }) else {
            Issue.record("bob decrypted with no grant"); return
        }
        let grant = try await service.createGrant(key: "app/k", grantee: "bob", operations: [.decrypt], actor: admin)
        #expect(try await service.decrypt(sealed, actor: bob).plaintext == [7])
        // Only the operations granted, only for the grantee, only on that key.
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob) }) else {
            Issue.record("a decrypt grant encrypted"); return
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed, actor: eve) }) else {
            Issue.record("eve used bob's grant"); return
        }
        let other = try await service.createKey(CreateKeyRequest(aliases: ["app/other"]), actor: Self.owner).metadata.id.description
        let otherSealed = try await service.encrypt([8], key: other, actor: Self.owner).ciphertext
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(otherSealed, actor: bob) }) else {
            Issue.record("a grant on one key opened another"); return
        }
        // A grant is not a credential: its id does not authenticate.
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.authenticate("kw_" + grant.id.bytes.map { String(format: "%02x", $0) }.joined() + "_AAAA") } != nil)
        #expect(try await service.listTokens(actor: Self.owner).tokens.allSatisfy { $0.id != grant.id })
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in try await service.revokeToken(grant.id, actor: Self.owner) }) else {
            Issue.record("a grant was revoked as a token"); return
        }
        // Revoked: refused at once on this node.
        try await service.revokeGrant(grant.id, key: "app/k", actor: admin)
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed, actor: bob) }) else {
            Issue.record("a revoked grant still decrypted"); return
        }
        let entries = try await service.auditTail(100).map(\.event)
        #expect(entries.contains { $0.operation == "manage-grants" && ($0.detail ?? "").hasPrefix("grant ") && $0.actor == admin.principal })
        #expect(entries.contains { $0.operation == "manage-grants" && ($0.detail ?? "").hasPrefix("revoke grant") })
    }

    @Test("attack: no one grants more than they hold, grantees cannot list or revoke, and a passed-on grant keeps its constraints")
    func noEscalation() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        _ = try await service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: Self.owner)
        let narrow = try Self.caller("narrow", "manage-grants,decrypt:alias=app/*")
        // Holding manage-grants is not holding encrypt.
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createGrant(key: "app/k", grantee: "mallory", operations: [.encrypt], actor: narrow)
        }) else { Issue.record("a grant went beyond its issuer"); return }
        // Keyward's administrative operations are never grantable.
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createGrant(key: "app/k", grantee: "mallory", operations: [.destroy, .export], actor: Self.owner)
        }) else { Issue.record("destroy was granted"); return }
        // No manage-grants at all: refused and audited.
        let stranger = try Self.caller("stranger", "decrypt:alias=app/*")
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createGrant(key: "app/k", grantee: "stranger", operations: [.decrypt], actor: stranger)
        }) else { Issue.record("a caller without manage-grants created a grant"); return }

        // A grant with CreateGrant passes on only what it holds, with its constraints or narrower.
        let carol = try Self.caller("carol")
        _ = try await service.createGrant(key: "app/k", grantee: "carol", operations: [.decrypt, .manageGrants],
                                          constraints: GrantConstraints(contextSubset: ["tenant": "a"]), actor: Self.owner)
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createGrant(key: "app/k", grantee: "dave", operations: [.decrypt], actor: carol)
        }) else { Issue.record("carol passed on her grant without its constraint"); return }
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.createGrant(key: "app/k", grantee: "dave", operations: [.encrypt], constraints: GrantConstraints(contextSubset: ["tenant": "a"]), actor: carol)
        }) else { Issue.record("carol granted encrypt"); return }
        let passed = try await service.createGrant(key: "app/k", grantee: "dave", operations: [.decrypt],
                                                   constraints: GrantConstraints(contextEquals: ["tenant": "a", "doc": "1"]), actor: carol)
        // A grantee cannot list or revoke the key's grants, not even with CreateGrant in its grant.
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.listGrants(key: "app/k", actor: carol) }) else {
            Issue.record("a grantee listed grants"); return
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in try await service.revokeGrant(passed.id, key: "app/k", actor: carol) }) else {
            Issue.record("a grantee revoked a grant"); return
        }
        #expect(try await service.listGrants(key: "app/k", actor: Self.owner).grants.count == 2)
    }

    @Test("a grant of an operation the key's purpose rules out is refused when made, naming the operations, and nothing is granted")
    func grantsFitTheKey() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let aes = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let signer = try await service.createKey(CreateKeyRequest(spec: .ecdsaP256), actor: Self.owner).metadata.id.description
        let mac = try await service.createKey(CreateKeyRequest(spec: .hmacSHA256), actor: Self.owner).metadata.id.description
        for (key, operations, named) in [(aes, [ServiceOperation.sign, .decrypt], "sign"), (aes, [.publicKey], "public-key"),
                                         (signer, [.encrypt, .generateDataKey, .sign], "encrypt, generate-data-key"), (mac, [.verify], "verify"),
                                         (mac, [.publicKey, .mac], "public-key")] {
            let error = await keywardError { () async throws(KeywardError) in
                _ = try await service.createGrant(key: key, grantee: "bob", operations: Set(operations), actor: Self.owner)
            }
            guard case .invalidArgument(let why) = error else { Issue.record("\(operations) on \(key): \(String(describing: error))"); continue }
            #expect(why.contains("which cannot \(named);"), "\(why)")
        }
        #expect(try await service.listGrants(key: aes, actor: Self.owner).grants.isEmpty)
        // What each key does, and describing it and managing its grants, are granted.
        _ = try await service.createGrant(key: aes, grantee: "bob", operations: [.encrypt, .decrypt, .reEncrypt, .generateDataKey, .describe, .manageGrants], actor: Self.owner)
        _ = try await service.createGrant(key: signer, grantee: "bob", operations: [.sign, .verify, .publicKey], actor: Self.owner)
        _ = try await service.createGrant(key: mac, grantee: "bob", operations: [.mac, .verifyMAC], actor: Self.owner)
    }

    @Test("attack: a caller that may manage a key's grants cannot grow them past the per-key limit; revoking one makes room, and other keys are not affected")
    func grantsPerKeyLimited() async throws {
        let fixture = try await StoreFixture.make(options: KeyService.Options(maximumGrantsPerKey: 3))
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        var made: [GrantRecord] = []
        for index in 0..<3 { made.append(try await service.createGrant(key: id, grantee: "g\(index)", operations: [.decrypt], actor: Self.owner)) }
        // Each grant applies at once (the node's grant book takes it in without a reload).
        let sealed = try await service.encrypt([1], key: id, actor: Self.owner).ciphertext
        #expect(try await service.decrypt(sealed, actor: try Self.caller("g2")).plaintext == [1])
        let error = await keywardError { () async throws(KeywardError) in
            _ = try await service.createGrant(key: id, grantee: "g3", operations: [.decrypt], actor: Self.owner)
        }
        guard case .limitExceeded(let why) = error else { Issue.record("expected limitExceeded, got \(String(describing: error))"); return }
        #expect(why.contains("3 live grants"))
        #expect(try await service.listGrants(key: id, actor: Self.owner).grants.count == 3)
        // A repeated named grant is the same grant, not a fourth.
        try await service.revokeGrant(made[0].id, key: id, actor: Self.owner)
        let named = try await service.createGrant(key: id, grantee: "g4", operations: [.decrypt], name: "n", actor: Self.owner)
        #expect(try await service.createGrant(key: id, grantee: "g4", operations: [.decrypt], name: "n", actor: Self.owner).id == named.id)
        let other = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        _ = try await service.createGrant(key: other, grantee: "g0", operations: [.decrypt], actor: Self.owner)
        // A fresh process counts the grants from the store.
        let reopened = try await fixture.reopen(options: KeyService.Options(maximumGrantsPerKey: 3))
        guard case .limitExceeded = await keywardError({ () async throws(KeywardError) in
            _ = try await reopened.createGrant(key: id, grantee: "g5", operations: [.decrypt], actor: Self.owner)
        }) else { Issue.record("the limit did not hold after reopening"); return }
    }

    @Test("encryption-context constraints: subset and equals bind the operations that take a context, and a batch (no single context) is refused")
    func constraints() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let bob = try Self.caller("bob")
        _ = try await service.createGrant(key: id, grantee: "bob", operations: [.encrypt, .decrypt, .describe],
                                          constraints: GrantConstraints(contextSubset: ["tenant": "a"]), actor: Self.owner)
        let good: EncryptionContext = ["tenant": "a", "doc": "9"]
        let sealed = try await service.encrypt([1], key: id, context: good, actor: bob)
        #expect(try await service.decrypt(sealed.ciphertext, context: good, actor: bob).plaintext == [1])
        for context: EncryptionContext in [["tenant": "b", "doc": "9"], ["doc": "9"], .empty] {
            guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, context: context, actor: bob) }) else {
                Issue.record("encrypt under \(context.pairs) passed the constraint"); return
            }
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encryptBatch([EncryptItem([1], context: good)], key: id, actor: bob) }) else {
            Issue.record("a constrained grant served a batch"); return
        }
        // Describe takes no context: the constraint does not apply to it.
        #expect(try await service.describe(key: id, actor: bob).metadata.id.description == id)

        let carol = try Self.caller("carol")
        _ = try await service.createGrant(key: id, grantee: "carol", operations: [.decrypt], constraints: GrantConstraints(contextEquals: ["tenant": "a", "doc": "9"]), actor: Self.owner)
        #expect(try await service.decrypt(sealed.ciphertext, context: good, actor: carol).plaintext == [1])
        let wider = try await service.encrypt([2], key: id, context: ["tenant": "a", "doc": "9", "x": "y"], actor: Self.owner)
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in
            _ = try await service.decrypt(wider.ciphertext, context: ["tenant": "a", "doc": "9", "x": "y"], actor: carol)
        }) else { Issue.record("equals admitted a wider context"); return }
    }

    @Test("retiring: the retiring principal and a grantee allowed to may retire; others may not; a presented grant applies before the book sees it")
    func retireAndPresent() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let bob = try Self.caller("bob"), ops = try Self.caller("ops"), eve = try Self.caller("eve")
        let first = try await service.createGrant(key: id, grantee: "bob", operations: [.encrypt], retiringPrincipal: "ops", actor: Self.owner)
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in try await service.retireGrant(first.id, actor: eve) }) else {
            Issue.record("eve retired bob's grant"); return
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in try await service.retireGrant(first.id, actor: bob) }) else {
            Issue.record("a grantee not allowed to retire retired"); return
        }
        #expect(try await service.listRetirableGrants(retiringPrincipal: "ops", actor: Self.owner).grants.map(\.id) == [first.id])
        try await service.retireGrant(first.id, actor: ops)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob) } != nil)
        let second = try await service.createGrant(key: id, grantee: "bob", operations: [.encrypt], granteeMayRetire: true, actor: Self.owner)
        #expect(GrantRecord.grantID(fromToken: second.token) == second.id)
        _ = try await service.encrypt([1], key: id, actor: bob)
        try await service.retireGrant(second.id, actor: bob)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob) } != nil)
        // A retired grant presented by its token applies no more.
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob.presenting(grants: [second.id])) } != nil)

        // Another process creates a grant: this service's book has not seen it, the grant token
        // makes it apply at once, and another principal presenting it gains nothing.
        let other = try await fixture.reopen()
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob) } != nil)
        let third = try await other.createGrant(key: id, grantee: "bob", operations: [.encrypt], actor: Self.owner)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: bob) } != nil,
                "the book was read again before its time (the test shows what the token adds)")
        _ = try await service.encrypt([3], key: id, actor: bob.presenting(grants: [third.id]))
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([3], key: id, actor: eve.presenting(grants: [third.id])) } != nil)
    }

    /// A service over an `InjectingStore` that counts walks of the tokens table, on a manual clock.
    static func countingService(_ temporary: TemporaryStore) async throws -> (InjectingStore, KeyService, ManualClock) {
        let store = InjectingStore(try SQLiteKeyStore(path: temporary.path("store.db")))
        let clock = ManualClock()
        let service = try await KeyService.initialize(store: store, root: temporary.root(), actor: owner, clock: clock)
        return (store, service, clock)
    }

    @Test("a burst of requests authorised by grants, after this node's grant book was dropped, reads every token once, not once a request")
    func grantBookReadOnceForABurst() async throws {
        let temporary = try TemporaryStore(label: "grant-burst")
        defer { temporary.remove() }
        let (store, service, _) = try await Self.countingService(temporary)
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        _ = try await service.createGrant(key: id, grantee: "bob", operations: [.encrypt], actor: Self.owner)
        let bob = try Self.caller("bob")
        _ = try await service.encrypt([1], key: id, actor: bob)
        // Ending any grant drops the book; the next requests find it empty at once.
        let carol = try await service.createGrant(key: id, grantee: "carol", operations: [.encrypt], actor: Self.owner)
        try await service.revokeGrant(carol.id, key: id, actor: Self.owner)
        store.tokenPageDelay.store(100, ordering: .relaxed)
        let before = store.tokenScans.load(ordering: .relaxed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for round in 0..<16 { group.addTask { _ = try await service.encrypt([UInt8(round)], key: id, actor: bob) } }
            try await group.waitForAll()
        }
        #expect(store.tokenScans.load(ordering: .relaxed) - before == 1, "walks of the tokens table for 16 requests")
    }

    @Test("paging through a key's grants one at a time reads every token once, not once a page; a grant made on another node is listed within a second")
    func grantListingReadsTheBook() async throws {
        let temporary = try TemporaryStore(label: "grant-pages")
        defer { temporary.remove() }
        let (store, service, clock) = try await Self.countingService(temporary)
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        var made: [KeyID] = []
        for index in 0..<40 { made.append(try await service.createGrant(key: id, grantee: "p\(index)", operations: [.encrypt], actor: Self.owner).id) }
        let before = store.tokenScans.load(ordering: .relaxed)
        var listed: [KeyID] = [], cursor: KeyID? = nil
        repeat {
            let page = try await service.listGrants(key: id, after: cursor, limit: 1, actor: Self.owner)
            listed += page.grants.map(\.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(listed == made.sorted { $0.description < $1.description }, "every grant once, in id order")
        #expect(store.tokenScans.load(ordering: .relaxed) - before <= 1, "walks of the tokens table for 40 pages")
        // Retirable grants across keys come from the same book, in id order.
        let retirable = try await service.createGrant(key: id, grantee: "q", operations: [.encrypt], retiringPrincipal: "ops", actor: Self.owner)
        #expect(try await service.listRetirableGrants(retiringPrincipal: "ops", actor: Self.owner).grants.map(\.id) == [retirable.id])

        // Another node (a second service on the store) grants; this one lists it once its book
        // is older than the listing's freshness bound.
        let keyFile = temporary.keyFile
        let other = try await KeyService.open(store: try SQLiteKeyStore(path: temporary.path("store.db")),
                                              root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) }, clock: clock)
        let remote = try await other.createGrant(key: id, grantee: "r", operations: [.encrypt], actor: Self.owner)
        clock.advance(by: KeyService.grantListingFreshness + 0.1)
        #expect(try await service.listGrants(key: id, grantee: "r", actor: Self.owner).grants.map(\.id) == [remote.id])
        // A named grant made again with the same terms is the same grant, here too.
        let named = try await other.createGrant(key: id, grantee: "s", operations: [.encrypt], name: "once", actor: Self.owner)
        clock.advance(by: KeyService.grantListingFreshness + 0.1)
        #expect(try await service.createGrant(key: id, grantee: "s", operations: [.encrypt], name: "once", actor: Self.owner).id == named.id)
    }

    @Test("attack: listing retirable grants needs manage-grants on every key: the retiring principal, a grantee and an admin of some keys are refused, and audited")
    func listRetirableGrantsRefused() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: Self.owner).metadata.id.description
        let grant = try await service.createGrant(key: id, grantee: "bob", operations: [.encrypt], retiringPrincipal: "ops", actor: Self.owner)
        let refused = [try Self.caller("ops"), try Self.caller("bob"), try Self.caller("admin", "manage-grants,describe:alias=app/*")]
        for caller in refused {
            guard case .accessDenied = await keywardError({ () async throws(KeywardError) in
                _ = try await service.listRetirableGrants(retiringPrincipal: "ops", actor: caller)
            }) else { Issue.record("\(caller.principal) listed the grants ops may retire"); return }
        }
        let everywhere = try Self.caller("auditor", "manage-grants:*")
        #expect(try await service.listRetirableGrants(retiringPrincipal: "ops", actor: everywhere).grants.map(\.id) == [grant.id])
        let denied = try await service.auditTail(50).map(\.event).filter { $0.operation == "manage-grants" && $0.outcome == "denied" }
        #expect(Set(denied.map(\.actor)) == Set(refused.map(\.principal)), "\(denied.map(\.actor))")
    }

    @Test("attack: a token manager cannot mint a credential under a grantee's name, or a name a key policy allows, to inherit access it does not hold")
    func namedAccessIsNotInherited() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        _ = try await service.createGrant(key: id, grantee: "bob", operations: [.decrypt], actor: Self.owner)
        let policy = KeyPolicy(statements: [KeyPolicy.Statement(effect: .allow, principals: ["carol"], operations: [.encrypt])],
                               principalPolicyOperations: KeyPolicy.keyOperations, document: "{}")
        _ = try await service.setKeyPolicy(policy, key: id, actor: Self.owner)
        let manager = try Self.caller("manager", "manage-tokens:*")
        let nothing = AccessPolicy(rules: [])
        for name in ["bob", "carol"] {
            guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
                _ = try await service.issueToken(principal: name, policy: nothing, lifetime: nil, actor: manager)
            }) else { Issue.record("a token manager minted a token named \(name)"); return }
        }
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.issueAWSCredential(principal: "bob", policy: nothing, lifetime: nil, actor: manager)
        }) else { Issue.record("a token manager minted an access key named bob"); return }
        // A name nothing is attached to is free; an issuer that holds what a name gives may use it.
        _ = try await service.issueToken(principal: "dave", policy: nothing, lifetime: nil, actor: manager)
        let holder = try Self.caller("holder", "manage-tokens,decrypt,encrypt:*")
        _ = try await service.issueToken(principal: "bob", policy: nothing, lifetime: nil, actor: holder)
        _ = try await service.issueToken(principal: "carol", policy: nothing, lifetime: nil, actor: holder)
    }

    @Test("attack: a grant row edited in the store file to widen it is refused, and keyward verify names it")
    func tamperedGrantRow() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let grant = try await service.createGrant(key: id, grantee: "bob", operations: [.decrypt], actor: Self.owner)
        let body = try #require(try fixture.fetch("SELECT body FROM tokens WHERE id = ?", [Data(grant.id.bytes)]).first?["body"] as Data?)
        let widened = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\"decrypt\"", with: "\"decrypt\",\"encrypt\"")
        try fixture.tamper("UPDATE tokens SET body = ? WHERE id = ?", [Data(widened.utf8), Data(grant.id.bytes)])
        let reopened = try await fixture.reopen()
        let bob = try Self.caller("bob")
        guard case .integrityFailure = await keywardError({ () async throws(KeywardError) in _ = try await reopened.encrypt([1], key: id, actor: bob) }) else {
            Issue.record("an edited grant row was honoured"); return
        }
        let report = try await reopened.verifyStore()
        #expect(report.problems.contains { $0.contains(grant.id.description) }, "\(report.problems)")
    }
}
