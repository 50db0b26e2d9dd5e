import Foundation
import KeywardCrypto

/// Who is asking, and with what authority: the principal every audit entry names and the grants
/// `KeyService` checks before it touches a key.
///
/// A caller is made by one of three constructors, each a distinct authority a reviewer can grep
/// for:
/// - ``owner(_:context:)``: the store's owner (the CLI, an application embedding the library with
///   its own KEK). It holds the KEK already, so no policy applies; anything the lifecycle allows
///   is allowed.
/// - ``principal(_:policy:context:)``: a client of a front end (an API token, an mTLS subject),
///   limited to what its ``AccessPolicy`` grants. `KeyService` refuses the rest with
///   `accessDenied`, audited as `denied`.
/// - `system(_:)` (internal to this module): Keyward's own jobs (due rotation, due destruction,
///   rotation at the encryption limit). No front end can make one.
///
/// There is no literal or string conversion: a name alone never carries authority.
/// Request metadata (request id, peer, route) travels in ``context``; the core records it in
/// audit entries and reads nothing else from it.
public struct Caller: Sendable, CustomStringConvertible {
    /// Where a caller's authority comes from.
    public enum Authority: Sendable {
        /// The store's owner: no policy applies.
        case owner
        /// A front end's client: only what the policy grants.
        case policy(AccessPolicy)
        /// One of Keyward's own jobs.
        case system(SystemJob)
    }

    /// The principal, as audit entries show it (`cli:alice`, `token:<id>:<name>`, `mtls:CN=...`,
    /// `keyward (rotation period)`).
    public let principal: String
    /// Where the caller's authority comes from.
    public let authority: Authority
    /// The request metadata a front end records in audit entries.
    public var context: AuditContext
    /// Grants the caller names on this request (AWS's grant tokens): `KeyService` reads them
    /// from the store, so a grant this node has not yet seen applies at once. They add nothing
    /// a grant to another principal would not: each must still name this caller as its grantee.
    public private(set) var presentedGrants: [KeyID] = []
    /// The request's encryption context, for grant constraints and key-policy conditions (set
    /// by the operations that take one; nil otherwise).
    var requestContext: EncryptionContext? = nil
    /// When the credential this caller presented expires (nil: it does not, or the caller is
    /// the owner or a job). A credential the caller issues expires no later.
    public let expiresAt: Date?

    private init(principal: String, authority: Authority, context: AuditContext, expiresAt: Date? = nil) {
        self.principal = principal
        self.authority = authority
        self.context = context
        self.expiresAt = expiresAt
    }

    /// The same caller presenting `grants` on this request (at most 10, AWS's limit).
    public func presenting(grants: [KeyID]) -> Caller {
        var caller = self
        caller.presentedGrants = Array(grants.prefix(10))
        return caller
    }

    /// The same caller, asking under `context` (for grant constraints and key-policy conditions).
    func asking(under context: EncryptionContext) -> Caller {
        var caller = self
        caller.requestContext = context
        return caller
    }

    /// The store's owner, named `name` in audit entries (`cli:alice`, `billing-service`).
    public static func owner(_ name: String, context: AuditContext = AuditContext()) -> Caller {
        Caller(principal: name, authority: .owner, context: context)
    }

    /// A front end's client, limited to what `policy` grants, presenting a credential that
    /// expires at `expiresAt` (nil: never).
    public static func principal(_ name: String, policy: AccessPolicy, expiresAt: Date? = nil, context: AuditContext = AuditContext()) -> Caller {
        Caller(principal: name, authority: .policy(policy), context: context, expiresAt: expiresAt)
    }

    /// One of Keyward's own jobs.
    static func system(_ job: SystemJob) -> Caller {
        Caller(principal: job.principal, authority: .system(job), context: AuditContext())
    }

    public var description: String { principal }

    /// The grants; nil when no policy applies (the owner and Keyward's own jobs).
    public var policy: AccessPolicy? {
        if case .policy(let policy) = authority { return policy }
        return nil
    }

    /// Whether the caller may do `operation` on some key (for operations without a key).
    public func permitsSomewhere(_ operation: ServiceOperation) -> Bool {
        policy?.allowsSomewhere(operation) ?? true
    }

    /// The same principal acting for an internal step the service takes on the caller's behalf
    /// once the caller's request was authorised (an import's wrapping key): no policy applies
    /// to that step, and its audit entry still names the caller and the request.
    var internalStep: Caller {
        Caller(principal: principal, authority: .system(.onBehalfOfCaller), context: context)
    }
}

/// Keyward's own jobs: the only callers with authority that no credential granted.
public enum SystemJob: String, Sendable, CaseIterable {
    /// Rotating a key whose rotation period has passed.
    case periodicRotation
    /// Rotating a key version that reached its encryption limit.
    case encryptionLimitRotation
    /// Destroying a key whose destruction date has passed.
    case scheduledDestruction
    /// A step of an authorised request that the service takes itself (an import's wrapping key).
    case onBehalfOfCaller
    /// Reserving a block of a key version's encryption budget in the store.
    case encryptionReservation
    /// Archiving and removing audit entries older than the retention period.
    case auditRetention
    /// Deleting imported material whose expiry (AWS's ValidTo) has passed.
    case importedMaterialExpiry
    /// Chaining the audit intake's entries into the log (decision 0034).
    case auditSequencing

    /// The principal audit entries name for the job.
    public var principal: String {
        switch self {
        case .periodicRotation: "keyward (rotation period)"
        case .encryptionLimitRotation: "keyward (encryption limit)"
        case .scheduledDestruction: "keyward (destruction date)"
        case .onBehalfOfCaller: "keyward (on behalf of the caller)"
        case .encryptionReservation: "keyward (encryption budget)"
        case .auditRetention: "keyward (audit retention)"
        case .importedMaterialExpiry: "keyward (imported material expiry)"
        case .auditSequencing: "keyward (audit sequencer)"
        }
    }
}
