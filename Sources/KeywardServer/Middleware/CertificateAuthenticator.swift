import Foundation
import Hummingbird
import Keyward
import NIOCore
import NIOSSL
import X509

/// Turns a connection's verified client certificate into a principal under `tls.clientPolicies`:
/// the one place the API (`AuthenticationMiddleware`) and the console's certificate sign-in do
/// it. A certificate authenticates only with the clientAuth extended key usage, not revoked by
/// the client CA's list (`tls.clientCRL`), and with a rule for its issuer and subject together.
struct CertificateAuthenticator: Sendable {
    /// `ISSUER | SUBJECT` (RFC 4514 strings) to policy; empty when mTLS is off.
    let policies: [String: AccessPolicy]
    /// The client-certificate revocation lists, if configured.
    let revocation: ClientRevocation?

    /// Whether any certificate can authenticate.
    var isEnabled: Bool { !policies.isEmpty }

    /// What a verified client certificate says of its holder: issuer and subject (RFC 4514),
    /// and whether it may authenticate a client (the clientAuth extended key usage).
    struct ClientIdentity: Sendable {
        let issuer: String
        let subject: String
        let clientAuth: Bool
        /// The issuer's name and the certificate's serial number, for the revocation check.
        let issuerName: DistinguishedName
        let serial: [UInt8]
        /// The certificate's notAfter: a credential its holder issues expires no later.
        var notValidAfter: Date? = nil
        /// The key of `tls.clientPolicies`: a rule binds an issuer and a subject together, so a
        /// second CA in the bundle cannot issue a certificate that passes for the same subject.
        var key: String { "\(issuer) | \(subject)" }
    }

    /// The verified client certificate's identity, if the connection is TLS with one. An HTTP/1.1
    /// request's channel is the TLS connection; an HTTP/2 stream's parent is. (A connection's
    /// own parent is the listening socket, which holds no TLS handler.)
    func identity(_ context: KeywardRequestContext) async throws -> ClientIdentity? {
        for channel in [context.channel, context.channel.parent].compactMap({ $0 }) {
            // nil both when the channel has no TLS handler and when the peer sent no certificate.
            guard let certificate = try? await channel.nioSSL_peerCertificate().get() else { continue }
            let parsed = try Certificate(derEncoded: try certificate.toDERBytes())
            let usages = (try? parsed.extensions.extendedKeyUsage).flatMap { $0 }
            return ClientIdentity(issuer: parsed.issuer.description, subject: parsed.subject.description,
                                  clientAuth: usages?.contains(.clientAuth) ?? false, issuerName: parsed.issuer, serial: RevocationList.serial(parsed.serialNumber.bytes),
                                  notValidAfter: parsed.notValidAfter)
        }
        return nil
    }

    /// The principal `identity` authenticates as; `unauthenticated` naming why it does not
    /// (no clientAuth, revoked, no rule), 503 when the revocation list cannot be read again.
    func principal(_ identity: ClientIdentity) throws(APIError) -> Principal {
        guard identity.clientAuth else {
            throw APIError.unauthenticated("the client certificate '\(identity.subject)' lacks the clientAuth extended key usage")
        }
        if let revocation {
            let refusal: String?
            do { refusal = try revocation.refusal(serial: identity.serial, issuer: identity.issuerName) } catch {
                throw APIError("unavailable", .serviceUnavailable, "the client revocation list could not be read again: \(error.description)", retryAfter: 5)
            }
            if let refusal { throw APIError.unauthenticated(refusal) }
        }
        guard let policy = policies[identity.key] else {
            throw APIError.unauthenticated("client certificate '\(identity.key)' (issuer | subject) has no policy; add it under tls.clientPolicies")
        }
        return Principal(name: "mtls:\(identity.key)", policy: policy, expiresAt: identity.notValidAfter)
    }
}
