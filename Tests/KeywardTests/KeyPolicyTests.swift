import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardTestSupport
import Testing

@Suite("Key policies")
struct KeyPolicyTests {
    static let owner = Caller.owner("t")

    static func caller(_ name: String, _ rules: String...) throws -> Caller {
        .principal("token:\(KeyID()):\(name)", policy: AccessPolicy(rules: try rules.map { try AccessPolicy.parseRule($0) }))
    }

    static func statement(_ effect: KeyPolicy.Effect, _ principals: [String], _ operations: Set<ServiceOperation>, _ context: [String: String] = [:]) -> KeyPolicy.Statement {
        KeyPolicy.Statement(effect: effect, principals: principals, operations: operations, contextEquals: context)
    }

    @Test("a key policy's allow lets a principal with no rules use the key; its deny refuses even a principal whose policy grants everything")
    func allowAndDeny() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let admin = try Self.caller("admin", "*:*"), app = try Self.caller("app"), mallory = try Self.caller("mallory", "*:*")
        let policy = KeyPolicy(statements: [
            Self.statement(.allow, ["app"], [.encrypt, .decrypt], ["tenant": "a"]),
            Self.statement(.deny, ["mallory"], [.decrypt, .setKeyPolicy]),
        ], principalPolicyOperations: KeyPolicy.keyOperations, document: "{}")
        _ = try await service.setKeyPolicy(policy, key: id, actor: admin)
        let sealed = try await service.encrypt([5], key: id, context: ["tenant": "a"], actor: app)
        #expect(try await service.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: app).plaintext == [5])
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encrypt([5], key: id, context: ["tenant": "b"], actor: app) }) else {
            Issue.record("the condition did not bind"); return
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.describe(key: id, actor: app) }) else {
            Issue.record("the policy allowed more than it says"); return
        }
        // Deny wins over the principal's own *:*, and over a grant.
        _ = try await service.createGrant(key: id, grantee: "mallory", operations: [.decrypt], actor: admin)
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: mallory) }) else {
            Issue.record("a deny statement was overridden"); return
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.setKeyPolicy(nil, key: id, actor: mallory) }) else {
            Issue.record("a denied principal removed the key policy"); return
        }
        _ = try await service.encrypt([1], key: id, actor: mallory)
        // The key's policy is in its MAC'd row: a fresh process applies it too.
        let reopened = try await fixture.reopen()
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await reopened.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: mallory) }) else {
            Issue.record("the deny did not survive a reopen"); return
        }
    }

    @Test("without the account's root, callers' own policies stop counting on the key; the lockout check keeps the setter able to set it again")
    func principalPoliciesAndLockout() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id.description
        let admin = try Self.caller("admin", "*:*"), user = try Self.caller("user", "encrypt,describe:*")
        _ = try await service.encrypt([1], key: id, actor: user)
        // Only the admin's statement, and callers' policies only for describe.
        let narrow = KeyPolicy(statements: [Self.statement(.allow, ["admin"], [.setKeyPolicy, .describe])], principalPolicyOperations: [.describe], document: "{}")
        // A policy that would lock its setter out is refused unless bypassed on purpose.
        let lockout = KeyPolicy(statements: [], principalPolicyOperations: [.describe], document: "{}")
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.setKeyPolicy(lockout, key: id, actor: admin) }) else {
            Issue.record("a lockout policy was set"); return
        }
        _ = try await service.setKeyPolicy(narrow, key: id, actor: admin)
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: user) }) else {
            Issue.record("the user's own policy still counted for encrypt"); return
        }
        _ = try await service.describe(key: id, actor: user)
        // Keys a principal's policy no longer reaches are left out of its listing only when describe is refused.
        #expect(try await service.listKeys(limit: 100, actor: user).keys.contains { $0.metadata.id.description == id })
        // The owner is never bound by a key policy.
        _ = try await service.encrypt([1], key: id, actor: Self.owner)
        _ = try await service.setKeyPolicy(nil, key: id, actor: admin)
        _ = try await service.encrypt([1], key: id, actor: user)
        let entries = try await service.auditTail(50).map(\.event)
        #expect(entries.contains { $0.operation == "set-key-policy" && $0.outcome == "denied" })
        #expect(entries.contains { $0.operation == "set-key-policy" && ($0.detail ?? "") == "key policy removed" })
    }

    @Test("attack: a principal that may only set a key's policy cannot allow itself, or anyone, operations it does not hold on the key; it may deny, and allow what it holds")
    func keyPolicyIsNoEscalation() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(aliases: ["team/k"]), actor: Self.owner).metadata.id.description
        let sealed = try await service.encrypt([7], key: id, actor: Self.owner)
        let keeper = try Self.caller("keeper", "set-key-policy,describe,encrypt:alias=team/*")
        for (principals, operations) in [(["keeper"], Set<ServiceOperation>([.decrypt])), (["*"], [.decrypt]), (["friend"], [.encrypt, .decrypt]),
                                         (["keeper"], [.scheduleDestruction, .setKeyPolicy])] {
            let widening = KeyPolicy(statements: [Self.statement(.allow, principals, operations), Self.statement(.allow, ["keeper"], [.setKeyPolicy])],
                                     principalPolicyOperations: KeyPolicy.keyOperations, document: "{}")
            guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.setKeyPolicy(widening, key: id, actor: keeper) }) else {
                Issue.record("\(principals) were allowed \(operations.map(\.rawValue)) by a setter that does not hold them"); return
            }
        }
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed.ciphertext, actor: keeper) }) else {
            Issue.record("the keeper decrypts"); return
        }
        // Within its own operations, and denials, it may write what it likes.
        let within = KeyPolicy(statements: [Self.statement(.allow, ["friend"], [.encrypt, .describe]), Self.statement(.deny, ["*"], [.decrypt])],
                               principalPolicyOperations: KeyPolicy.keyOperations, document: "{}")
        _ = try await service.setKeyPolicy(within, key: id, actor: keeper)
        _ = try await service.encrypt([1], key: id, actor: try Self.caller("friend"))
        let denied = try await service.auditTail(50).map(\.event).filter { $0.operation == "set-key-policy" }.map(\.outcome)
        #expect(denied == ["denied", "denied", "denied", "denied", "ok"], "\(denied)")
    }

    @Test("attack: a key policy edited in the store file is refused")
    func tamperedPolicy() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: Self.owner).metadata.id
        let policy = KeyPolicy(statements: [Self.statement(.deny, ["*"], [.decrypt])], principalPolicyOperations: KeyPolicy.keyOperations, document: "{}")
        _ = try await service.setKeyPolicy(policy, key: id.description, actor: Self.owner)
        try fixture.tamper("UPDATE keys SET body = replace(body, '\"deny\"', '\"allow\"') WHERE id = ?", [Data(id.bytes)])
        let reopened = try await fixture.reopen()
        guard case .integrityFailure = await keywardError({ () async throws(KeywardError) in _ = try await reopened.describe(key: id.description, actor: Self.owner) }) else {
            Issue.record("an edited key policy was honoured"); return
        }
    }
}
