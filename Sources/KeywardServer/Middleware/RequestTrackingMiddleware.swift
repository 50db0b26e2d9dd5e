import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import Logging
import Synchronization

/// The outermost middleware: gives each request an id (in its log lines, echoed as
/// `X-Request-Id`, put in its audit entry), turns every error into the API's JSON error, audits requests that reached
/// no key operation, records metrics, and writes one log line per request.
///
/// Fail-closed audit: a request `KeyService` did not audit itself (a refused credential, bad
/// input, an unknown route) gets an entry here; when that entry cannot be written the response
/// becomes 503 `audit_unavailable`, whatever it would have been.
struct RequestTrackingMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    let service: KeyService
    let metrics: ServiceMetrics
    /// Paths that carry no credential or key and are not audited (probes, metrics, the document).
    static let unaudited: Set<String> = ["/v1/health", "/v1/ready", "/metrics", "/v1/openapi.yaml"]

    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator))
    }()
    private static let counter = Atomic<UInt64>(0)

    static func nextID() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        let hex = String(number, radix: 16)
        return prefix + "-" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let tracking = RequestTracking(id: Self.nextID())
        var context = context
        context.tracking = tracking
        metrics.requestStarted()
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let apiError = APIError(any: error)
            if apiError.code == "internal" {
                context.logger.error("request failed", metadata: ["request_id": .string(tracking.id), "error": .string(String(describing: type(of: error)))])
            }
            response = try apiError.response(from: request, context: context)
        }
        if response.status == .notFound, tracking.error == nil {
            response = try APIError.routeNotFound(request.method, request.uri.path).response(from: request, context: context)
        }
        let path = request.uri.path
        if !tracking.receipt.isMarked, !Self.unaudited.contains(path) {
            let status = response.status.code
            let error = tracking.error
            do {
                let outcome: AuditOutcome = status < 400 ? .ok : status < 500 ? .denied : .error
                try await service.auditRequest(principal: context.principal?.name ?? "anonymous", context: context.auditContext(request), outcome: outcome,
                                               detail: error.map { "\(status) \($0.code): \($0.message)" } ?? "\(status)")
            } catch {
                context.logger.error("audit entry could not be written; request refused", metadata: ["request_id": .string(tracking.id), "error": .string(error.description)])
                response = try APIError(error).response(from: request, context: context)
            }
        }
        response.headers[.requestID] = tracking.id
        let seconds = started.duration(to: .now).seconds
        let route = context.endpointPath ?? "unmatched"
        metrics.requestFinished(method: request.method.rawValue, route: route, status: Int(response.status.code),
                                seconds: seconds, errorCode: tracking.error?.code)
        if context.logger.logLevel <= .info || response.status.code >= 500 {
            let level: Logger.Level = response.status.code >= 500 ? .error : .info
            context.logger.log(level: level, "request", metadata: [
                "method": .string(request.method.rawValue), "route": .string(route), "status": .stringConvertible(response.status.code),
                "principal": .string(context.principal?.name ?? "anonymous"), "peer": .string(context.peer ?? "-"),
                "ms": .string(String(format: "%.3f", seconds * 1000)), "request_id": .string(tracking.id),
            ].merging(tracking.error.map { ["error": .string($0.code)] } ?? [:]) { $1 })
        }
        return response
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`: the id under which the request is logged and audited.
    static let requestID = HTTPField.Name("X-Request-Id")!
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
