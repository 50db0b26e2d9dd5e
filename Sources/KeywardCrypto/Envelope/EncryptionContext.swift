/// Additional authenticated data given as string pairs (AWS KMS calls it the encryption context).
///
/// It is not secret and not stored in the ciphertext: the same context must be given to open.
/// Its canonical encoding, which is what gets authenticated, is unambiguous: pairs sorted by the
/// UTF-8 bytes of their keys, each key and value written as a big-endian u32 length and its
/// UTF-8 bytes. So `{"ab":"c"}` and `{"a":"bc"}` never authenticate as each other.
public struct EncryptionContext: Sendable, Hashable, ExpressibleByDictionaryLiteral, Codable {
    /// The pairs.
    public let pairs: [String: String]
    /// The canonical encoding, computed once when the context is made.
    private let encoded: Result<[UInt8], KeywardCryptoError>

    /// The empty context.
    public static let empty = EncryptionContext([:])

    /// At most this many pairs; more is refused as `invalidParameter`.
    public static let maximumPairs = 64
    /// At most this many canonical bytes (AWS allows 8,192 characters in all).
    public static let maximumEncodedBytes = 8192

    /// A context from a dictionary.
    public init(_ pairs: [String: String]) {
        self.pairs = pairs
        self.encoded = Result { () throws(KeywardCryptoError) in try Self.encode(pairs) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    public init(from decoder: any Decoder) throws {
        self.init(try [String: String](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try pairs.encode(to: encoder)
    }

    public static func == (lhs: EncryptionContext, rhs: EncryptionContext) -> Bool { lhs.pairs == rhs.pairs }
    public func hash(into hasher: inout Hasher) { hasher.combine(pairs) }

    /// The canonical encoding (see the type's documentation).
    ///
    /// - Throws: `invalidParameter` when the context has more than `maximumPairs` pairs or encodes
    ///   to more than `maximumEncodedBytes` bytes.
    public func canonicalBytes() throws(KeywardCryptoError) -> [UInt8] {
        try encoded.get()
    }

    private static func encode(_ pairs: [String: String]) throws(KeywardCryptoError) -> [UInt8] {
        if pairs.isEmpty { return [] }
        guard pairs.count <= Self.maximumPairs else {
            throw .invalidParameter(name: "encryption context", reason: "\(pairs.count) pairs; at most \(maximumPairs) are allowed")
        }
        let sorted = pairs.map { (Array($0.key.utf8), Array($0.value.utf8)) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }
        var out: [UInt8] = []
        out.reserveCapacity(sorted.reduce(0) { $0 + 8 + $1.0.count + $1.1.count })
        for (key, value) in sorted {
            out.appendBigEndian(UInt32(key.count))
            out.append(contentsOf: key)
            out.appendBigEndian(UInt32(value.count))
            out.append(contentsOf: value)
        }
        guard out.count <= Self.maximumEncodedBytes else {
            throw .invalidParameter(name: "encryption context", reason: "encodes to \(out.count) bytes; at most \(maximumEncodedBytes) are allowed")
        }
        return out
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}
