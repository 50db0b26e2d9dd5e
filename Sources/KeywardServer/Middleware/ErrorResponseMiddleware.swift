import Hummingbird

/// Turns every error below it into the API's JSON error (`{"error":{"code","message"}}` with
/// its status), and an unmatched route into `route_not_found`. The error is recorded on the
/// request's tracking record for the audit, metrics and log middleware above it.
struct ErrorResponseMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            let apiError = APIError(any: error)
            if apiError.code == "internal" {
                context.logger.error("request failed", metadata: ["request_id": .string(context.tracking?.id ?? "-"), "error": .string(String(describing: type(of: error)))])
            }
            return try apiError.response(from: request, context: context)
        }
        if response.status == .notFound, context.tracking?.error == nil {
            return try APIError.routeNotFound(request.method, request.uri.path).response(from: request, context: context)
        }
        return response
    }
}
