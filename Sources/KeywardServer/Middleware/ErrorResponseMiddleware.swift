import Hummingbird

/// Turns every error below it into the API's JSON error (`{"error":{"code","message"}}` with
/// its status), an unmatched path into `route_not_found` (404), and a known path asked with a
/// method it does not serve into `method_not_allowed` (405, with `Allow`). The error is
/// recorded on the request's tracking record for the audit, metrics and log middleware above it.
struct ErrorResponseMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    /// The registered routes.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            let apiError = APIError(any: error)
            if apiError.code == "route_not_found" { return try unmatched(request, context: context) }
            if apiError.code == "internal" {
                context.logger.error("request failed", metadata: ["request_id": .string(context.tracking?.id ?? "-"), "error": .string(String(describing: type(of: error)))])
            }
            return try apiError.response(from: request, context: context)
        }
        if response.status == .notFound, context.tracking?.error == nil {
            return try unmatched(request, context: context)
        }
        return response
    }

    /// 405 with `Allow` when the path is served with other methods, else 404.
    private func unmatched(_ request: Request, context: Context) throws -> Response {
        let allowed = routes.methods(for: request.uri.path)
        guard !allowed.isEmpty else {
            return try APIError.routeNotFound(request.method, request.uri.path).response(from: request, context: context)
        }
        var reply = try APIError.methodNotAllowed(request.method, allowed: allowed).response(from: request, context: context)
        reply.headers[.allow] = allowed.joined(separator: ", ")
        return reply
    }
}
