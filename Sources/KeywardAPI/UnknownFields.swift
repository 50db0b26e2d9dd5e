import Foundation

/// The API refuses fields it does not know (the document says `additionalProperties: false`):
/// a misspelt `contxt` must not quietly encrypt without its context.
///
/// `JSONDecoder` ignores unknown keys, so after a body decodes, `find` compares the body's
/// field names with those of the decoded value encoded again: a field of the input that is not
/// null and does not come back is one the type does not have. Map-valued fields (an encryption
/// context) come back with the same keys, so their keys are data, not fields. Runs on the slow
/// path only; the fast readers refuse unknown members themselves (`ScannedObject.only`).
package enum UnknownFields {
    /// The dotted path of the first field of `body` that `value` does not hold, or nil.
    package static func find<T: Encodable>(in body: Data, decoded value: T) -> String? {
        guard let input = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
              let encoded = try? JSONEncoder.api.encode(value),
              let output = try? JSONSerialization.jsonObject(with: encoded, options: [.fragmentsAllowed]) else { return nil }
        return unknown(input, output, path: "")
    }

    private static func unknown(_ input: Any, _ output: Any, path: String) -> String? {
        if let fields = input as? [String: Any] {
            let known = output as? [String: Any] ?? [:]
            for name in fields.keys.sorted() {
                let value = fields[name]!
                if value is NSNull { continue }
                let field = path.isEmpty ? name : path + "." + name
                guard let kept = known[name] else { return field }
                if let found = unknown(value, kept, path: field) { return found }
            }
        } else if let items = input as? [Any], let kept = output as? [Any], items.count == kept.count {
            for (index, item) in items.enumerated() {
                if let found = unknown(item, kept[index], path: "\(path)[\(index)]") { return found }
            }
        }
        return nil
    }
}

extension JSONEncoder {
    /// Request bodies as the API reads them (the same choices as `JSONDecoder.api`: ISO 8601
    /// dates). One shared instance: its options never change after this.
    package static let api: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
}
