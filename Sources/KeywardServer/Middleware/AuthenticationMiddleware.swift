import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardCrypto
import NIOCore
import NIOSSL
import X509

/// Establishes who is asking: a bearer token (`Authorization: Bearer kw_...`), or else the
/// subject of the client certificate when mTLS is on and the subject has a configured policy.
/// Then applies the principal's rate limit. Probes, metrics and the OpenAPI document need no
/// credential; every other route does, and a request without a valid one gets 401.
///
/// Every attempt that needs a lookup (a token not verified within the cache's TTL, a client
/// certificate, no credential at all) is charged to its peer address (see `trustedProxies`)
/// before the lookup, and given back when it succeeds (requests that join a lookup of the same
/// token already under way are charged only if it fails; see `TokenAuthenticator.authenticate`): a peer that has failed `failedLogins.burst` times
/// gets 429 without any lookup, at most `failedLogins.perSecond` attempts a second after that,
/// and cannot flood the audit log, since a 429 refused this early is one cheap entry per request
/// admitted by the limit.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    let tokens: TokenAuthenticator
    /// Requests per authenticated principal.
    let limiter: RateLimiter
    /// Failed authentications per peer address.
    let failures: RateLimiter
    /// mTLS principals (`tls.clientPolicies`); off when no rule is configured.
    let certificates: CertificateAuthenticator
    /// The AWS front end's region and clock skew.
    let aws: ServerConfiguration.AWSSettings
    /// The largest body read (an AWS request's body is read here, to check its signature).
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Probes need no credential; the console signs its users in with sessions (`Console`).
        if RequestAuditMiddleware.unaudited.contains(request.uri.path) || request.uri.path.hasPrefix("/ui/") || request.uri.path == "/ui" {
            return try await next(request, context)
        }
        var context = context
        let peer = "peer:" + (context.peer ?? "unknown")
        if AWSKMSRoutes.isAWS(request, context: context) {
            return try await awsSignature(request, context: context, peer: peer, next: next)
        }
        if let header = Self.credentialHeader(request, transit: context.tracking?.transit == true) {
            guard let text = Self.bearerToken(header) else {
                try charge(peer)
                throw APIError.unauthenticated("the Authorization header must be 'Bearer <token>'")
            }
            if let principal = tokens.cached(text) {
                // Verified within the TTL: no lookup happens, so nothing is charged.
                context.principal = principal
            } else {
                context.principal = try await tokens.authenticate(text, attempt: .init(
                    charge: { () throws(APIError) in try charge(peer) }, refund: { failures.refund(peer) }))
            }
        } else if certificates.isEnabled, let identity = try await certificates.identity(context) {
            try charge(peer)
            context.principal = try certificates.principal(identity)
            failures.refund(peer)
        } else {
            try charge(peer)
            throw APIError.unauthenticated("a bearer token is required: Authorization: Bearer kw_...")
        }
        context.tracking?.authenticated(as: context.principal!.name)
        let principal = context.principal!.name
        if let wait = limiter.admit(principal) {
            throw APIError.rateLimited(wait)
        }
        defer { chargeOperations(context, principal) }
        return try await next(request, context)
    }

    /// Charges `principal` for the operations its request performed beyond the one `admit`
    /// took (`AuditReceipt.operations`: a batch's items each), so the rate limit counts a batch
    /// of a thousand signatures as a thousand.
    private func chargeOperations(_ context: Context, _ principal: String) {
        guard let performed = context.tracking?.receipt.operations, performed > 1 else { return }
        limiter.charge(principal, performed - 1)
    }

    /// An AWS KMS request: its Signature Version 4 checked against the access key's secret
    /// (`SigV4Request`), over the body, which is read here (within `maxBodyBytes`). Failures are
    /// charged to the peer like failed token checks, and answered in AWS's error types.
    private func awsSignature(_ request: Request, context: Context, peer: String, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        var context = context
        guard let header = request.headers[.authorization] else {
            try charge(peer)
            throw AWSFault.missingAuthentication()
        }
        let authorization: SigV4Authorization
        do {
            authorization = try SigV4Authorization.parse(header)
        } catch {
            try charge(peer)
            throw error
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw APIError.bodyTooLarge(maxBodyBytes)
        }
        let key = try await tokens.awsKey(authorization.accessKeyID, attempt: .init(
            charge: { () throws(APIError) in try charge(peer) }, refund: { failures.refund(peer) }))
        do {
            let toSign = try SigV4Request.stringToSign(request, body: body, authorization: authorization, region: aws.region, skew: aws.clockSkew)
            guard try key.signingKey(date: authorization.date, region: authorization.region).verifies(authorization.signature, for: toSign) else {
                throw AWSFault.invalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
            }
        } catch {
            try charge(peer)
            throw error
        }
        context.principal = key.principal
        context.tracking?.authenticated(as: key.principal.name)
        if let wait = limiter.admit(key.principal.name) {
            var throttled = APIError.rateLimited(wait)
            throttled.awsType = "ThrottlingException"
            throw throttled
        }
        defer { chargeOperations(context, key.principal.name) }
        return try await next(request, context)
    }

    /// `X-Vault-Token`: Vault clients send the token here.
    static let vaultToken = HTTPField.Name("X-Vault-Token")!

    /// The header carrying the request's token, as `Bearer <token>`. On the Transit API, Vault's
    /// order: `X-Vault-Token` first, then an `Authorization` that is a bearer token (another
    /// scheme, such as a proxy's Basic credentials, is not Keyward's and is passed over). On
    /// Keyward's own API, `Authorization` first (any scheme, so a wrong one is refused by name),
    /// then `X-Vault-Token`.
    static func credentialHeader(_ request: Request, transit: Bool) -> String? {
        let vault = request.headers[vaultToken].map { "Bearer " + $0 }
        guard transit else { return request.headers[.authorization] ?? vault }
        if let vault { return vault }
        return request.headers[values: .authorization].first { bearerToken($0) != nil }
    }

    /// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, spaces
    /// after it skipped), or nil for any other scheme or an empty token.
    static func bearerToken(_ header: String) -> String? {
        let utf8 = header.utf8
        guard utf8.count > 7 else { return nil }
        var index = utf8.startIndex
        for expected in "bearer ".utf8 {
            let byte = utf8[index]
            // ASCII letters compare without case; the space must be a space.
            guard byte == expected || (expected != 0x20 && byte | 0x20 == expected) else { return nil }
            index = utf8.index(after: index)
        }
        while index < utf8.endIndex, utf8[index] == 0x20 { index = utf8.index(after: index) }
        guard index < utf8.endIndex else { return nil }
        return String(header[index...])
    }

    /// Charges one attempt to `peer` before any lookup: 429 when it has none left.
    private func charge(_ peer: String) throws(APIError) {
        if let wait = failures.admit(peer) { throw APIError.tooManyFailures(wait) }
    }
}
