import CBoringSSLDirect
import Foundation

/// SHA-256 of public data (audit chain links, token hashes, certificate fingerprints, bundle
/// prefixes), so that no module but this one imports `Crypto`. Never for key derivation or
/// authentication: those are `KeyDerivation` and `MessageAuthentication`.
///
/// Contiguous input is hashed by one call into BoringSSL (the audit chain and the token cache
/// hash on every request); other collections are copied into an array first.
public enum SHA256Hash {
    /// The digest's length in bytes.
    public static let byteCount = 32

    /// SHA-256 of `data`.
    public static func hash(_ data: some DataProtocol) -> [UInt8] {
        if let digest = data.withContiguousStorageIfAvailable({ hash($0) }) { return digest }
        return Array(data).withUnsafeBufferPointer { hash($0) }
    }

    /// SHA-256 of the UTF-8 bytes of `text`.
    public static func hash(utf8 text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { hash($0) }
    }

    /// SHA-256 of the parts, one after another (no separators: callers fix each part's length
    /// or prefix it).
    public static func hash(concatenating parts: [UInt8]...) -> [UInt8] {
        let total = parts.reduce(0) { $0 + $1.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { buffer in
            var offset = 0
            for part in parts {
                part.withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress, !source.isEmpty else { return }
                    (buffer.baseAddress! + offset).initialize(from: base, count: source.count)
                }
                offset += part.count
            }
            return hash(UnsafeBufferPointer(start: buffer.baseAddress, count: total))
        }
    }

    /// SHA-256 of `data` as lowercase hex, its bytes joined by `separator` (`""` or `":"`).
    public static func hex(_ data: some DataProtocol, separator: String = "") -> String {
        hash(data).map { String(format: "%02x", $0) }.joined(separator: separator)
    }

    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: byteCount) { digest, count in
            keyward_sha256(digest.baseAddress!, bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!, bytes.count)
            count = byteCount
        }
    }
}
