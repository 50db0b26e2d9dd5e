import Foundation
import Hummingbird
import HTTPTypes
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

    /// Parses the header; `IncompleteSignature` names what is missing or malformed.
    static func parse(_ header: String) throws(APIError) -> SigV4Authorization {
        guard header.hasPrefix(algorithm + " ") else { throw AWSFault.incompleteSignature("the Authorization header must start with \(algorithm)") }
        var fields: [String: String] = [:]
        for part in header.dropFirst(algorithm.count + 1).split(separator: ",") {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let equals = item.firstIndex(of: "=") else { throw AWSFault.incompleteSignature("'\(item.prefix(40))' is not NAME=VALUE") }
            fields[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        guard let credential = fields["Credential"], let signed = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw AWSFault.incompleteSignature("the Authorization header needs Credential, SignedHeaders and Signature")
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request", !scope[0].isEmpty, scope[1].count == 8, scope[1].allSatisfy(\.isNumber) else {
            throw AWSFault.incompleteSignature("Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request")
        }
        let headers = signed.split(separator: ";").map { $0.lowercased() }
        guard !headers.isEmpty, signature.count == 64, signature.allSatisfy(\.isHexDigit) else {
            throw AWSFault.incompleteSignature("SignedHeaders must list headers and Signature be 64 hex digits")
        }
        return SigV4Authorization(accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3], signedHeaders: headers, signature: signature)
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
        guard authorization.signedHeaders.contains("host"), authorization.signedHeaders.contains("x-amz-date") else {
            throw AWSFault.incompleteSignature("SignedHeaders must include host and x-amz-date")
        }
        var canonical = request.method.rawValue + "\n" + canonicalURI(request.uri.path) + "\n" + canonicalQuery(request.uri.query) + "\n"
        for name in authorization.signedHeaders {
            let value: String
            if name == "host" {
                value = request.head.authority ?? ""
            } else {
                guard let field = HTTPField.Name(name) else { throw AWSFault.incompleteSignature("'\(name.prefix(40))' is not a header name") }
                let values = headers[values: field]
                guard !values.isEmpty else { throw AWSFault.incompleteSignature("signed header '\(name.prefix(40))' is missing") }
                value = values.map(trimmed).joined(separator: ",")
            }
            canonical += name + ":" + value + "\n"
        }
        canonical += "\n" + authorization.signedHeaders.joined(separator: ";") + "\n"
        canonical += headers[HTTPField.Name("X-Amz-Content-SHA256")!] ?? hex(SHA256Hash.hash(Array(body.readableBytesView)))
        let scope = "\(authorization.date)/\(authorization.region)/\(authorization.service)/aws4_request"
        let toSign = SigV4Authorization.algorithm + "\n" + stamp + "\n" + scope + "\n" + hex(SHA256Hash.hash(Array(canonical.utf8)))
        return Array(toSign.utf8)
    }

    /// `20150830T123600Z` as a date.
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
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15) else { return nil }
        var components = DateComponents(timeZone: TimeZone(identifier: "UTC"), year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        components.calendar = Calendar(identifier: .gregorian)
        guard components.isValidDate else { return nil }
        return components.date
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

    /// A header value trimmed, with runs of spaces inside collapsed to one.
    static func trimmed(_ value: String) -> String {
        var out = ""
        var space = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !space { out.append(" ") }
                space = true
            } else {
                out.append(character)
                space = false
            }
        }
        return out
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
