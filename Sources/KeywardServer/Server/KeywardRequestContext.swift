import Foundation
import Hummingbird
import Keyward
import Logging
import NIOCore
import Synchronization

/// The request context of `keyward serve`: Hummingbird's core storage, the connection (for the
/// peer address and an mTLS client certificate), the request's tracking record and, once
/// `AuthenticationMiddleware` has run, the authenticated principal.
public struct KeywardRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection (an HTTP/2 stream's parent holds the TLS handler).
    public let channel: any Channel
    /// Set by `RequestIDMiddleware`: id, audit receipt, the error reported.
    var tracking: RequestTracking?
    /// Set by `AuthenticationMiddleware`.
    var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The peer's socket address.
    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    /// The peer's address as audit entries and the failed-login limit see it (no port): the
    /// socket's, or the client a trusted proxy names (`PeerAddress`).
    var peer: String? { tracking?.peer ?? remoteAddress?.ipAddress }

    /// The `Caller` for `KeyService`: the principal and its policy, the request id, the peer and
    /// the route; its receipt tells `RequestAuditMiddleware` that the library audited.
    func caller(_ request: Request) throws(APIError) -> Caller {
        guard let principal else { throw APIError.unauthenticated("a bearer token is required") }
        return .principal(principal.name, policy: principal.policy, expiresAt: principal.expiresAt, context: auditContext(request))
    }
}

extension KeywardRequestContext {
    /// The request as audit entries record it: its id, the peer, the route template, and the
    /// receipt that tells `RequestAuditMiddleware` whether the library audited.
    func auditContext(_ request: Request) -> AuditContext {
        AuditContext(requestID: tracking?.id, peer: peer, route: "\(request.method.rawValue) \(endpointPath ?? String(request.uri.path.prefix(200)))",
                     receipt: tracking?.receipt)
    }
}

/// An authenticated principal: its name (as audit entries show it) and its grants.
struct Principal: Sendable {
    /// `token:<id>:<name>` or `mtls:<subject>`.
    var name: String
    var policy: AccessPolicy
    /// When the presented credential expires: a token's or access key's expiry, a client
    /// certificate's notAfter (nil: never).
    var expiresAt: Date? = nil
}

/// What one request has done so far, shared by the middleware that run before and after the
/// routes (a request context is a value, so what an inner middleware learns reaches the outer
/// ones only through here): its id and start, the principal once authenticated, whether
/// `KeyService` audited it, and the error the API reported, if any.
final class RequestTracking: Sendable {
    let id: String
    let started = ContinuousClock.now
    let receipt = AuditReceipt()
    private let state = Mutex<(principal: String?, error: APIError?)>((nil, nil))

    /// The peer address (`PeerAddress.resolve`).
    let peer: String?
    /// The front end the request is for, which shapes its errors.
    let shape: ErrorShape
    /// Whether the request is for the Transit front end.
    var transit: Bool { shape == .transit }

    init(id: String, peer: String?, shape: ErrorShape = .native) {
        self.id = id
        self.peer = peer
        self.shape = shape
    }

    /// Records the authenticated principal's name.
    func authenticated(as principal: String) { state.withLock { $0.principal = principal } }
    /// The authenticated principal's name; nil before authentication or when it failed.
    var principal: String? { state.withLock { $0.principal } }

    /// Records the error the API answers with.
    func fail(_ error: APIError) { state.withLock { $0.error = error } }
    /// The error the API answered with, if any.
    var error: APIError? { state.withLock { $0.error } }
}
