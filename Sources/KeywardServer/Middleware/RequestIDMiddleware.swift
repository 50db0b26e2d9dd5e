import Foundation
import Hummingbird
import HTTPTypes
import Synchronization

/// The outermost middleware: gives each request its tracking record (an id, the time it
/// started, the peer address, the audit receipt) and echoes the id as `X-Request-Id`. The id is
/// in the request's log line and its audit entry.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    /// How the peer address is found (the socket's, or a trusted proxy's `X-Forwarded-For`).
    let peers: PeerAddress
    /// The Transit front end's path prefix (`/v1/<mount>/`): its requests are marked so.
    var transitPrefix: String = "/v1/transit/"

    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator))
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A process-unique id: a random prefix per process and a counter.
    static func nextID() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        let hex = String(number, radix: 16)
        return prefix + "-" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let tracking = RequestTracking(id: Self.nextID(), peer: peers.resolve(socket: context.remoteAddress?.ipAddress, request.headers[values: .xForwardedFor]),
                                       transit: request.uri.path.hasPrefix(transitPrefix))
        var context = context
        context.tracking = tracking
        var response = try await next(request, context)
        response.headers[.requestID] = tracking.id
        return response
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`: the client address a reverse proxy saw.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// `X-Request-Id`: the id under which the request is logged and audited.
    static let requestID = HTTPField.Name("X-Request-Id")!
}
