import Crypto
import Foundation

/// HKDF (RFC 5869), for deriving keys from high-entropy secrets (ECDH outputs, KEKs).
/// Passphrases go through `PassphraseKDF` instead.
public enum KeyDerivation {
    /// The hash HKDF runs on.
    public enum Hash: String, Sendable, Codable {
        case sha256 = "SHA-256", sha384 = "SHA-384", sha512 = "SHA-512"
        var byteCount: Int { switch self { case .sha256: 32; case .sha384: 48; case .sha512: 64 } }
    }

    /// HKDF-Extract then HKDF-Expand to `outputByteCount` bytes.
    ///
    /// - Throws: `invalidParameter` when `outputByteCount` is 0 or above 255 hash lengths.
    public static func hkdf(
        _ hash: Hash,
        inputKeyMaterial: UnsafeRawBufferPointer,
        salt: some DataProtocol,
        info: some DataProtocol,
        outputByteCount: Int
    ) throws(KeywardCryptoError) -> SecretBytes {
        guard outputByteCount >= 1, outputByteCount <= 255 * hash.byteCount else {
            throw .invalidParameter(name: "HKDF output length", reason: "\(outputByteCount) bytes; HKDF-\(hash.rawValue) gives 1 to \(255 * hash.byteCount)")
        }
        let ikm = SymmetricKey(data: inputKeyMaterial)
        let key: SymmetricKey
        switch hash {
        case .sha256: key = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: outputByteCount)
        case .sha384: key = HKDF<SHA384>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: outputByteCount)
        case .sha512: key = HKDF<SHA512>.deriveKey(inputKeyMaterial: ikm, salt: salt, info: info, outputByteCount: outputByteCount)
        }
        return try SecretBytes(copyingBytesOf: key)
    }
}
