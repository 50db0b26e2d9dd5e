import HTTPTypes
import KeywardAPI

/// The front end a request is addressed to, which decides the shape of every error it gets:
/// the native API's `{"error":{"code","message"}}`, Transit's `{"errors":["..."]}` with Vault's
/// statuses, or AWS KMS's `{"__type","message"}` with its statuses and `x-amzn-RequestId`.
///
/// Decided from the request's method and path alone, so that the transport's own refusals (a
/// body past the limit, an HTTP/2 body that did not arrive in time), made before any route is
/// chosen, answer in the same shape as the route would have.
enum ErrorShape: Sendable, Equatable {
    case native
    case transit
    case aws

    /// Transit's prefix under its default mount.
    static let defaultTransitPrefix = "/v1/transit/"

    /// The shape for a request with `method` and `path` (its query removed or not), Transit
    /// being mounted at `transitPrefix` (`/v1/<mount>/`). Works on the path's UTF-8 bytes: it
    /// runs for every request.
    static func of(method: HTTPRequest.Method, path: String, transitPrefix: String) -> ErrorShape {
        var bytes = path.utf8[...]
        if let query = bytes.firstIndex(of: UInt8(ascii: "?")) { bytes = bytes[..<query] }
        if bytes.starts(with: transitPrefix.utf8) { return .transit }
        if method == .post, bytes.count == 1, bytes.first == UInt8(ascii: "/") { return .aws }
        return .native
    }
}

extension APIError {
    /// This error as `shape` answers it: its status, headers and body. `requestID` is the
    /// request's id when it has one (AWS's shape carries it as `x-amzn-RequestId`).
    func rendered(as shape: ErrorShape, requestID: String?) -> (status: HTTPResponse.Status, headers: HTTPFields, body: [UInt8]) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        switch shape {
        case .native:
            return (status, headers, body)
        case .transit:
            var json = JSONWriter()
            json.object { $0.member("errors", strings: [TransitError.message(self)]) }
            return (TransitError.status(self), headers, json.bytes)
        case .aws:
            let (type, status) = AWSFault.type(for: self)
            var json = JSONWriter()
            json.object { json in
                json.member("__type", type)
                json.member("message", message)
            }
            headers[.contentType] = AWSKMSRoutes.contentType
            if let requestID { headers[AWSKMSRoutes.requestIDHeader] = requestID }
            return (status, headers, json.bytes)
        }
    }
}
