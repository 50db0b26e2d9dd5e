import Foundation
import KeywardCrypto
import KeywardStorage

/// A point of the audit chain recorded outside the store: the store id, a sequence number and
/// that entry's chain hash. The chain and its MACs prove that entries were not changed, but
/// someone who can write the store file can delete the newest entries (a shorter chain still
/// verifies) or put back an older copy of the whole file. An anchor kept elsewhere (a file on
/// another system, a log collector, syslog) catches both: the store must still hold that entry,
/// with that hash (`KeyService.checkAuditAnchors`).
///
/// One line of text: `keyward-audit-anchor v1 store=<uuid> sequence=<n> hash=<64 hex> at=<RFC 3339>`.
public struct AuditAnchor: Sendable, Hashable {
    /// The store whose log this is.
    public var storeID: KeyID
    /// The entry's sequence number.
    public var sequence: Int64
    /// The entry's chain hash (32 bytes).
    public var hash: [UInt8]
    /// When the anchor was taken.
    public var recordedAt: Date

    /// An anchor of these values.
    public init(storeID: KeyID, sequence: Int64, hash: [UInt8], recordedAt: Date) {
        self.storeID = storeID
        self.sequence = sequence
        self.hash = hash
        self.recordedAt = recordedAt
    }

    /// The anchor as one line of text (no newline).
    public var line: String {
        "keyward-audit-anchor v1 store=\(storeID) sequence=\(sequence) hash=\(hash.map { String(format: "%02x", $0) }.joined()) "
            + "at=\(recordedAt.formatted(.iso8601))"
    }

    /// Parses `line` as written by `line`, or nil when it is not an anchor line (a log line with
    /// a prefix before `keyward-audit-anchor` is read from that word on).
    public init?(line: String) {
        guard let start = line.range(of: "keyward-audit-anchor v1 ") else { return nil }
        var fields: [String: String] = [:]
        for part in line[start.upperBound...].split(separator: " ") {
            guard let equals = part.firstIndex(of: "=") else { return nil }
            fields[String(part[..<equals])] = String(part[part.index(after: equals)...])
        }
        guard let store = fields["store"].flatMap({ KeyID(parsing: $0) }),
              let sequence = fields["sequence"].flatMap({ Int64($0) }), sequence >= 1,
              let hex = fields["hash"], hex.count == 64, let at = fields["at"], let date = try? Date(at, strategy: .iso8601) else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(storeID: store, sequence: sequence, hash: bytes, recordedAt: date)
    }
}

extension KeyService {
    /// The anchor of the newest committed audit entry, or nil while the log is empty.
    public func auditAnchor() async throws(KeywardError) -> AuditAnchor? {
        guard let head = try await storing({ () async throws(StorageError) in try await store.auditHead() }) else { return nil }
        return AuditAnchor(storeID: header.storeID, sequence: head.sequence, hash: head.hash, recordedAt: clock.now)
    }

    /// Checks the store's audit log against anchors recorded earlier: each must name this store,
    /// and the log must still hold its entry with its hash. Returns one line per anchor that
    /// fails, naming what that means (newest entries deleted, the store rolled back, or the
    /// log rewritten); empty when every anchor holds. Anchors of other stores are reported, not
    /// skipped, so a wrong file cannot pass for a check.
    public func checkAuditAnchors(_ anchors: [AuditAnchor]) async throws(KeywardError) -> [String] {
        var problems: [String] = []
        let head = try await storing({ () async throws(StorageError) in try await store.auditHead() })?.sequence ?? 0
        // Entries a retention run removed are checked against the checkpoint that stands for them.
        var pruned: (sequence: Int64, hash: [UInt8])? = nil
        if let row = try await storing({ () async throws(StorageError) in try await store.auditCheckpoint() }) {
            do {
                let checkpoint = try await verifiedAuditCheckpoint(row)
                pruned = (checkpoint.sequence, checkpoint.hashBytes ?? [])
            } catch {
                problems.append("audit checkpoint (#\(row.sequence)): \(error)")
            }
        }
        for anchor in anchors {
            let when = anchor.recordedAt.formatted(.iso8601)
            guard anchor.storeID == header.storeID else {
                problems.append("the anchor of \(when) is of store \(anchor.storeID), not this store (\(header.storeID))")
                continue
            }
            guard anchor.sequence <= head else {
                problems.append("the anchor of \(when) records audit #\(anchor.sequence), but the log ends at #\(head): "
                                + "the newest entries were deleted or the store was rolled back to an older copy")
                continue
            }
            if let pruned, anchor.sequence <= pruned.sequence {
                // Archived: only the checkpoint's own entry has its hash in the store.
                if anchor.sequence == pruned.sequence, anchor.hash != pruned.hash {
                    problems.append("audit #\(anchor.sequence) differs from the anchor of \(when): the log was rewritten or replaced from there on")
                }
                continue
            }
            let rows = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: anchor.sequence - 1, limit: 1) })
            guard let row = rows.first, row.sequence == anchor.sequence else {
                problems.append("the anchor of \(when) records audit #\(anchor.sequence), which the log no longer holds: entries were removed")
                continue
            }
            if row.hash != anchor.hash {
                problems.append("audit #\(anchor.sequence) differs from the anchor of \(when): the log was rewritten or replaced from there on")
            }
        }
        return problems
    }
}

/// Appends anchor lines to a file: created 0600, never through a symbolic link, each line
/// written in one `write` with `O_APPEND` and synced before returning, so a crash leaves whole
/// lines only.
public enum AuditAnchorFile {
    /// Appends `line` and a newline to the file at `path`.
    ///
    /// - Throws: `storeState` naming the file and the system's reason.
    public static func append(_ line: String, to path: String) throws(KeywardError) {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .storeState("cannot open the audit anchor file \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array((line + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            throw .storeState("cannot write the audit anchor file \(path): \(String(cString: strerror(errno)))")
        }
    }
}
