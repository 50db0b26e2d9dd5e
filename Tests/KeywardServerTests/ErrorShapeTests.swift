import HTTPTypes
@testable import KeywardServer
import Testing

@Suite("Error shapes by front end")
struct ErrorShapeTests {
    @Test("a request's front end is told by its method and path alone: Transit under its mount (query or not), AWS at POST /, else native")
    func frontEndByMethodAndPath() {
        let prefix = "/v1/transit/"
        #expect(ErrorShape.of(method: .post, path: "/v1/transit/encrypt/k", transitPrefix: prefix) == .transit)
        #expect(ErrorShape.of(method: .get, path: "/v1/transit/keys?list=true", transitPrefix: prefix) == .transit)
        // A prefix is a whole path segment: a neighbour's path is not Transit's.
        #expect(ErrorShape.of(method: .post, path: "/v1/transitx/encrypt/k", transitPrefix: prefix) == .native)
        #expect(ErrorShape.of(method: .post, path: "/v1/transit", transitPrefix: prefix) == .native)
        #expect(ErrorShape.of(method: .post, path: "/v1/vault/encrypt/k", transitPrefix: "/v1/vault/") == .transit)
        #expect(ErrorShape.of(method: .post, path: "/v1/transit/encrypt/k", transitPrefix: "/v1/vault/") == .native)
        #expect(ErrorShape.of(method: .post, path: "/", transitPrefix: prefix) == .aws)
        #expect(ErrorShape.of(method: .post, path: "/?x=1", transitPrefix: prefix) == .aws)
        #expect(ErrorShape.of(method: .get, path: "/", transitPrefix: prefix) == .native)
        #expect(ErrorShape.of(method: .post, path: "/v1/keys", transitPrefix: prefix) == .native)
    }

    @Test("each shape renders the same error as its front end does: the native code, Vault's errors list and status, AWS's type and request id")
    func rendering() {
        let error = APIError.bodyTooLarge(10)
        let native = error.rendered(as: .native, requestID: "r-1")
        #expect(native.status == .contentTooLarge && String(decoding: native.body, as: UTF8.self).hasPrefix(#"{"error":{"code":"body_too_large""#))
        let transit = error.rendered(as: .transit, requestID: "r-1")
        #expect(transit.status == .contentTooLarge && String(decoding: transit.body, as: UTF8.self) == #"{"errors":["the request body is larger than 10 bytes; use a data key for large data"]}"#)
        let aws = error.rendered(as: .aws, requestID: "r-1")
        #expect(aws.status == .badRequest && aws.headers[.contentType] == "application/x-amz-json-1.1" && aws.headers[HTTPField.Name("x-amzn-RequestId")!] == "r-1")
        #expect(String(decoding: aws.body, as: UTF8.self).hasPrefix(#"{"__type":"ValidationException""#))
        // A refusal that asks the client to come back says when, in every shape.
        for shape in [ErrorShape.native, .transit, .aws] {
            #expect(APIError.rateLimited(7).rendered(as: shape, requestID: nil).headers[.retryAfter] == "7", "\(shape)")
        }
    }
}
