import Foundation

/// A key's identifier: 16 random bytes (a version-4 UUID). Not secret, but never trusted
/// unauthenticated: it is bound into every sealed record and ciphertext header.
public struct KeyID: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The 16 bytes.
    public let uuid: UUID

    /// A new random identifier.
    public init() { self.uuid = UUID() }

    /// Wraps an existing UUID.
    public init(_ uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical text form (`8-4-4-4-12` hex).
    public init(string: String) throws(KeywardCryptoError) {
        guard let id = KeyID(parsing: string) else {
            throw .invalidParameter(name: "key id", reason: "'\(string.prefix(64))' is not a UUID such as 6f1c2a0e-3b7d-4c55-9a1e-2d4f8b9c0a11")
        }
        self = id
    }

    /// The identifier `string` spells in the canonical text form, or nil when it spells none.
    /// Builds no error: key references that are aliases are told apart this way on every call.
    public init?(parsing string: String) {
        guard let bytes = KeyID.parse(string), let id = try? KeyID(bytes: bytes) else { return nil }
        self = id
    }

    /// Parses `8-4-4-4-12` hex (either case) without Foundation's scanf-based parser, which
    /// dominated key lookups by id.
    static func parse(_ string: String) -> [UInt8]? {
        var string = string
        string.makeContiguousUTF8()
        return string.utf8.withContiguousStorageIfAvailable { text -> [UInt8]? in
            guard text.count == 36 else { return nil }
            var out = [UInt8](repeating: 0, count: 16)
            var index = 0
            var position = 0
            while position < 36 {
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard text[position] == UInt8(ascii: "-") else { return nil }
                    position += 1
                    continue
                }
                guard let high = hexValue(text[position]), let low = hexValue(text[position + 1]) else { return nil }
                out[index] = high << 4 | low
                index += 1
                position += 2
            }
            return out
        } ?? nil
    }

    @inline(__always)
    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Reads 16 bytes.
    public init(bytes: some Collection<UInt8>) throws(KeywardCryptoError) {
        guard bytes.count == 16 else {
            throw .invalidParameter(name: "key id", reason: "expected 16 bytes, got \(bytes.count)")
        }
        let b = Array(bytes)
        self.uuid = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// The 16 bytes, in order.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    /// Appends the lower-case canonical text's UTF-8 to `out`.
    public func appendDescription(to out: inout [UInt8]) {
        let digits = KeyID.digits
        withUnsafeBytes(of: uuid.uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0x0F)])
            }
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case canonical text.
    public var description: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return withUnsafeBytes(of: uuid.uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { out in
                var position = 0
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 { out[position] = UInt8(ascii: "-"); position += 1 }
                    out[position] = digits[Int(byte >> 4)]
                    out[position + 1] = digits[Int(byte & 0x0F)]
                    position += 2
                }
                return 36
            }
        }
    }

    public static func < (lhs: KeyID, rhs: KeyID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    /// Encoded as its canonical text.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let bytes = KeyID.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a key id: \(text.prefix(64))"))
        }
        try self.init(bytes: bytes)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
