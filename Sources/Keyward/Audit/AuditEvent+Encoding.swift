import Foundation

extension AuditEvent {
    /// The canonical body stored in the log: JSON with keys in sorted order, no spaces, the time
    /// as seconds since 1970. Written by hand because `JSONEncoder` took a quarter of an audited
    /// encrypt; `JSONDecoder` reads it back (`auditTail`), and a test checks the two agree.
    func canonicalBody() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: StaticString) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        func string(_ value: String) {
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        func number<N: BinaryInteger>(_ value: N) { out.append(contentsOf: String(value).utf8) }

        key("actor"); string(actor)
        if let detail { key("detail"); string(detail) }
        if let keyID { key("keyID"); string(keyID.description) }
        if let keyRevision { key("keyRevision"); number(keyRevision) }
        key("operation"); string(operation)
        key("outcome"); string(outcome)
        if let peer { key("peer"); string(peer) }
        if let requestID { key("requestID"); string(requestID) }
        // Milliseconds are enough for an audit time and print exactly.
        let millis = Int64((time.timeIntervalSince1970 * 1000).rounded())
        let fraction = Int(abs(millis % 1000))
        key("time"); number(millis / 1000)
        out.append(contentsOf: [UInt8(ascii: "."), UInt8(48 + fraction / 100), UInt8(48 + fraction / 10 % 10), UInt8(48 + fraction % 10)])
        if let version { key("version"); number(version) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

extension AuditEvent {
    /// The canonical body, for tests of the encoding.
    @_spi(Testing) public func canonicalBodyForTesting() -> [UInt8] { canonicalBody() }
}
