import Foundation
import KeywardCrypto
import KeywardStorage

/// A key's own policy (`KeyPolicy`): set, replaced or removed by callers that hold
/// `set-key-policy` on the key, kept in the key's MAC'd metadata (so it is cached, coherent and
/// replay-checked with the key), and applied by `authorize` to every front end.
extension KeyService {
    /// Sets `key`'s policy (nil removes it). Unless `bypassLockoutCheck`, a policy that would
    /// leave the caller unable to set the key's policy again is refused, so no caller locks
    /// itself out by accident (the store's owner is never bound by key policies).
    ///
    /// - Throws: `invalidArgument` for a document over 32 KiB or a statement that names no
    ///   principal or operation, or an operation that is not on a key; `notPermitted` for a
    ///   policy that fails the lockout check, or whose allow statements give an operation the
    ///   caller does not hold on the key itself.
    public func setKeyPolicy(_ keyPolicy: KeyPolicy?, key reference: String, bypassLockoutCheck: Bool = false,
                             actor: Caller) async throws(KeywardError) -> KeyDescription {
        if let keyPolicy { try Self.check(keyPolicy) }
        return try await withUsableKey(reference, .setKeyPolicy, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> KeyDescription in
            if let policy = actor.policy, let keyPolicy { try checkAllowable(keyPolicy, on: key, policy: policy, actor) }
            var metadata = key.metadata
            metadata.keyPolicy = keyPolicy
            if !bypassLockoutCheck, let policy = actor.policy,
               policyDecision(.setKeyPolicy, on: KeyDescription(metadata: metadata, aliases: key.aliases), policy: policy, actor) != true {
                throw .notPermitted("the policy would leave \(actor.principal) unable to change key \(key.row.id)'s policy again; "
                                    + "allow it set-key-policy, or bypass the lockout check on purpose")
            }
            event.detail = keyPolicy.map { "key policy set: \($0.statements.count) statements" } ?? "key policy removed"
            return try await commit(key, metadata, event: &event)
        }
    }

    /// Refuses, with `notPermitted`, a key policy whose allow statements give an operation the
    /// setter does not hold on the key itself (by its own policy, or by the key's current
    /// policy), as grants are bounded: `set-key-policy` alone is no way to decrypt. Deny
    /// statements, which only narrow, are always the setter's to write.
    private func checkAllowable(_ keyPolicy: KeyPolicy, on key: LoadedKey, policy: AccessPolicy, _ actor: Caller) throws(KeywardError) {
        let current = KeyDescription(metadata: key.metadata, aliases: key.aliases)
        let given = keyPolicy.statements.filter { $0.effect == .allow }.reduce(into: Set<ServiceOperation>()) { $0.formUnion($1.operations) }
        for operation in given.sorted(by: { $0.rawValue < $1.rawValue })
        where !policy.allows(operation, on: current) && policyDecision(operation, on: current, policy: policy, actor) != true {
            throw .notPermitted("\(actor.principal) may allow in a key policy only operations it holds on key \(key.row.id) itself; it does not hold \(operation.rawValue)")
        }
    }

    /// Whether `policy`, held by `principal`, may do `operation` on `key` once the key's own
    /// policy has its say, for a request with no encryption context (grants aside): what a
    /// console shows as a credential's access to a key.
    public func policyPermits(_ operation: ServiceOperation, on key: KeyDescription, principal: String, policy: AccessPolicy) -> Bool {
        policyDecision(operation, on: key, policy: policy, .principal(principal, policy: policy)) == true
    }

    static func check(_ keyPolicy: KeyPolicy) throws(KeywardError) {
        guard keyPolicy.document.utf8.count <= KeyPolicy.maximumDocumentBytes else {
            throw .invalidArgument("a key policy is at most \(KeyPolicy.maximumDocumentBytes) bytes")
        }
        guard keyPolicy.statements.count <= 100 else { throw .invalidArgument("a key policy holds at most 100 statements") }
        for statement in keyPolicy.statements {
            guard !statement.principals.isEmpty, !statement.operations.isEmpty else {
                throw .invalidArgument("every key-policy statement names at least one principal and one operation")
            }
            guard statement.operations.isSubset(of: KeyPolicy.keyOperations), statement.principals.allSatisfy({ (1...256).contains($0.unicodeScalars.count) }) else {
                throw .invalidArgument("key-policy statements name operations on the key and principals of 1 to 256 characters")
            }
            for principal in statement.principals { try PrintableText.check(principal, "a key-policy principal") }
        }
        guard keyPolicy.principalPolicyOperations.isSubset(of: KeyPolicy.keyOperations) else {
            throw .invalidArgument("a key policy leaves only operations on the key to callers' policies")
        }
    }
}
