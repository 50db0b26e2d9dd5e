import Foundation
import Keyward
import KeywardCrypto
import SwiftASN1
import X509

/// A throwaway certificate authority for `keyward serve --dev` and the tests: a P-256 CA that
/// issues server certificates (for `localhost`, 127.0.0.1 and ::1) and client certificates
/// (for mTLS), all short-lived.
public struct DevelopmentPKI: Sendable {
    /// A certificate and its private key, both PEM.
    public struct Issued: Sendable {
        public let certificatePEM: String
        public let privateKeyPEM: String
        /// SHA-256 of the certificate's DER, lowercase hex with colons (what `--dev` prints and
        /// what a client pins).
        public let fingerprint: String
        /// The certificate's DER.
        public let der: [UInt8]
    }

    /// The CA certificate (PEM), for clients to trust.
    public let caCertificatePEM: String
    private let caKey: Certificate.PrivateKey
    private let caName: DistinguishedName
    private let validity: TimeInterval

    /// A new CA named `name`, its certificates valid for `days`.
    public init(name: String = "Keyward development CA", days: Int = 30) throws(KeywardError) {
        validity = Double(days) * 86_400
        do {
            caKey = try Certificate.PrivateKey(pemEncoded: TLSPrivateKey.generateP256PEM())
            caName = try DistinguishedName {
                CommonName(name)
                OrganizationName("Keyward")
            }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: caKey.publicKey,
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
                issuer: caName, subject: caName,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                },
                issuerPrivateKey: caKey)
            caCertificatePEM = try certificate.serializeAsPEM().pemString
        } catch {
            throw .invalidArgument("could not create the development CA: \(error)")
        }
    }

    /// A server certificate for `localhost`, 127.0.0.1, ::1 and `hosts`.
    public func issueServer(hosts: [String] = []) throws(KeywardError) -> Issued {
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))]
        for host in hosts where host != "localhost" {
            if let address = IPv4Address(host) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address)))) } else { names.append(.dnsName(host)) }
        }
        return try issue(commonName: "localhost", usage: .serverAuth, alternativeNames: names)
    }

    /// A client certificate whose subject is `CN=<commonName>,O=Keyward`.
    public func issueClient(commonName: String) throws(KeywardError) -> Issued {
        try issue(commonName: commonName, usage: .clientAuth, alternativeNames: [])
    }

    /// The server certificate a previous `--dev` run wrote (`certificatePEM`, the chain, leaf
    /// first; and its `privateKeyPEM`), when it can serve again: its key is the certificate's, it names
    /// `hosts`, and it stays valid for at least `margin` more. Nil otherwise (a new CA and
    /// certificate are then issued). Reusing it keeps the CA that clients were told to trust.
    public static func reusableServer(certificatePEM: String, privateKeyPEM: String, hosts: [String],
                                      margin: TimeInterval = 86_400, now: Date = Date()) -> Issued? {
        let end = "-----END CERTIFICATE-----"
        guard let leafEnd = certificatePEM.range(of: end),
              let certificate = try? Certificate(pemEncoded: String(certificatePEM[..<leafEnd.upperBound])),
              let key = try? Certificate.PrivateKey(pemEncoded: privateKeyPEM),
              key.publicKey == certificate.publicKey,
              certificate.notValidBefore <= now, certificate.notValidAfter > now.addingTimeInterval(margin),
              let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for host in hosts where host != "localhost" {
            let wanted: GeneralName = IPv4Address(host).map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) } ?? .dnsName(host)
            guard names.contains(wanted) else { return nil }
        }
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(certificate)) != nil else { return nil }
        let der = serializer.serializedBytes
        return Issued(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM, fingerprint: SHA256Hash.hex(der, separator: ":"), der: der)
    }

    private func issue(commonName: String, usage: ExtendedKeyUsage.Usage, alternativeNames: [GeneralName]) throws(KeywardError) -> Issued {
        let keyPEM = TLSPrivateKey.generateP256PEM()
        do {
            let key = try Certificate.PrivateKey(pemEncoded: keyPEM)
            let subject = try DistinguishedName {
                CommonName(commonName)
                OrganizationName("Keyward")
            }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
                issuer: caName, subject: subject,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([usage])
                    if !alternativeNames.isEmpty { SubjectAlternativeNames(alternativeNames) }
                },
                issuerPrivateKey: caKey)
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let der = serializer.serializedBytes
            return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: keyPEM,
                          fingerprint: SHA256Hash.hex(der, separator: ":"), der: der)
        } catch {
            throw .invalidArgument("could not issue a development certificate: \(error)")
        }
    }
}

extension DevelopmentPKI {
    /// A certificate revocation list (PEM, `X509 CRL`) signed by this CA, revoking `certificates`
    /// (issued by it), issued at `thisUpdate` and due for renewal at `nextUpdate`.
    public func revocationList(revoking certificates: [Issued], thisUpdate: Date = Date(), nextUpdate: Date) throws(KeywardError) -> String {
        do {
            let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
            var tbs = DER.Serializer()
            try tbs.appendConstructedNode(identifier: .sequence) { list in
                try list.serialize(1)                                                   // version v2
                try list.appendConstructedNode(identifier: .sequence) { try $0.serialize(ecdsaWithSHA256) }
                try list.serialize(caName)
                try list.serialize(try RevocationList.generalizedTime(thisUpdate))
                try list.serialize(try RevocationList.generalizedTime(nextUpdate))
                if !certificates.isEmpty {
                    try list.appendConstructedNode(identifier: .sequence) { entries in
                        for issued in certificates {
                            let certificate = try Certificate(derEncoded: issued.der)
                            try entries.appendConstructedNode(identifier: .sequence) { entry in
                                try entry.serialize(certificate.serialNumber.bytes)
                                try entry.serialize(try RevocationList.generalizedTime(thisUpdate))
                            }
                        }
                    }
                }
            }
            let signature = try caKey.sign(bytes: tbs.serializedBytes, signatureAlgorithm: .ecdsaWithSHA256)
            var crl = DER.Serializer()
            try crl.appendConstructedNode(identifier: .sequence) { outer in
                outer.serializeRawBytes(tbs.serializedBytes)
                try outer.appendConstructedNode(identifier: .sequence) { try $0.serialize(ecdsaWithSHA256) }
                try outer.serialize(ASN1BitString(bytes: ArraySlice(signature.rawRepresentation)))
            }
            let body = Data(crl.serializedBytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            return "-----BEGIN X509 CRL-----\n\(body)\n-----END X509 CRL-----\n"
        } catch {
            throw .invalidArgument("could not issue a development revocation list: \(error)")
        }
    }
}

/// Dotted-quad IPv4 text as four bytes.
private func IPv4Address(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ".")
    guard parts.count == 4 else { return nil }
    var bytes: [UInt8] = []
    for part in parts {
        guard let byte = UInt8(part) else { return nil }
        bytes.append(byte)
    }
    return bytes
}
