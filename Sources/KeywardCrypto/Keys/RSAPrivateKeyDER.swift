import Foundation

/// RSA private keys as callers and the store hand them in (PKCS #1 DER, PKCS #8 DER, or PEM of
/// either), normalised to PKCS #1 DER without the key leaving secure memory: PEM is decoded
/// straight into `SecretBytes`, PKCS #8's inner key is a slice of its DER, and nothing goes
/// through `Data` or `String`. The result is parsed (in place) by `KeyMaterial`, which checks
/// that it is a valid key of the spec's size.
///
/// Only the structure is read here: the outer TLVs, PKCS #8's version, its algorithm (which
/// must be rsaEncryption) and its OCTET STRING. A malformed or truncated input, an encrypted
/// PEM, another algorithm, or bytes after the key are `invalidKeyMaterial`.
enum RSAPrivateKeyDER {
    /// The PKCS #1 DER of `input`, copied into locked memory.
    static func pkcs1(_ input: UnsafeRawBufferPointer, spec: KeySpec) throws(KeywardCryptoError) -> SecretBytes {
        let invalid = KeywardCryptoError.invalidKeyMaterial(spec: spec, reason: "not an RSA private key in PKCS#1 DER, PKCS#8 DER or PEM")
        guard let pem = try pemBody(input, spec: spec) else { return try slice(input, spec: spec, invalid) }
        // The DER is at most three quarters of the base64 body; decoded into locked memory.
        var decodedCount = 0
        let decoded: SecretBytes
        do {
            decoded = try SecretBytes(count: pem.count / 4 * 3 + 3) { output in
                guard let count = decodeBase64(UnsafeRawBufferPointer(rebasing: input[pem]), into: output) else { throw invalid }
                decodedCount = count
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw invalid
        }
        return try decoded.withSecretBytes(InsecureSecretAccess.token) { (der) throws(KeywardCryptoError) -> SecretBytes in
            try slice(UnsafeRawBufferPointer(rebasing: der.prefix(decodedCount)), spec: spec, invalid)
        }
    }

    /// The PKCS #1 key in DER `der` (itself PKCS #1, or PKCS #8 around it), copied out.
    private static func slice(_ der: UnsafeRawBufferPointer, spec: KeySpec, _ invalid: KeywardCryptoError) throws(KeywardCryptoError) -> SecretBytes {
        guard let outer = element(der, at: 0), outer.tag == 0x30, outer.end == der.count else { throw invalid }
        guard let version = element(der, at: outer.content, within: outer.end), version.tag == 0x02,
              let second = element(der, at: version.end, within: outer.end) else { throw invalid }
        var range = 0..<der.count
        if second.tag == 0x30 {
            // PKCS #8: version, AlgorithmIdentifier { rsaEncryption, NULL }, OCTET STRING { PKCS #1 }.
            let algorithm = UnsafeRawBufferPointer(rebasing: der[second.content..<second.end])
            guard algorithm.starts(with: rsaEncryption),
                  let key = element(der, at: second.end, within: outer.end), key.tag == 0x04,
                  let inner = element(der, at: key.content, within: key.end), inner.tag == 0x30, inner.end == key.end else { throw invalid }
            range = key.content..<key.end
        } else if second.tag != 0x02 {
            throw invalid
        }
        return try SecretBytes(copying: UnsafeRawBufferPointer(rebasing: der[range]))
    }

    /// The DER encoding of rsaEncryption's OID (1.2.840.113549.1.1.1), as an AlgorithmIdentifier
    /// begins.
    private static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]

    /// One TLV at `offset` within `limit` (default: the buffer): its tag, where its content
    /// starts and where it ends. Nil when it does not fit or its length is not DER.
    private static func element(_ der: UnsafeRawBufferPointer, at offset: Int, within limit: Int? = nil) -> (tag: UInt8, content: Int, end: Int)? {
        let limit = limit ?? der.count
        guard offset + 2 <= limit else { return nil }
        let tag = der[offset]
        var length = Int(der[offset + 1])
        var content = offset + 2
        if length & 0x80 != 0 {
            let octets = length & 0x7F
            guard (1...3).contains(octets), content + octets <= limit, der[content] != 0 else { return nil }
            length = 0
            for index in 0..<octets { length = length << 8 | Int(der[content + index]) }
            guard length >= 0x80 else { return nil }
            content += octets
        }
        guard content + length <= limit else { return nil }
        return (tag, content, content + length)
    }

    /// The range of the base64 body when `input` is PEM (after optional leading whitespace,
    /// `-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`, up to the matching END
    /// line); nil when it is not PEM.
    private static func pemBody(_ input: UnsafeRawBufferPointer, spec: KeySpec) throws(KeywardCryptoError) -> Range<Int>? {
        var start = 0
        while start < input.count, [0x20, 0x09, 0x0A, 0x0D].contains(input[start]) { start += 1 }
        let begin = Array("-----BEGIN ".utf8)
        guard input.count - start >= begin.count, zip(begin, input[start..<(start + begin.count)]).allSatisfy({ $0 == $1 }) else { return nil }
        for label in ["RSA PRIVATE KEY", "PRIVATE KEY"] {
            let header = Array("-----BEGIN \(label)-----".utf8)
            let footer = Array("-----END \(label)-----".utf8)
            guard input.count - start >= header.count, zip(header, input[start..<(start + header.count)]).allSatisfy({ $0 == $1 }) else { continue }
            let body = start + header.count
            var end = body
            while end + footer.count <= input.count {
                if zip(footer, input[end..<(end + footer.count)]).allSatisfy({ $0 == $1 }) {
                    // Nothing but whitespace may follow.
                    guard input[(end + footer.count)...].allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) else { break }
                    return body..<end
                }
                end += 1
            }
            break
        }
        throw .invalidKeyMaterial(spec: spec, reason: "a PEM private key must be an unencrypted RSA PRIVATE KEY or PRIVATE KEY block")
    }

    /// Decodes base64 `text` (whitespace ignored, padding optional at the end) into `output`;
    /// the number of bytes written, or nil when the text is not base64 or does not fit.
    private static func decodeBase64(_ text: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        var accumulator: UInt32 = 0
        var bits = 0
        var written = 0
        var padding = 0
        for byte in text {
            let value: UInt32
            switch byte {
            case 0x41...0x5A: value = UInt32(byte - 0x41)
            case 0x61...0x7A: value = UInt32(byte - 0x61 + 26)
            case 0x30...0x39: value = UInt32(byte - 0x30 + 52)
            case 0x2B: value = 62
            case 0x2F: value = 63
            case 0x3D:
                padding += 1
                continue
            case 0x20, 0x09, 0x0A, 0x0D: continue
            default: return nil
            }
            // Nothing but padding and whitespace after the first '='.
            guard padding == 0 else { return nil }
            accumulator = accumulator << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                guard written < output.count else { return nil }
                output[written] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                written += 1
            }
        }
        accumulator = 0
        guard padding <= 2 else { return nil }
        return written
    }
}
