import Foundation
import KeywardCrypto
import KeywardStorage

/// The signed statement that stands for the audit entries a retention run removed from the
/// store (docs/formats.md, "Audit checkpoint").
///
/// It names the last removed entry (`sequence`) and its chain hash, so the first kept entry
/// must follow it, and the revision index as that entry left it, so the batch MACs of the kept
/// entries verify over the index they continue. The store's audit signing key
/// (`keyward/audit-signer`, Ed25519) signs its canonical JSON; its key and version are named,
/// and the key must be the one the store's reserved alias names. So:
/// - removing kept entries, or putting an older checkpoint back, leaves a gap after it;
/// - an edited checkpoint (another sequence, hash or index) fails the signature;
/// - a checkpoint made up for a log pruned by hand needs the signing key, which only the store
///   (under its KEK) holds.
/// The removed entries live on in the signed segment files the run archived first.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    /// The body's format name.
    public static let format = "keyward-audit-checkpoint-v1"

    /// One row of the revision index: the record's identity (base64), its revision, whether
    /// that revision deleted it.
    public struct Anchor: Codable, Sendable, Equatable {
        public var record: String
        public var revision: Int64
        public var deleted: Bool
    }

    /// `keyward-audit-checkpoint-v1`.
    public var format: String
    /// The store whose log this is.
    public var store: KeyID
    /// The last removed entry.
    public var sequence: Int64
    /// That entry's chain hash (hex), which the first kept entry follows.
    public var hash: String
    /// The revision index as of that entry, sorted by record.
    public var anchors: [Anchor]
    /// The signing key (the store's audit signer) and its version.
    public var signerKeyID: KeyID
    /// The signing key's version.
    public var signerVersion: UInt32
    /// When the checkpoint was made.
    public var createdAt: Date

    /// The index rows the anchors name.
    var rows: [RevisionAnchorRow] {
        get throws(KeywardError) {
            var rows: [RevisionAnchorRow] = []
            for anchor in anchors {
                guard let record = Data(base64Encoded: anchor.record) else {
                    throw .integrityFailure("the audit checkpoint names a record that is not base64")
                }
                rows.append(RevisionAnchorRow(record: Array(record), revision: anchor.revision, deleted: anchor.deleted))
            }
            return rows
        }
    }

    /// The chain hash as bytes.
    var hashBytes: [UInt8]? { AuditSegment.fromHex(hash).flatMap { $0.count == 32 ? $0 : nil } }

    /// A checkpoint of entry `sequence` with chain hash `hash`, after which the index holds `rows`.
    init(store: KeyID, sequence: Int64, hash: [UInt8], rows: [RevisionAnchorRow], signer: (id: KeyID, version: UInt32), createdAt: Date) {
        format = Self.format
        self.store = store
        self.sequence = sequence
        self.hash = AuditSegment.hex(hash)
        anchors = rows.sorted { $0.record.lexicographicallyPrecedes($1.record) }
            .map { Anchor(record: Data($0.record).base64EncodedString(), revision: $0.revision, deleted: $0.deleted) }
        signerKeyID = signer.id
        signerVersion = signer.version
        self.createdAt = createdAt
    }
}

/// What an audit retention run did.
public struct AuditPruning: Sendable, Hashable {
    /// The last entry removed from the store; nil when nothing was old enough.
    public var through: Int64?
    /// Entries removed.
    public var entries: Int
    /// The segment files written before the entries were removed, oldest first.
    public var segments: [String]
}

/// Writes audit segment files into an archive directory: each created new (never over an
/// existing file, never through a symbolic link), 0600, written and synced before the next step.
public enum AuditArchive {
    /// The file name of the segment holding entries `first` to `last` of `store`.
    public static func fileName(store: KeyID, first: Int64, last: Int64) -> String {
        "keyward-audit-\(store)-\(String(format: "%012lld", first))-\(String(format: "%012lld", last)).jsonl"
    }

    /// Writes `segment` into `directory` and returns the file's path.
    ///
    /// - Throws: `storeState` naming the file and the system's reason (an existing file
    ///   included: an archive is never overwritten).
    public static func write(_ segment: AuditSegment, into directory: String) throws(KeywardError) -> String {
        let path = (directory as NSString).appendingPathComponent(fileName(store: segment.header.store, first: segment.header.first, last: segment.header.last))
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .storeState("cannot create the audit archive file \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = segment.bytes
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw .storeState("cannot write the audit archive file \(path): \(String(cString: strerror(errno)))") }
            offset += written
        }
        guard fsync(descriptor) == 0 else { throw .storeState("cannot sync the audit archive file \(path): \(String(cString: strerror(errno)))") }
        let folder = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 { _ = fsync(folder); close(folder) }
        return path
    }
}
