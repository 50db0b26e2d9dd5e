import Foundation
import KeywardCrypto
import Synchronization

/// Who is asking, and under what policy: the principal every audit entry names, the request it
/// belongs to, and the grants `KeyService` checks before it touches a key.
///
/// A caller without a policy is the store's owner (the CLI, an application embedding the
/// library with its own KEK): it may do anything the lifecycle allows. Every caller of the HTTPS
/// service carries its token's or certificate's policy, and `KeyService` refuses what the policy
/// does not grant with `accessDenied`, audited as `denied`.
public struct Caller: Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The principal, as audit entries show it (`cli`, `token:<id> (name)`, `mtls:CN=...`).
    public var principal: String
    /// The grants; nil for the store's owner (no policy check).
    public var policy: AccessPolicy?
    /// The request id, for the service.
    public var requestID: String?
    /// The client's address, for the service.
    public var peer: String?
    /// The HTTP method and route template, for the service.
    public var route: String?
    /// Told when `KeyService` audits on this caller's behalf, so a front end knows whether a
    /// request still needs an audit entry of its own.
    public var receipt: AuditReceipt?

    /// A caller; without `policy`, the store's owner.
    public init(_ principal: String, policy: AccessPolicy? = nil, requestID: String? = nil, peer: String? = nil,
                route: String? = nil, receipt: AuditReceipt? = nil) {
        self.principal = principal
        self.policy = policy
        self.requestID = requestID
        self.peer = peer
        self.route = route
        self.receipt = receipt
    }

    /// The store's owner, named by a literal (`"cli"`).
    public init(stringLiteral principal: String) { self.init(principal) }

    public var description: String { principal }

    /// Whether the caller may do `operation` on `key`.
    public func permits(_ operation: ServiceOperation, on key: KeyDescription) -> Bool {
        policy?.allows(operation, on: key) ?? true
    }

    /// Whether the caller may do `operation` on some key (for operations without a key).
    public func permitsSomewhere(_ operation: ServiceOperation) -> Bool {
        policy?.allowsSomewhere(operation) ?? true
    }

    /// The same caller without a policy, for the service's own internal steps taken on a
    /// caller's behalf after the caller's request was authorised (an import's wrapping key).
    var internalStep: Caller {
        var caller = self
        caller.policy = nil
        return caller
    }

    /// An audit event for this caller, with its request id and peer.
    func event(time: Date, operation: String, keyID: KeyID? = nil, version: UInt32? = nil) -> AuditEvent {
        receipt?.mark()
        return AuditEvent(time: time, actor: principal, operation: operation, keyID: keyID, version: version,
                          requestID: requestID, peer: peer, route: route)
    }
}

/// Records whether `KeyService` audited anything for one request.
public final class AuditReceipt: Sendable {
    private let marked = Atomic<Bool>(false)

    /// A receipt nothing has been audited against yet.
    public init() {}

    /// Whether an audit entry was made for the request.
    public var isMarked: Bool { marked.load(ordering: .acquiring) }

    func mark() { marked.store(true, ordering: .releasing) }
}
