import Foundation
import KeywardCrypto

/// A run of audit entries exported from the store as a file anyone can check without the store
/// (docs/formats.md, "Audit segments"): JSON lines, the header first, then one line per entry.
///
/// The header names the store, the range (`first` to `last`), the chain hash the segment
/// continues from (`previousHash`, 32 zero bytes before entry 1) and ends with (`lastHash`), the
/// SHA-256 of the entry lines, and the store's audit signing key (`keyward/audit-signer`,
/// Ed25519), whose signature over the header line is the header's `signature`. So:
/// - an edited, dropped, inserted or reordered entry breaks the chain or the entries' digest;
/// - an edited header breaks the signature;
/// - consecutive segments chain: each one's `previousHash` is the one before's `lastHash`.
///
/// Each entry keeps its body (the canonical audit event), its chain hash and the hash it follows;
/// the store's batch MACs stay behind, since only the store can check them.
public struct AuditSegment: Sendable {
    /// The file format's name, in every header.
    public static let format = "keyward-audit-segment-v1"

    /// What the signature covers: everything about the segment but the entry bodies, which the
    /// digest covers.
    public struct Header: Codable, Sendable, Equatable {
        /// `keyward-audit-segment-v1`.
        public var format: String
        /// The store the entries come from.
        public var store: KeyID
        /// The first and last sequence numbers.
        public var first: Int64
        /// The last sequence number.
        public var last: Int64
        /// The chain hash of entry `first - 1` (hex), which the first entry follows.
        public var previousHash: String
        /// The chain hash of entry `last` (hex).
        public var lastHash: String
        /// SHA-256 (hex) of the entry lines, each with its newline.
        public var entriesSHA256: String
        /// When the segment was made.
        public var createdAt: Date
        /// The signing key: its id and version in the store, and its public key (SPKI DER, base64).
        public var signerKeyID: KeyID
        /// The signing key's version.
        public var signerVersion: UInt32
        /// The signing key's public key (SPKI DER, base64).
        public var signerPublicKey: String
    }

    /// One entry: its sequence, the hash it follows, its own chain hash (both hex) and its body
    /// (base64 of the canonical audit event).
    public struct Entry: Codable, Sendable, Equatable {
        public var sequence: Int64
        public var previousHash: String
        public var hash: String
        public var body: String
    }

    /// The header, as signed.
    public let header: Header
    /// The entries, in order.
    public let entries: [Entry]
    /// The Ed25519 signature over `headerLine`.
    public let signature: [UInt8]
    /// The header's JSON line as signed (without its newline).
    let headerLine: [UInt8]
    /// The entry lines, each with its newline, as digested.
    let entryLines: [UInt8]

    /// The file: a line `{"header": ..., "signature": ...}` (the header line embedded verbatim),
    /// then one line per entry.
    public var bytes: [UInt8] {
        Array(#"{"signature":""#.utf8) + Array(AuditSegment.base64(signature).utf8) + Array(#"","header":"#.utf8) + headerLine + Array("}\n".utf8) + entryLines
    }

    /// A segment of `rows` (consecutive entries) from `store`, to be signed: the header line and
    /// entry lines it will hold.
    static func unsigned(store: KeyID, entries: [Entry], previousHash: [UInt8], createdAt: Date, signer: (id: KeyID, version: UInt32, publicKey: PublicKey)) throws(KeywardError) -> (header: Header, headerLine: [UInt8], entryLines: [UInt8]) {
        guard let first = entries.first, let last = entries.last else { throw .invalidArgument("an audit segment holds at least one entry") }
        var lines: [UInt8] = []
        for entry in entries {
            lines += try CanonicalJSON.encode(entry)
            lines.append(0x0A)
        }
        let header = Header(format: format, store: store, first: first.sequence, last: last.sequence, previousHash: AuditSegment.hex(previousHash),
                            lastHash: last.hash, entriesSHA256: AuditSegment.hex(SHA256Hash.hash(lines)), createdAt: createdAt,
                            signerKeyID: signer.id, signerVersion: signer.version, signerPublicKey: AuditSegment.base64(signer.publicKey.representation))
        return (header, try CanonicalJSON.encode(header), lines)
    }

    init(header: Header, headerLine: [UInt8], entries: [Entry], entryLines: [UInt8], signature: [UInt8]) {
        self.header = header
        self.headerLine = headerLine
        self.entries = entries
        self.entryLines = entryLines
        self.signature = signature
    }

    /// Reads a segment file. Its structure only: `verify` checks what it claims.
    ///
    /// - Throws: `integrityFailure` naming the line that is not what the format says.
    public init(parsing bytes: [UInt8]) throws(KeywardError) {
        guard let newline = bytes.firstIndex(of: 0x0A) else { throw .integrityFailure("not an audit segment: no header line") }
        let first = Array(bytes[..<newline])
        // {"signature":"<base64>","header":<header line>}
        let prefix = Array(#"{"signature":""#.utf8), middle = Array(#"","header":"#.utf8)
        guard first.starts(with: prefix), first.last == 0x7D,
              let quote = first[prefix.count...].firstIndex(of: 0x22),
              first[quote...].starts(with: middle),
              let signature = AuditSegment.fromBase64(String(decoding: first[prefix.count..<quote], as: UTF8.self)),
              // Only the canonical text: base64's unused low bits would let one signature have several spellings.
              AuditSegment.base64(signature) == String(decoding: first[prefix.count..<quote], as: UTF8.self) else {
            throw .integrityFailure("not an audit segment: the first line is not its signed header")
        }
        let headerLine = Array(first[(quote + middle.count)..<(first.count - 1)])
        let header = try CanonicalJSON.decode(Header.self, from: headerLine, what: "the segment's header")
        guard header.format == Self.format else { throw .integrityFailure("not an audit segment of format \(Self.format) (it says \(header.format.prefix(40)))") }
        var entries: [Entry] = []
        var start = newline + 1
        while start < bytes.count {
            guard let end = bytes[start...].firstIndex(of: 0x0A) else { throw .integrityFailure("the segment's last entry line is cut off") }
            entries.append(try CanonicalJSON.decode(Entry.self, from: Array(bytes[start..<end]), what: "entry line \(entries.count + 1) of the segment"))
            start = end + 1
        }
        self.init(header: header, headerLine: headerLine, entries: entries, entryLines: Array(bytes[(newline + 1)...]), signature: signature)
    }

    /// What is wrong with this segment (empty when it is intact): the signature, by `signer` when
    /// given (the store's audit signing key, pinned) or else by the key the header names; the
    /// entries' digest; each entry's chain hash and link; the range and hashes the header claims.
    public func problems(signer pinned: PublicKey? = nil) -> [String] {
        var problems: [String] = []
        let named = AuditSegment.fromBase64(header.signerPublicKey).flatMap { try? PublicKey(spec: .ed25519, bytes: $0) }
        if let pinned, pinned.representation != named?.representation {
            problems.append("signed by key \(header.signerKeyID), not by the audit signing key you named: not from the store you trust")
        } else if let key = pinned ?? named {
            if (try? key.verify(signature, for: .message(headerLine))) != true {
                problems.append("the header's signature does not verify: the header was altered or forged")
            }
        } else {
            problems.append("the header names no usable signing key")
        }
        if AuditSegment.hex(SHA256Hash.hash(entryLines)) != header.entriesSHA256 {
            problems.append("the entry lines do not match the signed digest: entries were altered, added, removed or reordered")
        }
        var previous = header.previousHash
        var expected = header.first
        for entry in entries {
            if entry.sequence != expected { problems.append("entry #\(expected): missing (the next line is #\(entry.sequence))") }
            if entry.previousHash != previous { problems.append("entry #\(entry.sequence): does not follow the entry before it") }
            if let body = AuditSegment.fromBase64(entry.body), let previousBytes = AuditSegment.fromHex(entry.previousHash) {
                if AuditSegment.hex(AuditLog.chainHash(previous: previousBytes, sequence: entry.sequence, body: body)) != entry.hash {
                    problems.append("entry #\(entry.sequence): its content was changed (hash mismatch)")
                }
            } else {
                problems.append("entry #\(entry.sequence): its body or hash is not well formed")
            }
            previous = entry.hash
            expected = entry.sequence + 1
        }
        if expected - 1 != header.last || previous != header.lastHash {
            problems.append("the entries end at #\(expected - 1), but the header says #\(header.last) with another hash")
        }
        return problems
    }

    /// What is wrong with `segments` as one log (each intact, from one store, and each following
    /// the one before it); the first must start at entry 1 when `fromStart`.
    public static func problems(_ segments: [AuditSegment], signer: PublicKey? = nil, fromStart: Bool = false) -> [String] {
        var problems: [String] = []
        for (index, segment) in segments.enumerated() {
            problems += segment.problems(signer: signer).map { "segment \(index + 1) (#\(segment.header.first)–#\(segment.header.last)): \($0)" }
            if index == 0 {
                if fromStart, segment.header.first != 1 || segment.header.previousHash != AuditSegment.hex([UInt8](repeating: 0, count: 32)) {
                    problems.append("segment 1 starts at #\(segment.header.first), not at the log's first entry")
                }
                continue
            }
            let before = segments[index - 1]
            if segment.header.store != before.header.store {
                problems.append("segment \(index + 1) comes from store \(segment.header.store), segment \(index) from \(before.header.store)")
            }
            if segment.header.first != before.header.last + 1 || segment.header.previousHash != before.header.lastHash {
                problems.append("segment \(index + 1) (#\(segment.header.first)–) does not follow segment \(index) (–#\(before.header.last)): entries between them are missing or were changed")
            }
        }
        return problems
    }

    // MARK: Text forms of bytes

    static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }

    static func fromHex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = UInt8(String(decoding: utf8[index..<(index + 2)], as: UTF8.self), radix: 16) else { return nil }
            out.append(high)
            index += 2
        }
        return out
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func fromBase64(_ text: some StringProtocol) -> [UInt8]? { Data(base64Encoded: String(text)).map { [UInt8]($0) } }
}
