import Foundation

extension AuditEvent {
    /// The canonical body stored in the log: JSON with keys in sorted order, no spaces, the time
    /// as seconds since 1970 with three decimals. Written by hand because `JSONEncoder` took a
    /// quarter of an audited encrypt; `JSONDecoder` reads it back (`auditTail`), and a test
    /// checks the two agree.
    func canonicalBody() -> [UInt8] {
        var writer = CanonicalBodyWriter()
        writer.string("actor", actor)
        if !anchors.isEmpty {
            writer.key("anchors")
            writer.bytes.append(UInt8(ascii: "["))
            for (index, anchor) in anchors.enumerated() {
                if index > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                writer.quoted(anchor.description)
            }
            writer.bytes.append(UInt8(ascii: "]"))
        }
        if let detail { writer.string("detail", detail) }
        if let entry { writer.string("entry", entry) }
        if let keyID {
            writer.key("keyID")
            writer.bytes.append(UInt8(ascii: "\""))
            keyID.appendDescription(to: &writer.bytes)
            writer.bytes.append(UInt8(ascii: "\""))
        }
        writer.string("operation", operation)
        writer.string("outcome", outcome)
        if let peer { writer.string("peer", peer) }
        if let requestID { writer.string("requestID", requestID) }
        if let route { writer.string("route", route) }
        let millis = Int64((time.timeIntervalSince1970 * 1000).rounded())
        writer.number("time", millis / 1000)
        let fraction = Int(abs(millis % 1000))
        writer.bytes.append(contentsOf: [UInt8(ascii: "."), UInt8(48 + fraction / 100), UInt8(48 + fraction / 10 % 10), UInt8(48 + fraction % 10)])
        if let version { writer.number("version", Int64(version)) }
        writer.bytes.append(UInt8(ascii: "}"))
        return writer.bytes
    }
}

/// Appends JSON members to one buffer, without closures capturing it (which boxed it).
private struct CanonicalBodyWriter {
    var bytes: [UInt8]
    private var first = true
    private static let hex = Array("0123456789abcdef".utf8)

    init() {
        bytes = []
        bytes.reserveCapacity(256)
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func key(_ name: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        quoted(value)
    }

    /// A JSON string, escaped.
    mutating func quoted(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
                case 0..<0x20:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]])
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ name: StaticString, _ value: Int64) {
        key(name)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }
}

extension AuditEvent {
    /// The canonical body, for tests of the encoding.
    @_spi(Testing) public func canonicalBodyForTesting() -> [UInt8] { canonicalBody() }
}
