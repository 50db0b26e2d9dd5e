import Foundation
import KeywardCrypto

/// A backup bundle: one self-contained, encrypted, integrity-protected file (docs/formats.md).
///
/// ```
/// "KWBACKUP" | u8 format (=2) | u32 header length | header (JSON)
///            | u32 payload length | sealed payload | signature (to the end; absent if unsigned)
/// ```
///
/// The payload is sealed with a random bundle key (AES-256-GCM, Keyward's ciphertext format)
/// whose context binds the SHA-256 of everything before the payload length, so any change to
/// the magic, format, header or payload fails the open. The bundle key itself is in the header,
/// wrapped under a passphrase-derived key (Argon2id + AES-KWP) or sealed to a recipient's
/// X25519 / X-Wing public key (HPKE).
///
/// HPKE in base mode proves nothing about the sender: anyone with the recipient's public key can
/// seal a bundle to it. So a recipient bundle is signed by the source store's backup signing
/// key (`KeyService.backupSigner`), named in the header, over every byte before the signature;
/// opening one requires the signer's public key, pinned by whoever restores. Format 1 (no
/// payload length, never signed) is still read, for passphrase bundles only.
public struct BackupBundle: Sendable {
    static let magic = Array("KWBACKUP".utf8)
    static let format: UInt8 = 2
    /// Largest header accepted, so a corrupted length cannot make us allocate gigabytes.
    static let maximumHeaderBytes = 64 * 1024
    /// Largest signature accepted (ML-DSA-87 signatures are 4,627 bytes).
    static let maximumSignatureBytes = 8 * 1024

    /// The key that signed a recipient bundle.
    public struct Signer: Sendable, Codable, Hashable {
        /// The signing key in the source store.
        public var keyID: KeyID
        /// Its version that signed.
        public var version: UInt32
        /// Its spec.
        public var spec: KeySpec
        /// Its public key (SPKI DER, or raw for post-quantum specs).
        public var publicKey: [UInt8]
    }

    /// What seals a bundle's key. A header naming anything else does not decode.
    public enum Protection: String, Sendable, Codable, Hashable, CustomStringConvertible {
        /// A passphrase, through the header's KDF record.
        case passphrase
        /// An X25519 recipient key, through HPKE.
        case x25519
        /// An X-Wing recipient key, through HPKE.
        case xWing = "x-wing"

        public var description: String { rawValue }
    }

    /// The bundle's public header.
    public struct Header: Sendable, Codable, Hashable {
        /// What seals the bundle key.
        public var protection: Protection
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
        /// For recipient bundles: the source store's key that signed the bundle.
        public var signer: Signer?
    }

    /// The parsed header.
    public let header: Header
    let format: UInt8
    let headerBytes: [UInt8]
    let sealedPayload: [UInt8]
    /// The signature over `signedBytes`; empty when unsigned.
    let signature: [UInt8]

    /// The bytes up to the payload length, whose hash the payload's context binds.
    var prefix: [UInt8] {
        var out = Self.magic + [format]
        out.appendUInt32(UInt32(headerBytes.count))
        return out + headerBytes
    }

    var context: EncryptionContext {
        ["kind": "keyward-backup", "prefix-sha256": SHA256Hash.hex(prefix)]
    }

    /// Every byte before the signature: what the signer signs.
    var signedBytes: [UInt8] {
        guard format >= 2 else { return prefix + sealedPayload }
        var out = prefix
        out.appendUInt32(UInt32(sealedPayload.count))
        return out + sealedPayload
    }

    /// The file's bytes.
    public var bytes: [UInt8] { signedBytes + signature }

    init(header: Header, sealedPayload: [UInt8], signature: [UInt8] = []) throws(KeywardError) {
        self.header = header
        self.format = Self.format
        self.headerBytes = try CanonicalJSON.encode(header)
        self.sealedPayload = sealedPayload
        self.signature = signature
    }

    init(header: Header, headerBytes: [UInt8]) throws(KeywardError) {
        self.header = header
        self.format = Self.format
        self.headerBytes = headerBytes
        self.sealedPayload = []
        self.signature = []
    }

    /// Parses a bundle's framing and header; the payload is checked when it is opened.
    ///
    /// - Throws: `invalidArgument` naming what is wrong: not a Keyward backup, an unknown format,
    ///   a truncated file, a header that does not decode.
    public init(parsing bytes: [UInt8]) throws(KeywardError) {
        guard bytes.count >= Self.magic.count + 5, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw .invalidArgument("not a Keyward backup (no KWBACKUP header)")
        }
        let format = bytes[Self.magic.count]
        guard format == 1 || format == Self.format else {
            throw .invalidArgument("backup format \(format) is not supported (this Keyward reads formats 1 and \(Self.format))")
        }
        func length(at start: Int) -> Int { bytes[start..<(start + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let lengthStart = Self.magic.count + 1
        let headerLength = length(at: lengthStart)
        let headerStart = lengthStart + 4
        guard headerLength <= Self.maximumHeaderBytes, bytes.count >= headerStart + headerLength + 4 + CiphertextHeader.byteCount + 28 else {
            throw .invalidArgument("the backup is truncated or its header length is corrupt")
        }
        let headerBytes = Array(bytes[headerStart..<(headerStart + headerLength)])
        let header = try CanonicalJSON.decode(Header.self, from: headerBytes, what: "the backup header")
        var payloadStart = headerStart + headerLength
        var payloadEnd = bytes.count
        if format >= 2 {
            let payloadLength = length(at: payloadStart)
            payloadStart += 4
            guard payloadLength <= bytes.count - payloadStart, bytes.count - payloadStart - payloadLength <= Self.maximumSignatureBytes else {
                throw .invalidArgument("the backup is truncated or its payload length is corrupt")
            }
            payloadEnd = payloadStart + payloadLength
        } else if header.signer != nil {
            throw .invalidArgument("a format 1 backup cannot be signed; the header was altered")
        }
        self.header = header
        self.format = format
        self.headerBytes = headerBytes
        self.sealedPayload = Array(bytes[payloadStart..<payloadEnd])
        self.signature = Array(bytes[payloadEnd...])
    }

    /// Checks that the bundle is signed by `expected` and the signature holds.
    ///
    /// - Throws: `integrityFailure` when it is unsigned, names another signer, or its signature
    ///   does not verify.
    func checkSignature(by expected: PublicKey) throws(KeywardError) {
        guard let signer = header.signer, !signature.isEmpty else {
            throw .integrityFailure("the backup is not signed; a recipient backup must be signed by its store's backup signing key")
        }
        guard signer.spec == expected.spec, signer.publicKey == expected.representation else {
            throw .integrityFailure("the backup is signed by key \(signer.keyID), not by the signer you named; it did not come from the store you trust")
        }
        let valid: Bool
        do { valid = try expected.verify(signature, for: .message(signedBytes)) } catch { throw .crypto(error) }
        guard valid else { throw .integrityFailure("the backup's signature does not verify: it was altered or forged") }
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
