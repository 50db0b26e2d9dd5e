import Foundation
import KeywardAPI
import NIOCore

/// The hot bodies of the AWS and Transit front ends (a JSON object of strings, and of objects
/// of strings, without escapes: Encrypt, Decrypt, Sign and the like), read with `JSONScanner`
/// instead of Foundation's parser, which costs more than the cryptography they ask for. Any
/// other body is nil, and left to `JSONSerialization`; so this changes speed, never an answer.
/// That includes two keys `JSONScanner` saw as distinct bytes that are one `String` (two
/// spellings of one accented letter): nil, so the slow path refuses the repeated name.
enum FlatJSONObject {
    /// Whether a member of a parsed body is JSON null (`NSNull`, as Foundation's parser gives it),
    /// told by its dynamic type: `value is NSNull` costs a cast that first tries to bridge a
    /// `String` (about twice the time of the whole lookup, on every field a front end reads).
    static func isNull(_ value: Any) -> Bool {
        ObjectIdentifier(type(of: value)) == ObjectIdentifier(NSNull.self)
    }

    static func read(_ buffer: ByteBuffer) -> [String: Any]? {
        buffer.withUnsafeReadableBytes { raw in read(raw.assumingMemoryBound(to: UInt8.self)) }
    }

    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> [String: Any]? {
        guard case .object(let members)? = JSONScanner.parse(bytes) else { return nil }
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        var object: [String: Any] = [:]
        for member in members {
            switch member.value {
            case .string(let range):
                guard object.updateValue(text(range), forKey: text(member.key)) == nil else { return nil }
            case .object(let inner):
                var map: [String: String] = [:]
                for pair in inner {
                    guard case .string(let range) = pair.value,
                          map.updateValue(text(range), forKey: text(pair.key)) == nil else { return nil }
                }
                guard object.updateValue(map, forKey: text(member.key)) == nil else { return nil }
            default: return nil
            }
        }
        return object
    }
}
