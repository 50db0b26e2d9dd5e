import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// An error as the HTTP API reports it: a stable machine-readable `code`, an HTTP status and a
/// message a user can act on, rendered as `{"error":{"code":"...","message":"..."}}`.
///
/// Messages come from `KeywardError` descriptions and the server's own checks; they name keys,
/// fields and limits, never plaintext, key bytes or tokens, and never a stack trace.
public struct APIError: Error, Sendable, Equatable, HTTPResponseError {
    /// The stable code clients switch on (documented in openapi.yaml).
    public let code: String
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// What went wrong and what to do about it.
    public let message: String
    /// Seconds to wait before retrying (429 and 503).
    public var retryAfter: Int?
    /// The AWS KMS error `__type`, when the AWS front end raised it (`AWSFault`); other errors
    /// reach AWS clients under the type their code maps to.
    public var awsType: String?

    /// An error with this code, status and message.
    public init(_ code: String, _ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    static func invalidRequest(_ message: String) -> APIError { APIError("invalid_request", .badRequest, message) }
    static func unauthenticated(_ message: String) -> APIError { APIError("unauthenticated", .unauthorized, message) }
    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [String]) -> APIError {
        APIError("method_not_allowed", .methodNotAllowed, "this route does not serve \(method.rawValue.prefix(20)); it serves \(allowed.joined(separator: ", "))")
    }

    static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> APIError {
        APIError("route_not_found", .notFound, "no route \(method.rawValue) \(path.prefix(200)); see /v1/openapi.yaml")
    }
    static func bodyTooLarge(_ limit: Int) -> APIError {
        APIError("body_too_large", .contentTooLarge, "the request body is larger than \(limit) bytes; use a data key for large data")
    }
    static func tooManyFailures(_ retryAfter: Int) -> APIError {
        APIError("rate_limited", .tooManyRequests, "too many failed authentications from this address; retry after \(retryAfter) s", retryAfter: retryAfter)
    }

    static func rateLimited(_ retryAfter: Int) -> APIError {
        APIError("rate_limited", .tooManyRequests, "too many requests for this principal; retry after \(retryAfter) s", retryAfter: retryAfter)
    }

    /// The API's view of a library error.
    init(_ error: KeywardError) {
        switch error {
        case .keyNotFound: self.init("key_not_found", .notFound, error.description)
        case .wrongState: self.init("wrong_state", .conflict, error.description)
        case .keyDestroyed: self.init("key_destroyed", .conflict, error.description)
        case .versionUnavailable: self.init("version_unavailable", .conflict, error.description)
        case .integrityFailure: self.init("integrity_failure", .internalServerError, error.description)
        case .rootOfTrustRejected, .storeEmpty, .storeState: self.init("unavailable", .serviceUnavailable, error.description, retryAfter: 5)
        case .invalidArgument, .backupRejected, .aliasTaken, .limitExceeded, .ciphertextKeyMismatch: self.init("invalid_request", .badRequest, error.description)
        case .auditUnavailable: self.init("audit_unavailable", .serviceUnavailable, error.description, retryAfter: 1)
        case .notPermitted: self.init("not_permitted", .forbidden, error.description)
        case .unauthenticated: self.init("unauthenticated", .unauthorized, error.description)
        case .accessDenied: self.init("access_denied", .forbidden, error.description)
        case .crypto(let crypto):
            switch crypto {
            case .invalidCiphertext: self.init("invalid_ciphertext", .badRequest, error.description)
            case .wrongPurpose, .unsupportedOperation: self.init("wrong_purpose", .badRequest, error.description)
            case .invalidKeyMaterial, .invalidPublicKey, .invalidParameter, .weakKDFParameters, .unknownSpec:
                self.init("invalid_request", .badRequest, error.description)
            case .secureMemoryUnavailable, .primitiveFailure: self.init("internal", .internalServerError, error.description)
            }
        case .storage:
            switch error.storeFault {
            case .conflict: self.init("conflict", .conflict, error.description)
            case .unavailable: self.init("unavailable", .serviceUnavailable, error.description, retryAfter: 1)
            case .corrupted: self.init("integrity_failure", .internalServerError, error.description)
            case .failed, nil: self.init("internal", .internalServerError, error.description)
            }
        }
    }

    /// Any error thrown while serving a request, as the API reports it. Errors the server does
    /// not know are reported without their text (which might carry internals).
    init(any error: any Error) {
        switch error {
        case let error as APIError: self = error
        case let error as KeywardError: self.init(error)
        case let error as KeywardCryptoError: self.init(KeywardError.crypto(error))
        case is NIOTooManyBytesError: self.init("body_too_large", .contentTooLarge, "the request body is too large")
        case let error as HTTPError:
            switch error.status {
            case .contentTooLarge: self.init("body_too_large", .contentTooLarge, "the request body is too large")
            case .notFound: self.init("route_not_found", .notFound, "no such route; see /v1/openapi.yaml")
            case .unauthorized: self.init("unauthenticated", .unauthorized, "a bearer token is required")
            default: self.init(error.status.code < 500 ? "invalid_request" : "internal", error.status, error.body ?? error.status.reasonPhrase)
            }
        default: self.init("internal", .internalServerError, "internal error; the request id in the response names it in the server log")
        }
    }

    /// The JSON body.
    var body: [UInt8] { ErrorReply(code: code, message: message).json() }

    /// This error as the answer to `request` (Hummingbird's `HTTPResponseError`), in the shape of
    /// the front end the request is for (`ErrorShape`), recorded on its tracking for the log and audit.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let tracking = (context as? KeywardRequestContext)?.tracking
        tracking?.fail(self)
        // The shape RequestIDMiddleware decided (under the configured Transit mount).
        let shape = tracking?.shape ?? ErrorShape.of(method: request.method, path: request.uri.path, transitPrefix: ErrorShape.defaultTransitPrefix)
        let (status, headers, body) = rendered(as: shape, requestID: tracking?.id)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
