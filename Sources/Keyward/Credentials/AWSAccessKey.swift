import Foundation
import KeywardCrypto

/// An AWS access key issued by Keyward, for clients that speak the AWS KMS protocol with
/// Signature Version 4 (`KeyService.issueAWSCredential`).
///
/// - The access key id is `KW` and the credential's 16-byte id in base32 (RFC 4648 alphabet,
///   no padding): 28 characters, so a lookup needs no scan.
/// - The secret access key is 40 characters of base64: the first 30 bytes of
///   HMAC-SHA-256 under the store's credential key (an HMAC key with alias
///   `keyward/aws-credentials`, sealed under the KEK like every key, never backed up) of
///   `"keyward aws secret v1" || id`. It is recoverable, as SigV4 needs (the server recomputes
///   each signature), yet stored nowhere in clear: the database holds only the credential key,
///   sealed. A credential records the key version it was derived from, so rotating that key
///   changes the secrets of credentials issued afterwards only.
public struct AWSCredential: Sendable {
    /// The access key id (`KW...`).
    public let accessKeyID: String
    /// The secret access key: shown once, when issued.
    public let secretAccessKey: String
    /// The stored record.
    public let record: TokenRecord
}

/// A verified AWS access key's owner and its secret, in locked memory.
public final class AWSSecret: Sendable {
    /// The credential's record (principal, policy, expiry).
    public let record: TokenRecord
    /// The secret access key's UTF-8 bytes, the HMAC key of SigV4's key schedule.
    public let secret: SecretBytes

    init(record: TokenRecord, secret: consuming SecretBytes) {
        self.record = record
        self.secret = secret
    }
}

/// Access key ids and secret derivation.
enum AWSAccessKey {
    /// The alias of the store's credential key.
    static let keyAlias = "keyward/aws-credentials"
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// `KW` + base32 of the id.
    static func id(for id: KeyID) -> String {
        var out = "KW"
        var buffer = 0, bits = 0
        for byte in id.bytes {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(Character(UnicodeScalar(alphabet[(buffer >> (bits - 5)) & 31])))
                bits -= 5
            }
        }
        if bits > 0 { out.append(Character(UnicodeScalar(alphabet[(buffer << (5 - bits)) & 31]))) }
        return out
    }

    /// The credential id an access key id names, or nil when it is not one Keyward issued.
    static func credentialID(_ accessKeyID: String) -> KeyID? {
        let utf8 = Array(accessKeyID.utf8)
        guard utf8.count == 28, utf8[0] == UInt8(ascii: "K"), utf8[1] == UInt8(ascii: "W") else { return nil }
        var bytes: [UInt8] = []
        var buffer = 0, bits = 0
        for character in utf8[2...] {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        guard bytes.count == 16, buffer & ((1 << bits) - 1) == 0 else { return nil }
        return try? KeyID(bytes: bytes)
    }

    /// The store's lookup hash of an access key (its row's `hash`), apart from bearer tokens'.
    static func hash(_ accessKeyID: String) -> [UInt8] { SHA256Hash.hash(Array("keyward aws access key\u{0}\(accessKeyID)".utf8)) }

    /// The secret access key of credential `id` under the credential key's `material`.
    static func secret(_ material: borrowing KeyMaterial, id: KeyID) throws(KeywardError) -> String {
        var tag: [UInt8]
        do throws(KeywardCryptoError) { tag = try material.mac(Array("keyward aws secret v1".utf8) + id.bytes) } catch { throw .crypto(error) }
        defer { SecureZero.wipe(&tag) }
        return Data(tag.prefix(30)).base64EncodedString()
    }
}
