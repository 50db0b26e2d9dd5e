import Foundation
import Hummingbird
import HTTPTypes
import Synchronization

/// The outermost middleware: gives each request its tracking record (an id, the time it
/// started, the peer address, the audit receipt) and echoes the id as `X-Request-Id`. The id is
/// in the request's log line and its audit entry. Every response also leaves here marked
/// `Cache-Control: no-store` unless its route chose otherwise: answers carry plaintexts, data
/// keys and key metadata that no proxy or browser cache may keep (as Vault marks its own).
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    /// How the peer address is found (the socket's, or a trusted proxy's `X-Forwarded-For`).
    let peers: PeerAddress
    /// The Transit front end's path prefix (`/v1/<mount>/`): its requests are marked so.
    var transitPrefix: String = ErrorShape.defaultTransitPrefix

    static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator))
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A process-unique id: a random prefix per process and a counter, at least 8 hex digits
    /// (`1a2b3c4d-0000002e`). Spelled into one buffer: it is made for every request.
    static func nextID() -> String {
        id(counter.add(1, ordering: .relaxed).newValue)
    }

    /// The id for counter value `number`.
    static func id(_ number: UInt64) -> String {
        let digits = max(8, (64 - number.leadingZeroBitCount + 3) / 4)
        let prefix = Self.prefix.utf8
        return String(unsafeUninitializedCapacity: prefix.count + 1 + digits) { buffer in
            var index = 0
            for byte in prefix { buffer[index] = byte; index += 1 }
            buffer[index] = UInt8(ascii: "-")
            for place in 0..<digits {
                buffer[index + digits - place] = hexDigits[Int((number >> (4 * UInt64(place))) & 0xF)]
            }
            return index + 1 + digits
        }
    }
    private static let hexDigits = Array("0123456789abcdef".utf8)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let tracking = RequestTracking(id: Self.nextID(), peer: peers.resolve(socket: context.remoteAddress?.ipAddress, request.headers[values: .xForwardedFor]),
                                       shape: ErrorShape.of(method: request.method, path: request.uri.path, transitPrefix: transitPrefix))
        var context = context
        context.tracking = tracking
        var response = try await next(request, context)
        response.headers[.requestID] = tracking.id
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`: the client address a reverse proxy saw.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// `X-Request-Id`: the id under which the request is logged and audited.
    static let requestID = HTTPField.Name("X-Request-Id")!
}
