import Crypto
import Foundation

/// SHA-256 of public data (audit chain links, token hashes, certificate fingerprints, bundle
/// prefixes), so that no module but this one imports `Crypto`. Never for key derivation or
/// authentication: those are `KeyDerivation` and `MessageAuthentication`.
public enum SHA256Hash {
    /// The digest's length in bytes.
    public static let byteCount = 32

    /// SHA-256 of `data`.
    public static func hash(_ data: some DataProtocol) -> [UInt8] {
        Array(SHA256.hash(data: data))
    }

    /// SHA-256 of the parts, one after another (no separators: callers fix each part's length
    /// or prefix it).
    public static func hash(concatenating parts: [UInt8]...) -> [UInt8] {
        var hasher = SHA256()
        for part in parts { hasher.update(data: part) }
        return Array(hasher.finalize())
    }

    /// SHA-256 of `data` as lowercase hex, its bytes joined by `separator` (`""` or `":"`).
    public static func hex(_ data: some DataProtocol, separator: String = "") -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined(separator: separator)
    }
}
