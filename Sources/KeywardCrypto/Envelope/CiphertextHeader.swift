/// The self-describing header at the front of every Keyward ciphertext (see docs/formats.md):
///
/// ```
/// u8 format (=1) | 16 B key id | u32 key version (big-endian) | u8 algorithm | nonce | ciphertext | tag
/// ```
///
/// The header's 22 bytes are authenticated (they start the AAD), so none of them can be changed
/// without the open failing.
public struct CiphertextHeader: Sendable, Hashable {
    /// The only format this version writes and reads.
    public static let currentFormat: UInt8 = 1
    /// Bytes before the nonce.
    public static let byteCount = 22

    /// The key that sealed the ciphertext.
    public let keyID: KeyID
    /// The key version that sealed it.
    public let version: UInt32
    /// The AEAD that sealed it.
    public let algorithm: SymmetricAlgorithm

    /// A header for a new ciphertext.
    public init(keyID: KeyID, version: UInt32, algorithm: SymmetricAlgorithm) {
        self.keyID = keyID
        self.version = version
        self.algorithm = algorithm
    }

    /// Reads the header of `ciphertext`, so a caller can find the key and version to open it with.
    ///
    /// - Throws: `invalidCiphertext` when the blob is shorter than a header plus nonce and tag,
    ///   has an unknown format byte or names an unknown algorithm.
    public init(parsing ciphertext: some Collection<UInt8>) throws(KeywardCryptoError) {
        let bytes = Array(ciphertext.prefix(Self.byteCount))
        guard bytes.count == Self.byteCount else {
            throw .invalidCiphertext(reason: "\(ciphertext.count) bytes is shorter than the \(Self.byteCount)-byte header")
        }
        guard bytes[0] == Self.currentFormat else {
            throw .invalidCiphertext(reason: "unknown format byte \(bytes[0]); this Keyward reads format \(Self.currentFormat)")
        }
        guard let algorithm = SymmetricAlgorithm(rawValue: bytes[21]) else {
            throw .invalidCiphertext(reason: "unknown algorithm byte \(bytes[21])")
        }
        let minimum = Self.byteCount + algorithm.nonceByteCount + algorithm.tagByteCount
        guard ciphertext.count >= minimum else {
            throw .invalidCiphertext(reason: "\(ciphertext.count) bytes is shorter than header, nonce and tag (\(minimum))")
        }
        self.keyID = try KeyID(bytes: bytes[1..<17])
        self.version = bytes[17..<21].reduce(0) { $0 << 8 | UInt32($1) }
        self.algorithm = algorithm
    }

    /// The 22 header bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount)
        append(to: &out)
        return out
    }

    func append(to out: inout [UInt8]) {
        out.append(Self.currentFormat)
        out.append(contentsOf: keyID.bytes)
        out.appendBigEndian(version)
        out.append(algorithm.rawValue)
    }

    /// Writes the 22 header bytes at `base`.
    @inline(__always)
    func write(to base: UnsafeMutablePointer<UInt8>) {
        base[0] = Self.currentFormat
        withUnsafeBytes(of: keyID.uuid.uuid) { id in
            UnsafeMutableRawPointer(base + 1).copyMemory(from: id.baseAddress!, byteCount: 16)
        }
        base[17] = UInt8(truncatingIfNeeded: version >> 24)
        base[18] = UInt8(truncatingIfNeeded: version >> 16)
        base[19] = UInt8(truncatingIfNeeded: version >> 8)
        base[20] = UInt8(truncatingIfNeeded: version)
        base[21] = algorithm.rawValue
    }
}

/// The AEADs a ciphertext can name in its algorithm byte.
public enum SymmetricAlgorithm: UInt8, Sendable, Hashable, CaseIterable {
    /// AES-256-GCM, 12-byte nonce, 16-byte tag.
    case aes256GCM = 1
    /// ChaCha20-Poly1305, 12-byte nonce, 16-byte tag.
    case chaCha20Poly1305 = 2
    /// AES-128-GCM, 12-byte nonce, 16-byte tag.
    case aes128GCM = 3

    /// The key spec that uses this algorithm.
    public var spec: KeySpec {
        switch self {
        case .aes256GCM: .aes256GCM
        case .chaCha20Poly1305: .chaCha20Poly1305
        case .aes128GCM: .aes128GCM
        }
    }

    /// Nonce length in bytes.
    public var nonceByteCount: Int { 12 }
    /// Tag length in bytes.
    public var tagByteCount: Int { 16 }

    init?(spec: KeySpec) {
        switch spec {
        case .aes256GCM: self = .aes256GCM
        case .chaCha20Poly1305: self = .chaCha20Poly1305
        case .aes128GCM: self = .aes128GCM
        default: return nil
        }
    }
}
