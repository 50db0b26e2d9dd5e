import Foundation

/// The API refuses fields it does not know (the document says `additionalProperties: false`):
/// a misspelt `contxt` must not quietly encrypt without its context. It also refuses a field
/// whose value is `null`: the document declares no field nullable, so an optional field is left
/// out, never sent as null (decision 0020).
///
/// `JSONDecoder` ignores unknown keys and reads null as absent, so after a body decodes, `find`
/// compares the body's field names with those of the decoded value encoded again: a null field
/// is refused as such, and a field that does not come back is one the type does not have.
/// Map-valued fields (an encryption context) come back with the same keys, so their keys are
/// data, not fields. Runs on the slow path only; the fast readers leave any unknown or null
/// member to it (`ScannedObject.only`).
package enum UnknownFields {
    /// A field of a body that the API refuses.
    package enum Finding: Equatable, Sendable {
        /// A field the body's type does not define (its dotted path).
        case unknown(String)
        /// A field sent as `null` (its dotted path).
        case null(String)

        /// The message a client reads.
        package var message: String {
            switch self {
            case .unknown(let field): "unknown field '\(field)'; the API refuses fields it does not define (see /v1/openapi.yaml)"
            case .null(let field): "field '\(field)' is null; leave an optional field out instead of sending null"
            }
        }
    }

    /// The first field of `body` that the API refuses, given the value it decoded to, or nil.
    package static func find<T: Encodable>(in body: Data, decoded value: T) -> Finding? {
        guard let input = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
              let encoded = try? JSONEncoder.api.encode(value),
              let output = try? JSONSerialization.jsonObject(with: encoded, options: [.fragmentsAllowed]) else { return nil }
        return refused(input, output, path: "")
    }

    private static func refused(_ input: Any, _ output: Any, path: String) -> Finding? {
        if let fields = input as? [String: Any] {
            let known = output as? [String: Any] ?? [:]
            for name in fields.keys.sorted() {
                let value = fields[name]!
                let field = path.isEmpty ? name : path + "." + name
                if value is NSNull { return .null(field) }
                guard let kept = known[name] else { return .unknown(field) }
                if let found = refused(value, kept, path: field) { return found }
            }
        } else if let items = input as? [Any], let kept = output as? [Any], items.count == kept.count {
            for (index, item) in items.enumerated() {
                if let found = refused(item, kept[index], path: "\(path)[\(index)]") { return found }
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
