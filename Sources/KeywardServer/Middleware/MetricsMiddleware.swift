import Hummingbird

/// Counts requests in flight and records each finished request (method, route template,
/// status, duration, error code) in `ServiceMetrics`.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        metrics.requestStarted()
        let response = try await next(request, context)
        let duration = context.tracking.map { $0.started.duration(to: .now) } ?? .zero
        metrics.requestFinished(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: Int(response.status.code),
                                duration: duration, errorCode: context.tracking?.error?.code)
        return response
    }
}
