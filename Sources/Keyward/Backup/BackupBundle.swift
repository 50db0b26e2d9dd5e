import Foundation
import KeywardCrypto

/// A backup bundle: one self-contained, encrypted, integrity-protected file (docs/formats.md).
///
/// ```
/// "KWBACKUP" | u8 format (=1) | u32 header length | header (JSON) | sealed payload
/// ```
///
/// The payload is sealed with a random bundle key (AES-256-GCM, Keyward's ciphertext format)
/// whose context binds the SHA-256 of everything before it, so any change to the magic, format,
/// header or payload fails the open. The bundle key itself is in the header, wrapped under a
/// passphrase-derived key (Argon2id + AES-KWP) or sealed to a recipient's X25519 / X-Wing
/// public key (HPKE).
public struct BackupBundle: Sendable {
    static let magic = Array("KWBACKUP".utf8)
    static let format: UInt8 = 1
    /// Largest header accepted, so a corrupted length cannot make us allocate gigabytes.
    static let maximumHeaderBytes = 64 * 1024

    /// The bundle's public header.
    public struct Header: Sendable, Codable, Hashable {
        /// `passphrase`, `x25519` or `x-wing`.
        public var protection: String
        /// For passphrase bundles: the KDF record.
        public var kdf: KDFParameters?
        /// For passphrase bundles: the bundle key under AES-KWP.
        public var wrappedKey: [UInt8]?
        /// For recipient bundles: the bundle key sealed with HPKE.
        public var sealedKey: HybridEncryption.Sealed?
        /// The store the keys came from.
        public var storeID: KeyID
        /// When the bundle was written.
        public var createdAt: Date
        /// How many keys the payload holds.
        public var keyCount: Int
        /// A random id, bound into the payload's ciphertext header.
        public var bundleID: KeyID
    }

    /// The parsed header.
    public let header: Header
    let headerBytes: [UInt8]
    let sealedPayload: [UInt8]

    /// The bytes up to the sealed payload, whose hash the payload's context binds.
    var prefix: [UInt8] {
        var out = Self.magic + [Self.format]
        out.appendUInt32(UInt32(headerBytes.count))
        return out + headerBytes
    }

    var context: EncryptionContext {
        ["kind": "keyward-backup", "prefix-sha256": SHA256Hash.hex(prefix)]
    }

    /// The file's bytes.
    public var bytes: [UInt8] { prefix + sealedPayload }

    init(header: Header, sealedPayload: [UInt8]) throws(KeywardError) {
        self.header = header
        self.headerBytes = try CanonicalJSON.encode(header)
        self.sealedPayload = sealedPayload
    }

    init(header: Header, headerBytes: [UInt8]) throws(KeywardError) {
        self.header = header
        self.headerBytes = headerBytes
        self.sealedPayload = []
    }

    /// Parses a bundle's framing and header; the payload is checked when it is opened.
    ///
    /// - Throws: `invalidArgument` naming what is wrong: not a Keyward backup, an unknown format,
    ///   a truncated file, a header that does not decode.
    public init(parsing bytes: [UInt8]) throws(KeywardError) {
        guard bytes.count >= Self.magic.count + 5, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw .invalidArgument("not a Keyward backup (no KWBACKUP header)")
        }
        guard bytes[Self.magic.count] == Self.format else {
            throw .invalidArgument("backup format \(bytes[Self.magic.count]) is not supported (this Keyward reads format \(Self.format))")
        }
        let lengthStart = Self.magic.count + 1
        let length = bytes[lengthStart..<(lengthStart + 4)].reduce(0) { $0 << 8 | Int($1) }
        let headerStart = lengthStart + 4
        guard length <= Self.maximumHeaderBytes, bytes.count >= headerStart + length + CiphertextHeader.byteCount + 28 else {
            throw .invalidArgument("the backup is truncated or its header length is corrupt")
        }
        let headerBytes = Array(bytes[headerStart..<(headerStart + length)])
        let header = try CanonicalJSON.decode(Header.self, from: headerBytes, what: "the backup header")
        self.header = header
        self.headerBytes = headerBytes
        self.sealedPayload = Array(bytes[(headerStart + length)...])
    }
}

extension Array where Element == UInt8 {
    mutating func appendUInt32(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }
}

/// Reads the binary payload: length-prefixed fields, every length checked against what is left.
struct PayloadReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func uint32() throws(KeywardError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw .integrityFailure("the backup payload ends early") }
        defer { offset += 4 }
        return bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func field() throws(KeywardError) -> ArraySlice<UInt8> {
        let length = Int(try uint32())
        guard length <= bytes.count - offset else { throw .integrityFailure("a backup field runs past the payload") }
        defer { offset += length }
        return bytes[offset..<(offset + length)]
    }

    var atEnd: Bool { offset == bytes.count }
}
