import Foundation

/// Writes JSON responses straight into bytes: the API's responses are small and fixed in shape,
/// and `JSONEncoder` costs more than the cryptography they report. Strings are escaped per
/// RFC 8259; bytes are written as standard base64.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false
    private static let hex = Array("0123456789abcdef".utf8)

    public init() { bytes.reserveCapacity(256) }

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        container(UInt8(ascii: "{"), UInt8(ascii: "}"), body)
    }

    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        container(UInt8(ascii: "["), UInt8(ascii: "]"), body)
    }

    private mutating func container(_ open: UInt8, _ close: UInt8, _ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(open)
        needsComma = false
        body(&self)
        bytes.append(close)
        needsComma = true
    }

    /// A member whose value `body` writes (an object or an array).
    public mutating func member(_ name: String, _ body: (inout JSONWriter) -> Void) {
        key(name)
        needsComma = false
        body(&self)
        needsComma = true
    }

    public mutating func member(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    public mutating func member(_ name: String, _ value: String?) {
        guard let value else { return }
        member(name, value)
    }

    public mutating func member(_ name: String, _ value: Int) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func member(_ name: String, _ value: Int?) {
        guard let value else { return }
        member(name, value)
    }

    /// A number member; a value that is not finite is written as 0.
    public mutating func member(_ name: String, _ value: Double) {
        key(name)
        bytes.append(contentsOf: (value.isFinite ? String(value) : "0").utf8)
    }

    public mutating func member(_ name: String, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func member(_ name: String, base64 value: [UInt8]) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        Base64.encode(value, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A string member: `prefix` followed by the standard base64 of `value`, written straight
    /// into the bytes (Transit's `vault:v1:…` values) with no string in between. `prefix` is
    /// escaped as any string is.
    public mutating func member(_ name: String, prefix: String, base64 value: [UInt8]) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        escaped(prefix)
        Base64.encode(value, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func member(_ name: String, _ value: Date?) {
        guard let value else { return }
        member(name, Self.timestamp(value))
    }

    public mutating func member(_ name: String, strings: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in strings.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func member(_ name: String, dictionary: [String: String]) {
        key(name)
        bytes.append(UInt8(ascii: "{"))
        for (index, name) in dictionary.keys.sorted().enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            string(name)
            bytes.append(UInt8(ascii: ":"))
            string(dictionary[name]!)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    public static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func key(_ name: String) {
        separate()
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = true
    }

    private mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        escaped(value)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `value`'s UTF-8, escaped per RFC 8259, without quotes. Runs that need no escape are
    /// appended whole.
    private mutating func escaped(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if start < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index])) }
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]])
                }
            }
            if start < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...])) }
        }
    }
}
