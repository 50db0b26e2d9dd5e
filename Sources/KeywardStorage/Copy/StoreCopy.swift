import Foundation
import KeywardCrypto

/// Copies a whole store into an empty one, row for row: header, KEK, keys with their versions,
/// tags and aliases, tokens, the audit log and its revision index. Nothing is decrypted or
/// re-sealed, so the copy is the same store (same store id, same KEK, same MACs) on another
/// backend; `keyward store migrate` then opens it with the root of trust and verifies it.
///
/// The source must not change while it is copied (stop the nodes first): the copy reads the
/// audit head and the revision index once, at the start, and copies the log up to that head.
public enum StoreCopy {
    /// What was copied.
    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public var keys = 0
        public var versions = 0
        public var aliases = 0
        public var tokens = 0
        public var auditEntries = 0
        public var anchors = 0

        public var description: String {
            "\(keys) keys, \(versions) versions, \(aliases) aliases, \(tokens) tokens, \(auditEntries) audit entries, \(anchors) revision anchors"
        }
    }

    /// Copies `source` into `target`, which must hold no store yet.
    ///
    /// - Throws: `conflict` when the target already holds a store, or the source's audit intake
    ///   holds entries not yet chained; `corrupted` when the source
    ///   has no header or more than one KEK; any failure of either store. The target is written
    ///   in several transactions: after a failure, drop it and start again.
    public static func copy(from source: any KeyStore, to target: any KeyStore,
                            progress: @Sendable (String) -> Void = { _ in }) async throws(StorageError) -> Counts {
        guard let header = try await source.header() else { throw .corrupted("the source holds no store (no header)") }
        guard try await target.header() == nil else { throw .conflict("the target already holds a store; migrate into an empty database") }
        let keks = try await source.keks()
        guard keks.count == 1, let kek = keks.first, kek.id == header.activeKEK else {
            throw .corrupted("the source holds \(keks.count) KEKs; a store at rest holds exactly its active one (finish or repeat its KEK rotation first)")
        }
        // Entries waiting for the sequencer are part of the log but not of the chain: copying
        // would leave them behind, so a source with any is refused until a node has chained them.
        if source.keepsAuditIntake, !(try await source.auditIntake(limit: 1)).isEmpty {
            throw .conflict("the source's audit intake holds entries not yet chained; start a keyward serve node on it "
                            + "(it chains them within a second) or wait for one, then migrate")
        }
        let snapshot = try await source.anchorSnapshot()
        var counts = Counts()

        try await target.initialize(header: header, kek: kek)

        var restored: [RestoredKey] = []
        var cursor: KeyID? = nil
        while true {
            let page = try await source.listKeys(filter: KeyFilter(), after: cursor, limit: 500)
            guard let last = page.last else { break }
            for key in page {
                let versions = try await source.versions(key.id)
                let aliases = try await source.aliases(of: key.id)
                restored.append(RestoredKey(key: key, versions: versions, aliases: aliases))
                counts.keys += 1
                counts.versions += versions.count
                counts.aliases += aliases.count
            }
            cursor = last.id
            progress("read \(counts.keys) keys")
        }
        try await target.restoreKeys(restored)
        progress("wrote \(counts.keys) keys")

        var tokenCursor: KeyID? = nil
        while true {
            let page = try await source.tokens(after: tokenCursor, limit: 500)
            guard let last = page.last else { break }
            for token in page { try await target.insertToken(token) }
            counts.tokens += page.count
            tokenCursor = last.id
        }

        // The log up to the head read with the index; the index itself rides on the last batch
        // (an entry's anchors are written in its append's transaction and are not part of its
        // hash or MAC), so the target's index is the source's, row for row.
        // A pruned log: its checkpoint first, so the copied entries continue after it.
        let head = snapshot.head?.sequence ?? 0
        var after: Int64 = 0
        if let checkpoint = try await source.auditCheckpoint() {
            try await target.pruneAudit(checkpoint)
            after = checkpoint.sequence
        }
        while after < head {
            var batch = try await source.auditEntries(after: after, limit: 1000).filter { $0.sequence <= head }
            guard let last = batch.last else {
                throw .corrupted("the source's audit log ends at #\(after), before its head #\(head)")
            }
            if last.sequence == head {
                batch[batch.count - 1].anchors = snapshot.anchors
                counts.anchors = snapshot.anchors.count
            }
            try await target.appendAudit(batch)
            counts.auditEntries += batch.count
            after = last.sequence
            progress("copied \(counts.auditEntries) audit entries")
        }
        return counts
    }
}
