import Crypto
import Foundation

/// The key schedule and signature of AWS Signature Version 4 (HMAC-SHA-256), for checking
/// requests signed by AWS SDKs with a secret access key Keyward issued.
///
/// The day's signing key is `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`; a request's signature is the lowercase hex of `HMAC(signingKey,
/// stringToSign)`. The signing key lives in locked memory; the intermediate keys are wiped.
public final class AWSSigningKey: Sendable {
    private let key: SecretBytes
    /// The scope the key signs for: `date/region/service/aws4_request`.
    public let scope: String

    /// The signing key of `secret` (the secret access key's UTF-8 bytes) for `date`
    /// (`YYYYMMDD`), `region` and `service`.
    public init(secret: borrowing SecretBytes, date: String, region: String, service: String) throws(KeywardCryptoError) {
        scope = "\(date)/\(region)/\(service)/aws4_request"
        var current: [UInt8] = secret.withSecretBytes(InsecureSecretAccess.token) { Array("AWS4".utf8) + Array($0) }
        defer { SecureZero.wipe(&current) }
        for step in [date, region, service, "aws4_request"] {
            var next = [UInt8](HMAC<SHA256>.authenticationCode(for: Array(step.utf8), using: SymmetricKey(data: current)))
            swap(&current, &next)
            SecureZero.wipe(&next)
        }
        key = try SecretBytes(copying: current)
    }

    /// The signature of `stringToSign`, as lowercase hex.
    public func signature(_ stringToSign: some DataProtocol) -> String {
        let tag = key.withSecretBytes(InsecureSecretAccess.token) { raw in
            HMAC<SHA256>.authenticationCode(for: stringToSign, using: SymmetricKey(data: raw))
        }
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in tag {
            hex.append(Self.digits[Int(byte >> 4)])
            hex.append(Self.digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// Whether `presented` (hex) is the signature of `stringToSign`, compared in constant time.
    public func verifies(_ presented: String, for stringToSign: some DataProtocol) -> Bool {
        ConstantTime.equals(Array(signature(stringToSign).utf8), Array(presented.lowercased().utf8))
    }
}
