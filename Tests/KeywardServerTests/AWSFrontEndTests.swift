import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
import KeywardAPI
import KeywardCrypto
@testable import KeywardServer
import KeywardServiceTestSupport
import NIOCore
import Testing

/// The AWS KMS front end's own checks: Signature Version 4 exactly as botocore computes it, and
/// AWS-shaped refusals. The AWS clients themselves run in scripts/clients/aws_kms.py.
@Suite("AWS KMS front end")
struct AWSFrontEndTests {
    /// A request botocore 1.43 signed (`SigV4Auth(...).add_auth` at a fixed time) with the
    /// secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, and the signature it computed.
    static let body = #"{"KeyId": "alias/app", "Plaintext": "aGVsbG8="}"#
    static let botocoreSignature = "53f0a693bdcae2fd2eafe0c7c617e0f76c863ba01c33aa06029892e6a05cd4a5"
    static let authorization = "AWS4-HMAC-SHA256 Credential=KWAAAAAAAAAAAAAAAAAAAAAAAAAA/20261204/us-east-1/kms/aws4_request, "
        + "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + botocoreSignature
    static let signedAt = Date(timeIntervalSince1970: 1_796_387_445)  // 2026-12-04T12:30:45Z

    static func request(body: String = body, target: String = "TrentService.Encrypt", date: String = "20261204T123045Z",
                        authority: String = "kms.example.test:8443", extra: [String: String] = [:]) -> Request {
        var fields = HTTPFields()
        fields[.contentType] = "application/x-amz-json-1.1"
        fields[HTTPField.Name("X-Amz-Target")!] = target
        fields[HTTPField.Name("X-Amz-Date")!] = date
        fields[.authorization] = authorization
        for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
        let head = HTTPRequest(method: .post, scheme: "https", authority: authority, path: "/", headerFields: fields)
        return Request(head: head, body: .init(buffer: ByteBuffer(string: body)))
    }

    static func verifies(_ request: Request, body: String = body, now: Date = signedAt, region: String = "us-east-1",
                         authorization: String = authorization) throws -> Bool {
        let parsed = try SigV4Authorization.parse(authorization)
        let toSign = try SigV4Request.stringToSign(request, body: ByteBuffer(string: body), authorization: parsed, region: region, skew: 300, now: now)
        let secret = try SecretBytes(copying: Array("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".utf8))
        return try AWSSigningKey(secret: secret, date: parsed.date, region: parsed.region, service: "kms").verifies(parsed.signature, for: toSign)
    }

    @Test("a request botocore signed verifies: the canonical request, string to sign and key schedule are AWS's")
    func botocoreSignatureVerifies() throws {
        #expect(try Self.verifies(Self.request()))
        #expect(try SigV4Authorization.parse(Self.authorization).signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-target"])
    }

    @Test("attack: the signed request altered in its body, its target, its host or its date no longer verifies")
    func alteredRequestsFail() throws {
        let other = #"{"KeyId": "alias/app", "Plaintext": "aGVsbG9="}"#
        #expect(try !Self.verifies(Self.request(body: other), body: other))
        #expect(try !Self.verifies(Self.request(target: "TrentService.Decrypt")))
        #expect(try !Self.verifies(Self.request(authority: "evil.example.test:8443")))
        #expect(try !Self.verifies(Self.request(date: "20261204T123046Z"), now: Self.signedAt))
    }

    @Test("attack: a body the signature does not cover is refused: UNSIGNED-PAYLOAD, a declared payload hash that is not the body's, an unsigned X-Amz-Target or other x-amz-* header")
    func unsignedPartsRefused() throws {
        func type(_ body: () throws -> Bool) -> String? {
            do { _ = try body(); return nil } catch let error as APIError { return error.awsType } catch { return "\(error)" }
        }
        let bodyHash = Hex.encode(SHA256Hash.hash(Array(Self.body.utf8)))
        let withHash = "AWS4-HMAC-SHA256 Credential=KWAAAAAAAAAAAAAAAAAAAAAAAAAA/20261204/us-east-1/kms/aws4_request, "
            + "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target, Signature=" + Self.botocoreSignature
        // A captured request replayed with another body under its declared hash, or one that
        // never signed its body: the signature must not be checked against the declared value.
        let other = #"{"KeyId": "alias/other", "Plaintext": "aGVsbG8="}"#
        for declared in ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", bodyHash] {
            let request = Self.request(body: other, extra: ["X-Amz-Content-SHA256": declared])
            #expect(type { try Self.verifies(request, body: other, authorization: withHash) } == "InvalidSignatureException", "\(declared)")
        }
        // The body's own hash, declared (upper or lower case), is what the signature covers.
        #expect(type { try Self.verifies(Self.request(extra: ["X-Amz-Content-SHA256": bodyHash.uppercased()]), authorization: withHash) } == nil)
        // The operation is chosen by X-Amz-Target: a signature that leaves it out would let a
        // captured DescribeKey be replayed as ScheduleKeyDeletion.
        let noTarget = "AWS4-HMAC-SHA256 Credential=KWAAAAAAAAAAAAAAAAAAAAAAAAAA/20261204/us-east-1/kms/aws4_request, "
            + "SignedHeaders=content-type;host;x-amz-date, Signature=" + Self.botocoreSignature
        #expect(type { try Self.verifies(Self.request(target: "TrentService.ScheduleKeyDeletion"), authorization: noTarget) } == "IncompleteSignature")
        #expect(type { try Self.verifies(Self.request(extra: ["X-Amz-Security-Token": "x"])) } == "IncompleteSignature")
        // Headers outside x-amz-* need not be signed (botocore leaves out User-Agent).
        #expect(try Self.verifies(Self.request(extra: ["User-Agent": "botocore", "X-Amzn-Trace-Id": "Root=1"])))
    }

    @Test("a stale signature, another region's scope and a missing date are refused with AWS's error types")
    func scopeAndTime() throws {
        func type(_ body: () throws -> Bool) -> String? {
            do { _ = try body(); return nil } catch let error as APIError { return error.awsType } catch { return "\(error)" }
        }
        #expect(type { try Self.verifies(Self.request(), now: Self.signedAt.addingTimeInterval(301)) } == "InvalidSignatureException")
        #expect(type { try Self.verifies(Self.request(), now: Self.signedAt.addingTimeInterval(-301)) } == "InvalidSignatureException")
        #expect(type { try Self.verifies(Self.request(), region: "eu-west-1") } == "InvalidSignatureException")
        #expect(type { try Self.verifies(Self.request(date: "2026-12-04")) } == "IncompleteSignature")
        for header in ["", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00",
                       "AWS4-HMAC-SHA256 Credential=KW/20261204/us-east-1/kms, SignedHeaders=host, Signature=" + String(repeating: "0", count: 64),
                       "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + String(repeating: "0", count: 64)] {
            #expect(type { _ = try SigV4Authorization.parse(header); return true } == "IncompleteSignature", "\(header)")
        }
    }

    @Test("attack: a body or key policy naming a field twice is a ValidationException or MalformedPolicyDocumentException naming it, also for two spellings of one context key")
    func repeatedFieldsRefused() throws {
        func refusal(_ body: String) -> APIError? {
            do throws(APIError) { _ = try AWSInput(ByteBuffer(string: body)); return nil } catch { return error }
        }
        let bodies: [(String, String)] = [
            (#"{"KeyId":"alias/a","Plaintext":"AQ==","KeyId":"alias/b"}"#, "KeyId"),
            (#"{"KeyId":"k","Plaintext":"AQ==","EncryptionContext":{"tenant":"a","tenant":"b"}}"#, "EncryptionContext.tenant"),
            // Distinct bytes that are one String: the flat reader gives up, the slow path names it.
            ("{\"KeyId\":\"k\",\"Plaintext\":\"AQ==\",\"EncryptionContext\":{\"\u{E9}\":\"a\",\"e\u{301}\":\"b\"}}", "EncryptionContext.\u{E9}"),
            (#"{"KeyId":"k","GrantTokens":[],"KeyId":"j"}"#, "KeyId"),
        ]
        for (body, field) in bodies {
            let error = refusal(body)
            #expect(error?.awsType == "ValidationException" && error?.message.contains("field '\(field)' appears more than once") == true, "\(body): \(String(describing: error))")
        }
        #expect(refusal(#"{"KeyId":"k","EncryptionContext":{"tenant":"a","Tenant":"b"}}"#) == nil)
        #expect(FlatJSONObject.read(ByteBuffer(string: "{\"c\":{\"\u{E9}\":\"a\",\"e\u{301}\":\"b\"}}")) == nil)
        #expect(FlatJSONObject.read(ByteBuffer(string: "{\"\u{E9}\":\"a\",\"e\u{301}\":\"b\"}")) == nil)

        let arn = "arn:aws:kms:us-east-1:111122223333:key/k"
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*","Effect":"Deny"}]}"#
        do throws(APIError) {
            _ = try AWSKeyPolicyDocument.parse(policy, keyARN: arn, accountID: "111122223333")
            Issue.record("a policy with Effect twice was accepted")
        } catch {
            #expect(error.awsType == "MalformedPolicyDocumentException" && error.message.contains("'Statement[0].Effect' appears more than once"), "\(error.message)")
        }
        let single = policy.replacingOccurrences(of: #","Effect":"Deny""#, with: "")
        #expect(throws: Never.self) { try AWSKeyPolicyDocument.parse(single, keyARN: arn, accountID: "111122223333") }
    }

    @Test("POST / answers in AWS's shape: unsigned, bearer-authenticated and garbled requests get __type, x-amzn-RequestId and the AWS content type, never a Keyward or HTML error")
    func awsShapedRefusals() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let cases: [(HTTPFields, String)] = [
                ([HTTPField.Name("X-Amz-Target")!: "TrentService.ListKeys"], "MissingAuthenticationTokenException"),
                ([HTTPField.Name("X-Amz-Target")!: "TrentService.ListKeys", .authorization: "Bearer \(fixture.rootToken)"], "IncompleteSignature"),
                // Well-formed, but by an access key this store never issued (checked before the
                // rest of the request, so nothing more is read).
                ([.authorization: Self.authorization], "UnrecognizedClientException"),
                ([HTTPField.Name("X-Amz-Target")!: "TrentService.ListKeys", .authorization: Self.authorization,
                  HTTPField.Name("X-Amz-Date")!: "20261204T123045Z"], "UnrecognizedClientException"),
            ]
            for (headers, expected) in cases {
                let reply = try await client.call(.post, "/", token: nil, "{}", headers: headers)
                #expect(reply.status == .badRequest && reply.json["__type"] as? String == expected, "\(headers): \(reply.status) \(reply.text)")
                #expect(reply.headers[.contentType] == "application/x-amz-json-1.1" && reply.headers[HTTPField.Name("x-amzn-RequestId")!] != nil)
            }
        }
    }
}
