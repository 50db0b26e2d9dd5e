import Foundation
import Hummingbird
import Logging

/// Writes one log line per request (at `info`, or `error` for a 5xx): method, route template,
/// status, principal, peer, milliseconds, request id and the error code. Never a body, a token
/// or a key reference beyond the route template.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        guard context.logger.logLevel <= .info || response.status.code >= 500, let tracking = context.tracking else { return response }
        let level: Logger.Level = response.status.code >= 500 ? .error : .info
        var metadata: Logger.Metadata = [
            "method": .string(request.method.rawValue), "route": .string(context.endpointPath ?? "unmatched"),
            "status": .stringConvertible(response.status.code), "principal": .string(tracking.principal ?? "anonymous"),
            "peer": .string(context.peer ?? "-"), "ms": .string(String(format: "%.3f", tracking.started.duration(to: .now).seconds * 1000)),
            "request_id": .string(tracking.id),
        ]
        if let error = tracking.error { metadata["error"] = .string(error.code) }
        context.logger.log(level: level, "request", metadata: metadata)
        return response
    }
}
