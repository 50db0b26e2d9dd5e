import Foundation
import Hummingbird

/// A console form's fields, from an `application/x-www-form-urlencoded` body (what an HTML form
/// posts). At most `limit` bytes; a field named twice, a name that is not a plain identifier, or
/// bad percent-encoding is a 400 naming the problem. Values are never logged.
struct FormBody: Sendable {
    /// The largest form read (descriptions and tags are the largest fields).
    static let limit = 64 * 1024

    private let fields: [String: String]

    /// The fields of `text`.
    init(parsing text: Substring) throws(APIError) {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0], what: "a field name")
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw APIError.invalidRequest("form field names are letters, digits, '_' and '-'")
            }
            let value = parts.count == 2 ? try Self.decode(parts[1], what: "field '\(name)'") : ""
            guard fields.updateValue(value, forKey: name) == nil else { throw APIError.invalidRequest("form field '\(name)' is given twice") }
        }
        self.fields = fields
    }

    /// The form posted with `request`: 415 unless it is url-encoded, 413 past `limit`.
    static func read(_ request: Request) async throws(APIError) -> FormBody {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw APIError("unsupported_media_type", .unsupportedMediaType, "console forms are posted as application/x-www-form-urlencoded")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError.bodyTooLarge(limit)
        }
        guard let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes) else {
            throw APIError.invalidRequest("the form is not UTF-8")
        }
        return try FormBody(parsing: Substring(text))
    }

    /// The field `name`, nil when absent.
    subscript(_ name: String) -> String? { fields[name] }

    /// The field `name`, trimmed; 400 naming it when absent or empty.
    func required(_ name: String) throws(APIError) -> String {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
            throw APIError.invalidRequest("the form needs '\(name)'")
        }
        return value
    }

    /// `+` is a space; `%XX` a byte; the result must be UTF-8.
    private static func decode(_ raw: Substring, what: String) throws(APIError) -> String {
        let spaced = raw.replacingOccurrences(of: "+", with: " ")
        guard spaced.contains("%") else { return spaced }
        guard let decoded = spaced.removingPercentEncoding else { throw APIError.invalidRequest("\(what) is not valid percent-encoding") }
        return decoded
    }
}
