import Crypto
import CryptoExtras
import Foundation

/// AES key wrap for key transport: RFC 3394 (inputs a multiple of 8 bytes, at least 16) and
/// RFC 5649 with padding (any input of 1 byte or more).
///
/// RFC 3394 is swift-crypto's `AES.KeyWrap`. RFC 5649 is the RFC 3394 wrapping process with the
/// alternative initial value `A65959A6 || u32 length`, built over swift-crypto's single-block AES
/// permutation; it is checked against the Wycheproof KWP vectors. The KEK may be AES-128, -192
/// or -256; Keyward's own key hierarchy uses only AES-256 KEKs.
public enum KeyWrap {
    /// Which wrapping.
    public enum Mode: String, Sendable, Codable {
        /// RFC 3394: the input must be a multiple of 8 bytes, at least 16.
        case rfc3394 = "AES-KW"
        /// RFC 5649: any input of at least 1 byte.
        case rfc5649 = "AES-KWP"
    }

    /// The largest input accepted, in bytes (an RSA-4096 PKCS#8 key fits with room to spare).
    public static let maximumInputBytes = 16 * 1024

    /// Wraps `key` under `kek`.
    ///
    /// - Throws: `invalidParameter` for a KEK that is not 16, 24 or 32 bytes, or an input of a
    ///   length the mode does not accept.
    public static func wrap(_ key: borrowing SecretBytes, kek: borrowing SecretBytes, mode: Mode) throws(KeywardCryptoError) -> [UInt8] {
        try checkKEK(kek)
        let count = key.count
        guard count <= maximumInputBytes else {
            throw .invalidParameter(name: "key to wrap", reason: "\(count) bytes; at most \(maximumInputBytes)")
        }
        return try kek.withSecretBytes(InsecureSecretAccess.token) { (kekBytes) throws(KeywardCryptoError) -> [UInt8] in
            let kekKey = SymmetricKey(data: kekBytes)
            return try key.withSecretBytes(InsecureSecretAccess.token) { (input) throws(KeywardCryptoError) -> [UInt8] in
                switch mode {
                case .rfc3394:
                    guard count >= 16, count % 8 == 0 else {
                        throw .invalidParameter(name: "key to wrap", reason: "\(count) bytes; AES-KW wraps a multiple of 8 bytes, at least 16 (use AES-KWP)")
                    }
                    return try mapping(.primitiveFailure(operation: "AES-KW wrap", reason: "the primitive refused the input")) {
                        [UInt8](try AES.KeyWrap.wrap(SymmetricKey(data: input), using: kekKey))
                    }
                case .rfc5649:
                    guard count >= 1 else {
                        throw .invalidParameter(name: "key to wrap", reason: "empty; AES-KWP wraps 1 byte or more")
                    }
                    return try mapping(.primitiveFailure(operation: "AES-KWP wrap", reason: "the primitive refused the input")) {
                        try wrapPadded(input, kek: kekKey)
                    }
                }
            }
        }
    }

    /// Unwraps `wrapped` under `kek` and checks its integrity.
    ///
    /// - Throws: `invalidCiphertext` when the integrity check fails or the length is impossible
    ///   for the mode; `invalidParameter` for a bad KEK length.
    public static func unwrap(_ wrapped: some DataProtocol, kek: borrowing SecretBytes, mode: Mode) throws(KeywardCryptoError) -> SecretBytes {
        try checkKEK(kek)
        let input = [UInt8](wrapped)
        guard input.count >= 16, input.count % 8 == 0, input.count <= maximumInputBytes + 16 else {
            throw .invalidCiphertext(reason: "a wrapped key is a multiple of 8 bytes, at least 16; got \(input.count)")
        }
        return try kek.withSecretBytes(InsecureSecretAccess.token) { (kekBytes) throws(KeywardCryptoError) -> SecretBytes in
            let kekKey = SymmetricKey(data: kekBytes)
            switch mode {
            case .rfc3394:
                guard input.count >= 24 else {
                    throw .invalidCiphertext(reason: "an AES-KW output is at least 24 bytes; got \(input.count)")
                }
                let key: SymmetricKey = try mapping(.invalidCiphertext(reason: "AES-KW integrity check failed: wrong KEK or altered bytes")) {
                    try AES.KeyWrap.unwrap(input, using: kekKey)
                }
                return try SecretBytes(copyingBytesOf: key)
            case .rfc5649:
                return try unwrapPadded(input, kek: kekKey)
            }
        }
    }

    private static func checkKEK(_ kek: borrowing SecretBytes) throws(KeywardCryptoError) {
        guard [16, 24, 32].contains(kek.count) else {
            throw .invalidParameter(name: "KEK", reason: "\(kek.count) bytes; an AES KEK is 16, 24 or 32 bytes")
        }
    }

    private static let paddedIVPrefix: [UInt8] = [0xA6, 0x59, 0x59, 0xA6]

    private static func wrapPadded(_ input: UnsafeRawBufferPointer, kek: SymmetricKey) throws -> [UInt8] {
        let blocks = (input.count + 7) / 8
        var a = paddedIVPrefix
        a.appendBigEndian(UInt32(input.count))
        var r = [UInt8](repeating: 0, count: blocks * 8)
        r.withUnsafeMutableBytes { $0.copyMemory(from: input) }
        defer { r.withUnsafeMutableBytes { keywardZeroize($0.baseAddress!, $0.count) } }
        if blocks == 1 {
            var block = a + r
            try AES.permute(&block, key: kek)
            return block
        }
        var block = [UInt8](repeating: 0, count: 16)
        defer { block.withUnsafeMutableBytes { keywardZeroize($0.baseAddress!, 16) } }
        for j in 0..<6 {
            for i in 0..<blocks {
                block.replaceSubrange(0..<8, with: a)
                block.replaceSubrange(8..<16, with: r[(i * 8)..<(i * 8 + 8)])
                try AES.permute(&block, key: kek)
                let t = UInt64(blocks * j + i + 1)
                for k in 0..<8 { a[k] = block[k] ^ UInt8(truncatingIfNeeded: t >> (56 - 8 * k)) }
                r.replaceSubrange((i * 8)..<(i * 8 + 8), with: block[8..<16])
            }
        }
        return a + r
    }

    private static func unwrapPadded(_ input: [UInt8], kek: SymmetricKey) throws(KeywardCryptoError) -> SecretBytes {
        let blocks = input.count / 8 - 1
        var a: [UInt8]
        var r: [UInt8]
        let failed = KeywardCryptoError.invalidCiphertext(reason: "AES-KWP integrity check failed: wrong KEK or altered bytes")
        if blocks == 1 {
            var block = input
            try mapping(failed) { try AES.inversePermute(&block, key: kek) }
            a = Array(block[0..<8])
            r = Array(block[8..<16])
            block.withUnsafeMutableBytes { keywardZeroize($0.baseAddress!, $0.count) }
        } else {
            a = Array(input[0..<8])
            r = Array(input[8...])
            var block = [UInt8](repeating: 0, count: 16)
            for j in stride(from: 5, through: 0, by: -1) {
                for i in stride(from: blocks - 1, through: 0, by: -1) {
                    let t = UInt64(blocks * j + i + 1)
                    for k in 0..<8 { block[k] = a[k] ^ UInt8(truncatingIfNeeded: t >> (56 - 8 * k)) }
                    block.replaceSubrange(8..<16, with: r[(i * 8)..<(i * 8 + 8)])
                    try mapping(failed) { try AES.inversePermute(&block, key: kek) }
                    a = Array(block[0..<8])
                    r.replaceSubrange((i * 8)..<(i * 8 + 8), with: block[8..<16])
                }
            }
            block.withUnsafeMutableBytes { keywardZeroize($0.baseAddress!, $0.count) }
        }
        defer { r.withUnsafeMutableBytes { keywardZeroize($0.baseAddress!, $0.count) } }
        // Check the prefix, the length indicator and the zero padding without early exits.
        let length = Int(a[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        var bad = UInt8(0)
        for k in 0..<4 { bad |= a[k] ^ paddedIVPrefix[k] }
        let lengthOK = length > 8 * (blocks - 1) && length <= 8 * blocks
        if lengthOK {
            for k in length..<r.count { bad |= r[k] }
        }
        guard bad == 0, lengthOK else { throw failed }
        return try SecretBytes(copying: r[0..<length])
    }
}
