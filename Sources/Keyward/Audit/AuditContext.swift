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

/// Records whether `KeyService` audited anything for one request.
public final class AuditReceipt: Sendable {
    private let marked = Atomic<Bool>(false)

    /// A receipt nothing has been audited against yet.
    public init() {}

    /// Whether an audit entry was made for the request.
    public var isMarked: Bool { marked.load(ordering: .acquiring) }

    func mark() { marked.store(true, ordering: .releasing) }
}
