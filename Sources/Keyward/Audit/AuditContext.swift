import Foundation
import Synchronization

/// What a front end knows about the request behind a call, recorded in its audit entries: the
/// request id, the client's address and the route. The core stores these fields and decides
/// nothing by them.
public struct AuditContext: Sendable {
    /// The request id (`X-Request-Id`).
    public var requestID: String?
    /// The client's address.
    public var peer: String?
    /// The front end's name for the request (`POST /v1/keys/{key}/encrypt`).
    public var route: String?
    /// Told when `KeyService` audits for the request, so a front end knows whether the request
    /// still needs an audit entry of its own.
    public var receipt: AuditReceipt?

    /// A context; every field is optional.
    public init(requestID: String? = nil, peer: String? = nil, route: String? = nil, receipt: AuditReceipt? = nil) {
        self.requestID = requestID
        self.peer = peer
        self.route = route
        self.receipt = receipt
    }
}

/// Records whether `KeyService` audited anything for one request, and how many operations it
/// performed for it: one per audited call, and each item of a batch, so that a front end can
/// charge a batch of a thousand signatures to a rate limit as a thousand.
public final class AuditReceipt: Sendable {
    private let marked = Atomic<Bool>(false)
    private let performed = Atomic<Int>(0)

    /// A receipt nothing has been audited against yet.
    public init() {}

    /// Whether an audit entry was made for the request.
    public var isMarked: Bool { marked.load(ordering: .acquiring) }

    /// The operations performed for the request so far (audited calls, batch items each).
    public var operations: Int { performed.load(ordering: .relaxed) }

    func mark() {
        marked.store(true, ordering: .releasing)
        performed.add(1, ordering: .relaxed)
    }

    /// Counts `count` operations more than the one call that audits them (a batch's items).
    func count(extra count: Int) {
        if count > 0 { performed.add(count, ordering: .relaxed) }
    }
}
