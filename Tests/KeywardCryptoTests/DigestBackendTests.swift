import Crypto
import Dispatch
import Foundation
import KeywardCrypto
import Testing

/// SHA-256 and HMAC go through BoringSSL in one call each (decision 0042); these tests hold that
/// path to swift-crypto's own results, for contiguous and non-contiguous input.
@Suite("Hashing and HMAC through BoringSSL")
struct DigestBackendTests {
    private static func bytes(_ count: Int, _ seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ seed &* 7) }
    }

    /// `bytes` split over two regions, so `withContiguousStorageIfAvailable` has no answer.
    private static func scattered(_ bytes: [UInt8]) -> DispatchData {
        let half = bytes.count / 2
        var data = DispatchData.empty
        for part in [bytes[..<half], bytes[half...]] where !part.isEmpty {
            part.withUnsafeBytes { data.append(DispatchData(bytes: $0)) }
        }
        return data
    }

    @Test("SHA256Hash equals swift-crypto's SHA-256 for every length across the block boundaries, contiguous or not")
    func sha256MatchesSwiftCrypto() {
        for count in 0...300 {
            let input = Self.bytes(count, count)
            let reference = Array(SHA256.hash(data: input))
            #expect(SHA256Hash.hash(input) == reference, "length \(count)")
            #expect(SHA256Hash.hash(Data(input)) == reference, "length \(count), Data")
            #expect(SHA256Hash.hash(input[...]) == reference, "length \(count), slice")
            #expect(SHA256Hash.hash(Self.scattered(input)) == reference, "length \(count), two regions")
        }
        // The FIPS 180-2 vector.
        #expect(SHA256Hash.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("hash(concatenating:) is the hash of the joined parts, empty parts included; hash(utf8:) that of the string's UTF-8")
    func concatenationAndText() {
        let parts = [[], Self.bytes(1, 1), Self.bytes(63, 2), [], Self.bytes(200, 3)]
        #expect(SHA256Hash.hash(concatenating: parts[0], parts[1], parts[2], parts[3], parts[4]) == SHA256Hash.hash(parts.flatMap { $0 }))
        #expect(SHA256Hash.hash(concatenating: []) == SHA256Hash.hash([UInt8]()))
        #expect(SHA256Hash.hash(concatenating: [], []) == SHA256Hash.hash([UInt8]()))
        for text in ["", "kw_token", "clé-à-ключ-🔑", String(repeating: "x", count: 1000), String("prefix/kw_abc".split(separator: "/")[1])] {
            #expect(SHA256Hash.hash(utf8: text) == Array(SHA256.hash(data: Array(text.utf8))), "\(text.prefix(20))")
        }
    }

    @Test("HMAC-SHA-256, -384 and -512 equal swift-crypto's for many message lengths, contiguous or not")
    func hmacMatchesSwiftCrypto() throws {
        for spec in [KeySpec.hmacSHA256, .hmacSHA384, .hmacSHA512] {
            for round in 0..<12 {
                let material = try KeyMaterial.generate(spec)
                let key = SymmetricKey(data: material.secret.withSecretBytes(InsecureSecretAccess.token) { Data($0) })
                for count in [0, 1, 55, 64, 127, 128, 129, 1000 + round] {
                    let message = Self.bytes(count, round)
                    let reference: [UInt8] = switch spec {
                    case .hmacSHA384: Array(HMAC<SHA384>.authenticationCode(for: message, using: key))
                    case .hmacSHA512: Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
                    default: Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
                    }
                    #expect(try material.mac(message) == reference, "\(spec) length \(count)")
                    #expect(try material.mac(Self.scattered(message)) == reference, "\(spec) length \(count), two regions")
                    #expect(try material.verifyMAC(reference, for: message))
                    var altered = reference
                    altered[round % altered.count] ^= 1
                    #expect(try !material.verifyMAC(altered, for: message))
                }
            }
        }
    }

    @Test("a key that is not an HMAC key is refused, not used as one")
    func hmacRefusesOtherKeys() throws {
        let aes = try KeyMaterial.generate(.aes256GCM)
        #expect(throws: KeywardCryptoError.self) { _ = try aes.mac([1, 2, 3]) }
    }
}
