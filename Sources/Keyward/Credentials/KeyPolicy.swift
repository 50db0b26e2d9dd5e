import Foundation
import KeywardCrypto

/// A key's own policy (AWS KMS's key policy, in Keyward's terms): statements that allow or deny
/// operations on this key to principals, optionally only for requests whose encryption context
/// holds given pairs.
///
/// How it combines with the rest of the policy model, in `KeyService.authorize`:
/// 1. a matching `deny` statement refuses, whatever else allows;
/// 2. otherwise the caller's own policy allows, but only for the operations in
///    ``principalPolicyOperations`` (AWS: what the key policy lets IAM policies grant);
/// 3. otherwise a matching `allow` statement, or a live grant, allows;
/// 4. otherwise the operation is refused.
/// The store's owner and Keyward's own jobs are not bound by key policies.
public struct KeyPolicy: Sendable, Hashable, Codable {
    /// Allow or deny.
    public enum Effect: String, Sendable, Hashable, Codable { case allow, deny }

    /// One statement.
    public struct Statement: Sendable, Hashable, Codable {
        public var effect: Effect
        /// Principals it names (as `KeyGrant.principal(_:is:)` matches them); `*` is anyone.
        public var principals: [String]
        /// The operations it covers.
        public var operations: Set<ServiceOperation>
        /// Pairs the request's encryption context must hold for the statement to apply; an
        /// operation that takes no context never meets a non-empty condition.
        public var contextEquals: [String: String]

        /// A statement.
        public init(effect: Effect, principals: [String], operations: Set<ServiceOperation>, contextEquals: [String: String] = [:]) {
            self.effect = effect
            self.principals = principals
            self.operations = operations
            self.contextEquals = contextEquals
        }

        /// Whether it covers `operation` by `principal` under `context`.
        public func applies(to operation: ServiceOperation, principal: String, context: EncryptionContext?) -> Bool {
            guard operations.contains(operation), principals.contains(where: { $0 == "*" || KeyGrant.principal(principal, is: $0) }) else { return false }
            guard !contextEquals.isEmpty else { return true }
            guard let context else { return false }
            return contextEquals.allSatisfy { context.pairs[$0.key] == $0.value }
        }
    }

    /// The statements.
    public var statements: [Statement]
    /// The operations for which callers' own policies still count on this key.
    public var principalPolicyOperations: Set<ServiceOperation>
    /// The document as it was put (AWS's JSON), returned as it was given.
    public var document: String

    /// A key policy.
    public init(statements: [Statement], principalPolicyOperations: Set<ServiceOperation>, document: String) {
        self.statements = statements
        self.principalPolicyOperations = principalPolicyOperations
        self.document = document
    }

    /// Whether a deny statement covers the request.
    public func denies(_ operation: ServiceOperation, principal: String, context: EncryptionContext?) -> Bool {
        statements.contains { $0.effect == .deny && $0.applies(to: operation, principal: principal, context: context) }
    }

    /// Whether an allow statement covers the request.
    public func allows(_ operation: ServiceOperation, principal: String, context: EncryptionContext?) -> Bool {
        statements.contains { $0.effect == .allow && $0.applies(to: operation, principal: principal, context: context) }
    }

    /// The operations a key policy can speak of: every operation on a key.
    public static let keyOperations: Set<ServiceOperation> = Set(ServiceOperation.allCases).subtracting(ServiceOperation.keyless).subtracting([.destroy])

    /// Largest document kept (AWS's limit).
    public static let maximumDocumentBytes = 32_768
}
