import Crypto
import Foundation

/// SHA-2 digests of public data, for protocols that hash on a client's behalf (Transit's
/// `hash`). Like `SHA256Hash`, never for key derivation or authentication.
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case sha256 = "sha2-256"
    case sha384 = "sha2-384"
    case sha512 = "sha2-512"

    /// The digest's length in bytes.
    public var byteCount: Int {
        switch self {
        case .sha256: SHA256.byteCount
        case .sha384: SHA384.byteCount
        case .sha512: SHA512.byteCount
        }
    }

    /// The digest of `data`.
    public func hash(_ data: some DataProtocol) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: data))
        case .sha384: Array(SHA384.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }
}
