import Foundation
import Keyward
import KeywardCrypto
import SwiftASN1
import X509

/// A certificate revocation list (RFC 5280 §5), read from `tls.clientCRL`: the serial numbers an
/// issuer has revoked. A CRL is accepted only when its signature verifies under the public key
/// of a configured client CA whose subject is the CRL's issuer, so a CRL file cannot be forged
/// to revoke, or to un-revoke, anything.
struct RevocationList: Sendable {
    /// The CA that issued (and signed) the list.
    let issuer: DistinguishedName
    /// When it was issued.
    let thisUpdate: Date
    /// When the next list is due; past it, the list is stale and certificates of its issuer are
    /// refused until a fresh one is installed (fail closed).
    let nextUpdate: Date?
    /// Revoked serial numbers (`serial(_:)`).
    let revoked: Set<[UInt8]>

    /// A serial number's magnitude, big-endian, without leading zero bytes: DER pads a number
    /// whose high bit is set with a zero byte, and the two encodings must compare equal.
    static func serial(_ bytes: some Collection<UInt8>) -> [UInt8] { Array(bytes.drop(while: { $0 == 0 })) }

    /// Parses one DER-encoded CRL and checks its signature against `authorities`.
    ///
    /// - Throws: `invalidArgument` naming what is wrong: not a CRL, no configured CA by its
    ///   issuer's name, a signature algorithm Keyward does not check, a bad signature.
    init(derEncoded bytes: [UInt8], authorities: [Certificate]) throws(KeywardError) {
        let parsed: (tbs: ArraySlice<UInt8>, algorithm: ASN1ObjectIdentifier, signature: ArraySlice<UInt8>,
                     issuer: DistinguishedName, thisUpdate: Date, nextUpdate: Date?, revoked: Set<[UInt8]>)
        do {
            parsed = try DER.sequence(try DER.parse(bytes), identifier: .sequence) { nodes in
                guard let tbs = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsCertList") }
                let oid = try DER.sequence(try Self.next(&nodes), identifier: .sequence) { parts in
                    guard let first = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "empty algorithm") }
                    while parts.next() != nil {}  // parameters
                    return try ASN1ObjectIdentifier(derEncoded: first)
                }
                let signature = try ASN1BitString(derEncoded: try Self.next(&nodes))
                let fields = try Self.tbsFields(tbs)
                return (tbs.encodedBytes, oid, signature.bytes, fields.issuer, fields.thisUpdate, fields.nextUpdate, fields.revoked)
            }
        } catch {
            throw .invalidArgument("tls.clientCRL: not a DER certificate revocation list (\(error))")
        }
        guard let authority = authorities.first(where: { $0.subject == parsed.issuer }) else {
            throw .invalidArgument("tls.clientCRL: the CRL of '\(parsed.issuer)' has no CA of that name in tls.clientCA")
        }
        guard let algorithm = Self.algorithms[parsed.algorithm.description] else {
            throw .invalidArgument("tls.clientCRL: signature algorithm \(parsed.algorithm) is not one Keyward checks (ECDSA, RSA PKCS#1 with SHA-2, Ed25519)")
        }
        guard authority.publicKey.isValidSignature(parsed.signature, for: parsed.tbs, signatureAlgorithm: algorithm) else {
            throw .invalidArgument("tls.clientCRL: the CRL's signature does not verify under the public key of '\(parsed.issuer)'")
        }
        issuer = parsed.issuer
        thisUpdate = parsed.thisUpdate
        nextUpdate = parsed.nextUpdate
        revoked = parsed.revoked
    }

    /// The signature algorithms a CRL may use, by OID.
    private static let algorithms: [String: Certificate.SignatureAlgorithm] = [
        "1.2.840.10045.4.3.2": .ecdsaWithSHA256, "1.2.840.10045.4.3.3": .ecdsaWithSHA384, "1.2.840.10045.4.3.4": .ecdsaWithSHA512,
        "1.2.840.113549.1.1.11": .sha256WithRSAEncryption, "1.2.840.113549.1.1.12": .sha384WithRSAEncryption,
        "1.2.840.113549.1.1.13": .sha512WithRSAEncryption, "1.3.101.112": .ed25519,
    ]

    private static func next(_ nodes: inout ASN1NodeCollection.Iterator) throws -> ASN1Node {
        guard let node = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "the CRL ends early") }
        return node
    }

    /// TBSCertList: [version], signature, issuer, thisUpdate, [nextUpdate], [revokedCertificates], [[0] extensions].
    private static func tbsFields(_ node: ASN1Node) throws -> (issuer: DistinguishedName, thisUpdate: Date, nextUpdate: Date?, revoked: Set<[UInt8]>) {
        try DER.sequence(node, identifier: .sequence) { nodes in
            var current = try next(&nodes)
            if current.identifier == .integer { current = try next(&nodes) }      // version (v2)
            current = try next(&nodes)                                          // past the signature AlgorithmIdentifier
            let issuer = try DistinguishedName(derEncoded: current)
            let thisUpdate = try time(try next(&nodes))
            var nextUpdate: Date?
            var revoked = Set<[UInt8]>()
            while let field = nodes.next() {
                if field.identifier == .utcTime || field.identifier == .generalizedTime {
                    nextUpdate = try time(field)
                } else if field.identifier == .sequence {
                    try DER.sequence(field, identifier: .sequence) { entries in
                        while let entry = entries.next() {
                            let serial = try DER.sequence(entry, identifier: .sequence) { parts in
                                guard let number = parts.next(), number.identifier == .integer, case .primitive(let content) = number.content else {
                                    throw ASN1Error.invalidASN1Object(reason: "a revoked entry without a serial number")
                                }
                                while parts.next() != nil {}  // revocationDate and entry extensions
                                return RevocationList.serial(content)
                            }
                            revoked.insert(serial)
                        }
                    }
                }
                // [0] crlExtensions: nothing Keyward needs from them.
            }
            return (issuer, thisUpdate, nextUpdate, revoked)
        }
    }

    private static func time(_ node: ASN1Node) throws -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let components: DateComponents
        if node.identifier == .utcTime {
            let time = try UTCTime(derEncoded: node)
            components = DateComponents(year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes, second: time.seconds)
        } else {
            let time = try GeneralizedTime(derEncoded: node)
            components = DateComponents(year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes, second: time.seconds)
        }
        guard let date = calendar.date(from: components) else { throw ASN1Error.invalidASN1Object(reason: "a time out of range") }
        return date
    }

    /// `date` as a GeneralizedTime, to the second.
    static func generalizedTime(_ date: Date) throws -> GeneralizedTime {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return try GeneralizedTime(year: parts.year!, month: parts.month!, day: parts.day!, hours: parts.hour!, minutes: parts.minute!,
                                   seconds: parts.second!, fractionalSeconds: 0)
    }

    /// Reads every CRL in the file at `path` (PEM `X509 CRL` blocks, or one DER list).
    static func load(path: String, authorities: [Certificate]) throws(KeywardError) -> [RevocationList] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalidArgument("tls.clientCRL: cannot read \(path)") }
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains("-----BEGIN X509 CRL-----") else { return [try RevocationList(derEncoded: [UInt8](data), authorities: authorities)] }
        var lists: [RevocationList] = []
        for block in text.components(separatedBy: "-----BEGIN X509 CRL-----").dropFirst() {
            guard let end = block.range(of: "-----END X509 CRL-----"),
                  let der = Data(base64Encoded: block[..<end.lowerBound].filter { !$0.isWhitespace }) else {
                throw .invalidArgument("tls.clientCRL: \(path) holds a PEM CRL block that does not decode")
            }
            lists.append(try RevocationList(derEncoded: [UInt8](der), authorities: authorities))
        }
        return lists
    }
}
