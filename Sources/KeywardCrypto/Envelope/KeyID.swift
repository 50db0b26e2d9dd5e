import Foundation

/// A key's identifier: 16 random bytes (a version-4 UUID). Not secret, but never trusted
/// unauthenticated: it is bound into every sealed record and ciphertext header.
public struct KeyID: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The 16 bytes.
    public let uuid: UUID

    /// A new random identifier.
    public init() { self.uuid = UUID() }

    /// Wraps an existing UUID.
    public init(_ uuid: UUID) { self.uuid = uuid }

    /// Parses the canonical text form (`8-4-4-4-12` hex).
    public init(string: String) throws(KeywardCryptoError) {
        guard let uuid = UUID(uuidString: string) else {
            throw .invalidParameter(name: "key id", reason: "'\(string.prefix(64))' is not a UUID such as 6f1c2a0e-3b7d-4c55-9a1e-2d4f8b9c0a11")
        }
        self.uuid = uuid
    }

    /// Reads 16 bytes.
    public init(bytes: some Collection<UInt8>) throws(KeywardCryptoError) {
        guard bytes.count == 16 else {
            throw .invalidParameter(name: "key id", reason: "expected 16 bytes, got \(bytes.count)")
        }
        let b = Array(bytes)
        self.uuid = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// The 16 bytes, in order.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    /// Lower-case canonical text.
    public var description: String { uuid.uuidString.lowercased() }

    public static func < (lhs: KeyID, rhs: KeyID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
