/// Standard base64 (RFC 4648 section 4) for the API's byte fields: encoding into a byte buffer
/// and strict decoding (padding required, no whitespace, no other alphabet).
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    package static func encode(_ input: [UInt8], into output: inout [UInt8]) {
        output.reserveCapacity(output.count + (input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(alphabet[Int(value >> 6 & 63)])
            output.append(alphabet[Int(value & 63)])
            index += 3
        }
        let rest = input.count - index
        if rest == 1 {
            let value = UInt32(input[index]) << 16
            output.append(contentsOf: [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")])
        } else if rest == 2 {
            let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output.append(contentsOf: [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], UInt8(ascii: "=")])
        }
    }

    package static func encode(_ input: [UInt8]) -> String {
        var output: [UInt8] = []
        encode(input, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The decoded bytes, or nil when `text` is not canonical padded base64.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        Array(text.utf8).withUnsafeBufferPointer { decode($0[...]) }
    }

    /// The decoded bytes of base64 text given as UTF-8, or nil when not canonical padded base64.
    package static func decode(_ input: Slice<UnsafeBufferPointer<UInt8>>) -> [UInt8]? {
        let input = UnsafeBufferPointer(rebasing: input)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let a = values[Int(input[index])], b = values[Int(input[index + 1])]
            guard a != 0xFF, b != 0xFF else { return nil }
            let last = index + 4 == input.count
            let third = input[index + 2], fourth = input[index + 3]
            if last && third == UInt8(ascii: "=") {
                guard fourth == UInt8(ascii: "="), b & 0x0F == 0 else { return nil }
                output.append(a << 2 | b >> 4)
            } else if last && fourth == UInt8(ascii: "=") {
                let c = values[Int(third)]
                guard c != 0xFF, c & 0x03 == 0 else { return nil }
                output.append(a << 2 | b >> 4)
                output.append(b << 4 | c >> 2)
            } else {
                let c = values[Int(third)], d = values[Int(fourth)]
                guard c != 0xFF, d != 0xFF else { return nil }
                output.append(a << 2 | b >> 4)
                output.append(b << 4 | c >> 2)
                output.append(c << 6 | d)
            }
            index += 4
        }
        return output
    }
}
