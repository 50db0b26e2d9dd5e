import Hummingbird
import HTTPTypes

extension Router<KeywardRequestContext> {
    /// Registers `handler` for `method` on `path` (a template such as `/v1/keys/{key}`).
    /// The router lists what is registered (`routes`), which the OpenAPI check compares with
    /// the document.
    func on(_ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, KeywardRequestContext) async throws -> Response) {
        on(RouterPath(path), method: method, use: handler)
    }
}

extension KeywardRequestContext {
    /// A path parameter, percent-decoded (aliases may hold `/`, sent as `%2F`).
    func parameter(_ name: String) throws(APIError) -> String {
        guard let raw = parameters.get(name) else { throw APIError.invalidRequest("missing path parameter '\(name)'") }
        // Foundation's decoder bridges through NSString; most references (key ids) need none.
        guard raw.utf8.contains(UInt8(ascii: "%")) else { return raw }
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw APIError.invalidRequest("path parameter '\(name)' is not valid percent-encoding")
        }
        return decoded
    }
}
