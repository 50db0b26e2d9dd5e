import Foundation
import Hummingbird
import HTTPTypes
import KeywardAPI
import KeywardCrypto
import NIOCore

/// An AWS Signature Version 4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex`.
struct SigV4Authorization: Equatable {
    let accessKeyID: String
    let date: String
    let region: String
    let service: String
    /// Lowercase header names, in the order signed (sorted by the signer).
    let signedHeaders: [String]
    let signature: String

    static let algorithm = "AWS4-HMAC-SHA256"

    /// Whether `header` claims SigV4 (so the AWS front end, not the bearer check, judges it).
    static func claims(_ header: String) -> Bool { header.hasPrefix(algorithm) }

    /// Parses the header; `IncompleteSignature` names what is missing or malformed. Reads the
    /// header's bytes (it is on every AWS request's path).
    static func parse(_ header: String) throws(APIError) -> SigV4Authorization {
        let bytes = Array(header.utf8)
        let prefix = Array((algorithm + " ").utf8)
        guard bytes.count > prefix.count, bytes[..<prefix.count].elementsEqual(prefix) else {
            throw AWSFault.incompleteSignature("the Authorization header must start with \(algorithm)")
        }
        var credential: ArraySlice<UInt8>?, signed: ArraySlice<UInt8>?, signature: ArraySlice<UInt8>?
        for part in bytes[prefix.count...].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let item = trimmedSpaces(part)
            guard let equals = item.firstIndex(of: UInt8(ascii: "=")) else {
                throw AWSFault.incompleteSignature("'\(String(decoding: item.prefix(40), as: UTF8.self))' is not NAME=VALUE")
            }
            let name = item[..<equals], value = item[(equals + 1)...]
            if name.elementsEqual("Credential".utf8) { credential = value }
            else if name.elementsEqual("SignedHeaders".utf8) { signed = value }
            else if name.elementsEqual("Signature".utf8) { signature = value }
        }
        guard let credential, let signed, let signature else {
            throw AWSFault.incompleteSignature("the Authorization header needs Credential, SignedHeaders and Signature")
        }
        let scope = credential.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard scope.count == 5, scope[4].elementsEqual("aws4_request".utf8), !scope[0].isEmpty, scope[1].count == 8,
              scope[1].allSatisfy({ (48...57).contains($0) }) else {
            throw AWSFault.incompleteSignature("Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request")
        }
        let headers = signed.split(separator: UInt8(ascii: ";")).map { String(decoding: $0, as: UTF8.self).lowercased() }
        guard !headers.isEmpty, signature.count == 64, signature.allSatisfy({ isHexDigit($0) }) else {
            throw AWSFault.incompleteSignature("SignedHeaders must list headers and Signature be 64 hex digits")
        }
        let text = { (slice: ArraySlice<UInt8>) in String(decoding: slice, as: UTF8.self) }
        return SigV4Authorization(accessKeyID: text(scope[0]), date: text(scope[1]), region: text(scope[2]), service: text(scope[3]),
                                  signedHeaders: headers, signature: text(signature))
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...70).contains(byte) || (97...102).contains(byte)
    }

    /// `bytes` without spaces and tabs at either end.
    static func trimmedSpaces(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex, end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return bytes[start..<end]
    }
}

/// The string a SigV4 signature covers, rebuilt from the request as the SDKs build it: the
/// canonical request (method, URI, sorted query, the signed headers' canonical values, the
/// payload's SHA-256), hashed under the algorithm, time and scope.
enum SigV4Request {
    /// Checks the request's time and scope against this server (`region`, service `kms`, within
    /// `skew` of now) and returns the string to sign.
    static func stringToSign(_ request: Request, body: ByteBuffer, authorization: SigV4Authorization,
                             region: String, skew: TimeInterval, now: Date = Date()) throws(APIError) -> [UInt8] {
        let headers = request.headers
        guard let stamp = headers[HTTPField.Name("X-Amz-Date")!] else {
            throw AWSFault.incompleteSignature("the request needs an X-Amz-Date header")
        }
        guard let time = parseStamp(stamp) else { throw AWSFault.incompleteSignature("X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z'") }
        guard abs(time.timeIntervalSince(now)) <= skew else {
            throw AWSFault.invalidSignature("Signature expired: \(stamp) is more than \(Int(skew)) s from the server's time")
        }
        guard stamp.hasPrefix(authorization.date) else { throw AWSFault.invalidSignature("the credential's date does not match X-Amz-Date") }
        guard authorization.region == region else {
            throw AWSFault.invalidSignature("the credential is scoped to region '\(authorization.region.prefix(40))'; this endpoint serves '\(region)'")
        }
        guard authorization.service == "kms" else { throw AWSFault.invalidSignature("the credential is scoped to service '\(authorization.service.prefix(40))', not kms") }
        guard authorization.signedHeaders.contains("host"), authorization.signedHeaders.contains("x-amz-date"),
              authorization.signedHeaders.contains("x-amz-target") else {
            throw AWSFault.incompleteSignature("SignedHeaders must include host, x-amz-date and x-amz-target")
        }
        // Every x-amz-* header is signed, as S3 demands: none of them changes the request's
        // meaning behind the signature's back.
        for field in headers where field.name.canonicalName.hasPrefix("x-amz-") {
            guard authorization.signedHeaders.contains(field.name.canonicalName) else {
                throw AWSFault.incompleteSignature("the header \(field.name.canonicalName.prefix(40)) is present but not signed; sign every x-amz-* header")
            }
        }
        // The payload hash is always the body's own: a declared X-Amz-Content-SHA256 must equal
        // it, so UNSIGNED-PAYLOAD, a streamed payload and a captured request's hash over another
        // body are refused rather than trusted.
        let payloadHash = hex(body.withUnsafeReadableBytes { SHA256Hash.hash($0) })
        let declared = headers[HTTPField.Name("X-Amz-Content-SHA256")!]
        if let declared, declared.lowercased() != payloadHash {
            throw AWSFault.invalidSignature("X-Amz-Content-SHA256 is not the SHA-256 of the body; this endpoint takes only a signed payload (no UNSIGNED-PAYLOAD or streaming)")
        }
        var canonical: [UInt8] = []
        canonical.reserveCapacity(512)
        canonical += request.method.rawValue.utf8
        canonical.append(0x0A)
        canonical += canonicalURI(request.uri.path).utf8
        canonical.append(0x0A)
        canonical += canonicalQuery(request.uri.query).utf8
        canonical.append(0x0A)
        for name in authorization.signedHeaders {
            canonical += name.utf8
            canonical.append(UInt8(ascii: ":"))
            if name == "host" {
                canonical += (request.head.authority ?? "").utf8
            } else {
                guard let field = HTTPField.Name(name) else { throw AWSFault.incompleteSignature("'\(name.prefix(40))' is not a header name") }
                var first = true
                for value in headers[values: field] {
                    if !first { canonical.append(UInt8(ascii: ",")) }
                    appendTrimmed(value, to: &canonical)
                    first = false
                }
                guard !first else { throw AWSFault.incompleteSignature("signed header '\(name.prefix(40))' is missing") }
            }
            canonical.append(0x0A)
        }
        canonical.append(0x0A)
        for (index, name) in authorization.signedHeaders.enumerated() {
            if index > 0 { canonical.append(UInt8(ascii: ";")) }
            canonical += name.utf8
        }
        canonical.append(0x0A)
        canonical += (declared ?? payloadHash).utf8
        var toSign: [UInt8] = []
        toSign.reserveCapacity(160)
        toSign += SigV4Authorization.algorithm.utf8
        toSign.append(0x0A)
        toSign += stamp.utf8
        toSign.append(0x0A)
        toSign += authorization.date.utf8
        toSign.append(UInt8(ascii: "/"))
        toSign += authorization.region.utf8
        toSign.append(UInt8(ascii: "/"))
        toSign += authorization.service.utf8
        toSign += "/aws4_request\n".utf8
        toSign += hex(SHA256Hash.hash(canonical)).utf8
        return toSign
    }

    /// A header value, trimmed, with runs of spaces inside collapsed to one, appended.
    static func appendTrimmed(_ value: String, to out: inout [UInt8]) {
        let trimmed = trimmedSpaces(Array(value.utf8)[...])
        var space = false
        for byte in trimmed {
            if byte == 0x20 {
                if !space { out.append(0x20) }
                space = true
            } else {
                out.append(byte)
                space = false
            }
        }
    }

    private static func trimmedSpaces(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> { SigV4Authorization.trimmedSpaces(bytes) }

    /// `20150830T123600Z` as a date (UTC, by arithmetic: it is on every request's path).
    static func parseStamp(_ stamp: String) -> Date? {
        let digits = Array(stamp.utf8)
        guard digits.count == 16, digits[8] == UInt8(ascii: "T"), digits[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard (48...57).contains(digits[index]) else { return nil }
                value = value * 10 + Int(digits[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    /// The path, each segment percent-encoded with AWS's unreserved set (`/` for an empty path).
    static func canonicalURI(_ path: String) -> String {
        guard !path.isEmpty, path != "/" else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            encode(String(segment).removingPercentEncoding ?? String(segment))
        }.joined(separator: "/")
    }

    /// The query's parameters, decoded, re-encoded and sorted by name, then value.
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        var pairs: [(name: String, value: String)] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            pairs.append((encode(name), encode(value)))
        }
        pairs.sort { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        return pairs.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }

    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
}
