import Hummingbird
import Keyward

/// Fail-closed audit of the requests `KeyService` did not audit itself (a refused credential,
/// bad input, an unknown route): one entry naming the principal (once authenticated), the route,
/// the status and the error code. When that entry cannot be written the response becomes 503
/// `audit_unavailable`, whatever it would have been.
struct RequestAuditMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    let slot: KeyServiceSlot
    /// Paths that carry no credential or key and are not audited (probes, metrics, the document).
    static let unaudited: Set<String> = ["/v1/health", "/v1/ready", "/metrics", "/v1/openapi.yaml"]

    /// Requests that touch no key and no credential: the probes and documents above, and the
    /// console's sign-in form and static files (asked for by every browser that loads a page;
    /// auditing them would let anyone fill the log). The sign-in itself (POST) is audited.
    static func isUnaudited(_ request: Request) -> Bool {
        let path = request.uri.path
        if unaudited.contains(path) { return true }
        guard request.method == .get || request.method == .head else { return false }
        return path == "/ui/login" || path.hasPrefix("/ui/static/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        guard let tracking = context.tracking, !tracking.receipt.isMarked, !Self.isUnaudited(request) else { return response }
        // A peer over its failed-login limit is refused before any lookup and not audited one
        // request at a time (that would let anyone flood the log); the failures that brought it
        // there were audited, and the refusals are counted in the metrics as 429s.
        if tracking.principal == nil, tracking.error?.code == "rate_limited" { return response }
        let status = response.status.code
        let outcome: AuditOutcome = status < 400 ? .ok : status < 500 ? .denied : .error
        do {
            try await slot.current.auditRequest(principal: tracking.principal ?? "anonymous", context: context.auditContext(request), outcome: outcome,
                                           detail: tracking.error.map { "\(status) \($0.code): \($0.message)" } ?? "\(status)")
            return response
        } catch {
            context.logger.error("audit entry could not be written; request refused", metadata: ["request_id": .string(tracking.id), "error": .string(error.description)])
            return try APIError(error).response(from: request, context: context)
        }
    }
}
