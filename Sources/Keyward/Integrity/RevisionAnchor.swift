import Foundation
import KeywardCrypto
import KeywardStorage

/// A mutable record whose newest revision the audit log anchors: a key's metadata row, one of
/// its versions, an API token or an alias.
public enum AnchoredRecord: Hashable, Sendable, CustomStringConvertible {
    /// A key's metadata row.
    case key(KeyID)
    /// One version row of a key.
    case version(KeyID, UInt32)
    /// An API token's row.
    case token(KeyID)
    /// An alias row.
    case alias(String)

    /// The record's identity in the revision index: a kind byte, then the id.
    var identity: [UInt8] {
        switch self {
        case .key(let id): [1] + id.bytes
        case .version(let id, let number): [2] + id.bytes + RecordProtection.bytes(number)
        case .token(let id): [3] + id.bytes
        case .alias(let name): [4] + Array(name.utf8)
        }
    }

    /// The record named by an identity from the revision index, nil for bytes no record has.
    init?(identity: [UInt8]) {
        guard let kind = identity.first else { return nil }
        let rest = Array(identity.dropFirst())
        switch kind {
        case 1 where rest.count == 16:
            guard let id = try? KeyID(bytes: rest) else { return nil }
            self = .key(id)
        case 2 where rest.count == 20:
            guard let id = try? KeyID(bytes: Array(rest[..<16])) else { return nil }
            self = .version(id, rest[16...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 3 where rest.count == 16:
            guard let id = try? KeyID(bytes: rest) else { return nil }
            self = .token(id)
        case 4 where !rest.isEmpty:
            guard let name = String(validating: rest, as: UTF8.self) else { return nil }
            self = .alias(name)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .key(let id): "key \(id)"
        case .version(let id, let number): "version \(number) of key \(id)"
        case .token(let id): "token \(id)"
        case .alias(let name): "alias \(name)"
        }
    }
}

/// One revision an audit entry anchors: `record` is at `revision`, or was deleted by it.
///
/// In an entry's body it is a string: `key:<id>:<revision>`, `version:<id>:<number>:<revision>`,
/// `token:<id>:<revision>` or `alias:<name>:<revision>`, with `:deleted` appended for a deletion.
public struct RevisionAnchor: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The record.
    public var record: AnchoredRecord
    /// Its revision after the audited change.
    public var revision: Int64
    /// True when the change removed the record.
    public var deleted: Bool

    /// `record` at `revision` (deleted by it when `deleted`).
    public init(_ record: AnchoredRecord, _ revision: Int64, deleted: Bool = false) {
        self.record = record
        self.revision = revision
        self.deleted = deleted
    }

    /// The body's text form.
    public var description: String {
        let head = switch record {
        case .key(let id): "key:\(id)"
        case .version(let id, let number): "version:\(id):\(number)"
        case .token(let id): "token:\(id)"
        case .alias(let name): "alias:\(name)"
        }
        return "\(head):\(revision)\(deleted ? ":deleted" : "")"
    }

    /// Parses the body's text form; nil for anything else.
    public init?(_ text: String) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let deleted = parts.last == "deleted"
        if deleted { parts.removeLast() }
        guard parts.count >= 3, let revision = Int64(parts.removeLast()), revision > 0 else { return nil }
        switch (parts[0], parts.count) {
        case ("key", 2): guard let id = KeyID(parsing: parts[1]) else { return nil }; record = .key(id)
        case ("token", 2): guard let id = KeyID(parsing: parts[1]) else { return nil }; record = .token(id)
        case ("alias", 2): guard !parts[1].isEmpty else { return nil }; record = .alias(parts[1])
        case ("version", 3):
            guard let id = KeyID(parsing: parts[1]), let number = UInt32(parts[2]) else { return nil }
            record = .version(id, number)
        default: return nil
        }
        self.revision = revision
        self.deleted = deleted
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = RevisionAnchor(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a revision anchor"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The storage row for the revision index.
    var row: RevisionAnchorRow { RevisionAnchorRow(record: record.identity, revision: revision, deleted: deleted) }
}

/// The revision index as the audit log defines it: the newest revision of every anchored record,
/// and a digest of the whole index that each audit batch MAC covers.
///
/// The digest is the sum, modulo 2^256, of one element per record, `HMAC(anchorKey, identity ||
/// revision || deleted)`. A sum can be updated per change (subtract the old element, add the new),
/// so a batch costs one HMAC per anchored change, not one per record; the elements are keyed, so
/// no one without the KEK can make up index rows whose sum matches.
struct RevisionIndex: Sendable {
    struct Entry: Sendable, Hashable {
        var revision: Int64
        var deleted: Bool
        /// The audit entry that anchored it, when this process saw it written (0 for entries
        /// loaded with the index): what a `ReadFence` compares.
        var sequence: Int64 = 0
    }

    private(set) var entries: [[UInt8]: Entry] = [:]
    private(set) var digest = Digest()

    /// A 256-bit sum, as four little-endian 64-bit limbs.
    struct Digest: Sendable, Hashable {
        var limbs: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        static func == (a: Digest, b: Digest) -> Bool { a.bytes == b.bytes }
        func hash(into hasher: inout Hasher) { hasher.combine(bytes) }

        /// Big-endian bytes, for the MAC.
        var bytes: [UInt8] {
            [limbs.3, limbs.2, limbs.1, limbs.0].flatMap { withUnsafeBytes(of: $0.bigEndian) { Array($0) } }
        }

        /// Adds (or, with `negate`, subtracts) a 32-byte big-endian element.
        mutating func add(_ element: [UInt8], negate: Bool = false) {
            var words = (0..<4).map { index -> UInt64 in
                element[(24 - 8 * index)..<(32 - 8 * index)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            if negate {
                // Two's complement: invert and add one.
                var carry: UInt64 = 1
                for index in 0..<4 {
                    let (sum, overflow) = (~words[index]).addingReportingOverflow(carry)
                    words[index] = sum
                    carry = overflow ? 1 : 0
                }
            }
            var current = [limbs.0, limbs.1, limbs.2, limbs.3]
            var carry: UInt64 = 0
            for index in 0..<4 {
                let (partial, overflowA) = current[index].addingReportingOverflow(words[index])
                let (sum, overflowB) = partial.addingReportingOverflow(carry)
                current[index] = sum
                carry = (overflowA ? 1 : 0) + (overflowB ? 1 : 0)
            }
            limbs = (current[0], current[1], current[2], current[3])
        }
    }

    /// The index's entry for `record`, if the audit log anchors it.
    func entry(_ record: AnchoredRecord) -> Entry? { entries[record.identity] }

    /// How many records are anchored.
    var count: Int { entries.count }

    /// Applies anchored changes, in order.
    mutating func apply(_ anchors: [RevisionAnchorRow], protection: RecordProtection) throws(KeywardError) {
        adopt(try pending(anchors, protection: protection))
    }

    /// Changes to the index and the digest they lead to, computed without changing it.
    struct Pending: Sendable {
        var changes: [[UInt8]: Entry] = [:]
        var digest: Digest
    }

    /// What applying `anchors` in order would do, leaving the index as it is (so the writer
    /// thread never copies the index while it waits for a batch to be written).
    /// `start` continues an earlier `pending` of this index.
    /// `sequence` is the audit entry that anchors them.
    func pending(_ anchors: [RevisionAnchorRow], sequence: Int64 = 0, protection: RecordProtection,
                 continuing start: Pending? = nil) throws(KeywardError) -> Pending {
        var pending = start ?? Pending(digest: digest)
        for anchor in anchors {
            if let old = pending.changes[anchor.record] ?? entries[anchor.record] {
                pending.digest.add(try protection.anchorElement(RevisionAnchorRow(record: anchor.record, revision: old.revision, deleted: old.deleted)), negate: true)
            }
            pending.changes[anchor.record] = Entry(revision: anchor.revision, deleted: anchor.deleted, sequence: sequence)
            pending.digest.add(try protection.anchorElement(anchor))
        }
        return pending
    }

    /// Applies what `pending` computed.
    mutating func adopt(_ pending: Pending) {
        for (record, entry) in pending.changes { entries[record] = entry }
        digest = pending.digest
    }

    /// The index of a snapshot's rows.
    init(rows: [RevisionAnchorRow], protection: RecordProtection) throws(KeywardError) {
        try apply(rows, protection: protection)
    }

    /// An empty index.
    init() {}

    /// Every entry, as storage rows.
    var rows: [RevisionAnchorRow] { entries.map { RevisionAnchorRow(record: $0.key, revision: $0.value.revision, deleted: $0.value.deleted) } }
}

/// The audit sequence a reader saw before it read a row: anchors written after it are not yet
/// binding on that row, which may have been read just before the change they anchor was
/// committed (a key updated while another request loads it is not a replay).
struct ReadFence: Sendable {
    let sequence: Int64

    /// Whether `entry` was anchored before the row was read.
    func binds(_ entry: RevisionIndex.Entry) -> Bool { entry.sequence <= sequence }
}
