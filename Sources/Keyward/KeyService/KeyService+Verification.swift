import Foundation
import KeywardCrypto
import KeywardStorage

/// What `verifyStore` found.
public struct StoreVerification: Sendable, Hashable {
    /// Key rows checked.
    public var keys = 0
    /// Key versions checked.
    public var versions = 0
    /// Aliases checked.
    public var aliases = 0
    /// Token rows checked.
    public var tokens = 0
    /// The audit chain's result.
    public var audit = AuditVerification(entries: 0, problems: [])
    /// One line per record that fails, naming it.
    public var problems: [String] = []
    /// True when every record and the audit chain check out.
    public var isIntact: Bool { problems.isEmpty && audit.isIntact }
    /// Every problem found, the audit chain's first: records are checked against the revisions
    /// the chain replays, so an entry changed or removed also shows as problems of the records it
    /// anchored, and the chain's problem is the one to read first.
    public var allProblems: [String] { audit.problems + problems }
}

extension KeyService {
    /// Checks the whole store against itself and the audit log:
    /// - the audit chain (`verifyAudit`), replaying the revisions it anchors;
    /// - the stored revision index against that replay (an edited index);
    /// - every key row (MAC, columns), version (MAC, sealed material opens under its binding),
    ///   alias (MAC, names a key that exists) and token (MAC, record) against its anchored
    ///   revision (a replayed row), and every record the log anchors against the store (a
    ///   deleted row).
    ///
    /// Each failing record is named; nothing is changed. `progress` is called with the number of
    /// keys checked so far. With `inBackground` (a server's periodic verification) the audit walk
    /// paces itself, sleeping three times as long as each page took, so that walking a long log
    /// takes at most a quarter of a core from the requests being served, for four times as long.
    public func verifyStore(inBackground: Bool = false, progress: @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> StoreVerification {
        try await verifyStore(inBackground: inBackground, resumingAfter: nil, progress: progress).report
    }

    /// `verifyStore`, walking the audit chain only past `point`, where an earlier verification
    /// of this store ended (a point of another store is ignored). Every record is still checked,
    /// against the revisions the chain anchors through its end. Returns where this walk ended:
    /// nil when the chain had a problem, so that the next verification walks it from the start. A log whose first
    /// entries were removed past `point` (audit retention) is walked from its checkpoint; a log
    /// that now ends before `point` is reported (entries removed from its end).
    public func verifyStore(inBackground: Bool, resumingAfter point: AuditWalkPoint?,
                            progress: @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> (report: StoreVerification, walked: AuditWalkPoint?) {
        var report = StoreVerification()
        // The stored head and revision index first, read together, then the audit chain up to
        // that head: the revisions it anchors are the reference for replay checks, and the index
        // must be what replaying exactly those entries leaves. (Walking first and reading the
        // index after would take every write audited in between, on a serving node any
        // reservation, for an edited index.)
        let snapshot = try await storing({ () async throws(StorageError) in try await store.anchorSnapshot() })
        var chain = RevisionIndex()
        let head = snapshot.head?.sequence ?? 0
        let point = point.flatMap { $0.store == protection.storeID ? $0 : nil }
        var walkedTo: (sequence: Int64, hash: [UInt8])? = nil
        if let point, head < point.sequence {
            report.audit = AuditVerification(entries: 0, problems: [
                "the audit log ends at #\(head), but #\(point.sequence) was verified earlier: entries were removed from its end"])
            chain = point.index
        } else {
            let walk = try await verifyAudit(replaying: &chain, through: head, paced: inBackground, resumingAfter: point)
            report.audit = walk.verification
            walkedTo = (walk.last, walk.lastHash)
        }
        var unseen = Set(chain.rows.compactMap { $0.deleted ? nil : AnchoredRecord(identity: $0.record) })
        func check(_ record: AnchoredRecord, _ revision: Int64) {
            unseen.remove(record)
            guard let anchored = chain.entry(record) else { return }
            if anchored.deleted ? anchored.revision >= revision : anchored.revision > revision {
                report.problems.append("\(record): revision \(revision) is older than the audited revision \(anchored.revision)"
                                       + "\(anchored.deleted ? " (which deleted it)" : "") (replayed row)")
            }
        }

        let stored = snapshot.anchors
        func named(_ identity: [UInt8]) -> String { AnchoredRecord(identity: identity).map { "\($0)" } ?? "an unknown record" }
        for row in stored {
            let audited = chain.entries[row.record]
            if audited?.revision != row.revision || audited?.deleted != row.deleted {
                // An index ahead of the chain is also what deleting the log's newest entries
                // leaves (their index changes kept): only anchors kept elsewhere tell the two apart.
                let ahead = (audited?.revision ?? 0) < row.revision
                report.problems.append("revision index: \(named(row.record)) is at revision \(row.revision) but the audit log says "
                                       + "\(audited.map { String($0.revision) } ?? "nothing")"
                                       + (ahead ? " (the index was edited, or the audit log's newest entries were removed: "
                                          + "`keyward audit verify --anchors` tells which)" : " (index edited)"))
            }
        }
        let storedRecords = Set(stored.map(\.record))
        for identity in chain.entries.keys where !storedRecords.contains(identity) {
            report.problems.append("revision index: \(named(identity)) is missing from it (index edited)")
        }

        var keyIDs = Set<KeyID>()
        var cursor: KeyID? = nil
        while true {
            let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: KeyFilter(), after: cursor, limit: 500) })
            for row in rows {
                report.keys += 1
                keyIDs.insert(row.id)
                check(.key(row.id), row.revision)
                // A key row that fails is named, and its versions are still checked (their own MAC
                // and revision), so that they are not reported as deleted; their material is
                // opened only under metadata that verified (it names the key's spec).
                var metadata: KeyMetadata? = nil
                do {
                    try protection.check(row.mac, RecordFraming.key(row), what: "the row of key \(row.id)")
                    let decoded = try CanonicalJSON.decode(KeyMetadata.self, from: row.body, what: "the metadata of key \(row.id)")
                    guard decoded.id == row.id, decoded.spec.rawValue == row.spec, decoded.state.rawValue == row.state else {
                        throw KeywardError.integrityFailure("the columns of key \(row.id) disagree with its MAC'd body")
                    }
                    metadata = decoded
                } catch {
                    report.problems.append("key \(row.id): \(error)")
                }
                let versions = try await storing({ () async throws(StorageError) in try await store.versions(row.id) })
                for version in versions {
                    report.versions += 1
                    check(.version(row.id, version.version), version.revision)
                    do {
                        try protection.check(version.mac, RecordFraming.version(version), what: "version \(version.version) of key \(row.id)")
                        let versionMetadata = try CanonicalJSON.decode(VersionMetadata.self, from: version.body, what: "version \(version.version) of key \(row.id)")
                        if let metadata, versionMetadata.state != "destroyed" {
                            _ = try protection.open(version.sealed, keyID: row.id, version: version.version, spec: metadata.spec)
                        }
                    } catch {
                        report.problems.append("key \(row.id) version \(version.version): \(error)")
                    }
                }
                if let metadata, versions.count != Int(metadata.currentVersion) {
                    report.problems.append("key \(row.id): \(versions.count) version rows but metadata says \(metadata.currentVersion)")
                }
            }
            progress(report.keys)
            guard rows.count == 500 else { break }
            cursor = rows.last?.id
        }

        var aliasCursor: String? = nil
        while true {
            let rows = try await storing({ () async throws(StorageError) in try await store.aliases(after: aliasCursor, limit: 500) })
            for alias in rows {
                report.aliases += 1
                check(.alias(alias.name), alias.revision)
                do { try protection.check(alias.mac, RecordFraming.alias(alias), what: "alias \(alias.name)") } catch {
                    report.problems.append("alias \(alias.name): \(error)")
                }
                if !keyIDs.contains(alias.keyID) {
                    report.problems.append("alias \(alias.name): points at key \(alias.keyID), which the store does not hold (dangling alias)")
                }
            }
            guard rows.count == 500 else { break }
            aliasCursor = rows.last?.name
        }

        var tokenCursor: KeyID? = nil
        while true {
            let rows = try await storing({ () async throws(StorageError) in try await store.tokens(after: tokenCursor, limit: 500) })
            for token in rows {
                report.tokens += 1
                check(.token(token.id), token.revision)
                do {
                    try protection.check(token.mac, RecordFraming.token(token), what: "token \(token.id)")
                    let record = try CanonicalJSON.decode(TokenRecord.self, from: token.body, what: "token \(token.id)")
                    if record.id != token.id { report.problems.append("token \(token.id): its row holds the record of token \(record.id)") }
                } catch {
                    report.problems.append("token \(token.id): \(error)")
                }
            }
            guard rows.count == 500 else { break }
            tokenCursor = rows.last?.id
        }

        // A row the chain up to the first snapshot records may have been removed since, by a
        // write audited after it (an alias deleted, a destroyed version's material removed). The
        // head and index are read again and checked against each other (the head's MAC covers
        // the index), and a record they show as removed or moved on was changed, not deleted.
        if !unseen.isEmpty {
            let later = try await storing({ () async throws(StorageError) in try await store.anchorSnapshot() })
            if let current = try? AuditLog.verifiedSnapshot(later, protection: protection).index {
                unseen = unseen.filter { record in
                    guard let now = current.entry(record), let then = chain.entry(record) else { return true }
                    return !(now.deleted || now.revision > then.revision)
                }
            }
        }
        for record in unseen.sorted(by: { $0.description < $1.description }) {
            report.problems.append("\(record): the audit log records it (revision \(chain.entry(record)?.revision ?? 0)) but the store has no row (deleted)")
        }
        guard report.audit.isIntact, let walkedTo else { return (report, nil) }
        return (report, AuditWalkPoint(store: protection.storeID, sequence: walkedTo.sequence, hash: walkedTo.hash, index: chain))
    }

    /// Walks the audit chain from the first entry the store holds: the checkpoint of a pruned
    /// log (its signature, and the first entry following it), sequence numbers without gaps,
    /// each entry's hash over its predecessor's, each batch MAC (over the chain hash and the
    /// revision index the entries anchor), and the key-id and entry-id columns against each
    /// body. Names every entry that fails.
    public func verifyAudit() async throws(KeywardError) -> AuditVerification {
        var index = RevisionIndex()
        return try await verifyAudit(replaying: &index)
    }

    /// `verifyAudit`, leaving in `index` the revisions the chain anchors.
    /// Entries waiting in the intake (decision 0034) are checked too: each must carry its
    /// node's MAC; they are counted in `unchained`, not in `entries`.
    /// With `through`, the walk stops after that entry (entries appended since are left for the
    /// next verification).
    func verifyAudit(replaying index: inout RevisionIndex, through: Int64? = nil, paced: Bool = false) async throws(KeywardError) -> AuditVerification {
        try await verifyAudit(replaying: &index, through: through, paced: paced, resumingAfter: nil).verification
    }

    /// `verifyAudit`, resuming after `point` when given (`walkAudit`), with where the walk ended.
    func verifyAudit(replaying index: inout RevisionIndex, through: Int64?, paced: Bool, resumingAfter point: AuditWalkPoint?) async throws(KeywardError)
        -> (verification: AuditVerification, last: Int64, lastHash: [UInt8]) {
        let walk = try await walkAudit(replaying: &index, through: through, paced: paced, resumingAfter: point)
        var result = walk.verification
        guard store.keepsAuditIntake else { return (result, walk.last, walk.lastHash) }
        let waiting = try await storing({ () async throws(StorageError) in try await store.auditIntake(limit: 1_000_000) })
        result.unchained = waiting.count
        var named: [(row: AuditIntakeRow, entry: String)] = []
        for row in waiting {
            guard protection.verifies(row.mac, RecordFraming.auditIntake(row)) else {
                result.problems.append("audit intake row #\(row.id) (node \(String(row.node.prefix(80)).debugDescription)): fails its MAC "
                                       + "(forged or edited in the database); the sequencer will not chain it")
                continue
            }
            if let entry = (try? CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit intake row \(row.id)"))?.entry { named.append((row, entry)) }
        }
        let chained = try await storing({ () async throws(StorageError) in try await store.chainedEntries(named.map(\.entry)) })
        for (row, entry) in named {
            guard let sequence = chained[entry] else { continue }
            result.problems.append("audit intake row #\(row.id) (node \(String(row.node.prefix(80)).debugDescription)): replays entry \(entry), "
                                   + "already chained as #\(sequence) (a copy put back in the database); the sequencer will not chain it")
        }
        return (result, walk.last, walk.lastHash)
    }

    /// The walk of `verifyAudit`, up to entry `through` (the whole log when nil), leaving in
    /// `index` the revisions the walked entries anchor; `last` and `lastHash` are the last
    /// entry walked (the checkpoint's, or 0 and zeros, when none was).
    /// `paced`: after each page, sleep three times as long as it took (see `verifyStore`), and
    /// stop with an error once the calling task is cancelled.
    /// With `point` (of this store: `verifyStore` drops one of another), the walk starts after
    /// it, from its hash and index, unless the log's checkpoint is past it (the entries after it
    /// were removed): then from the checkpoint.
    func walkAudit(replaying index: inout RevisionIndex, through: Int64?, paced: Bool = false, resumingAfter point: AuditWalkPoint? = nil) async throws(KeywardError)
        -> (verification: AuditVerification, last: Int64, lastHash: [UInt8]) {
        var result = AuditVerification(entries: 0, problems: [])
        var previousHash = [UInt8](repeating: 0, count: 32)
        var expected: Int64 = 1
        let checkpointRow = try await storing({ () async throws(StorageError) in try await store.auditCheckpoint() })
        if let point, checkpointRow.map({ $0.sequence <= point.sequence }) ?? true {
            index = point.index
            previousHash = point.hash
            expected = point.sequence + 1
            result.resumedAfter = point.sequence
        } else if let row = checkpointRow {
            // A pruned log continues from its checkpoint: after its entry, over its index.
            do {
                let checkpoint = try await verifiedAuditCheckpoint(row)
                index = try RevisionIndex(rows: try checkpoint.rows, protection: protection)
                previousHash = checkpoint.hashBytes ?? previousHash
            } catch {
                result.problems.append("audit checkpoint (#\(row.sequence)): \(error)")
                if let decoded = try? CanonicalJSON.decode(AuditCheckpoint.self, from: row.body, what: "the audit checkpoint"),
                   let hash = decoded.hashBytes, let rows = try? decoded.rows {
                    index = (try? RevisionIndex(rows: rows, protection: protection)) ?? RevisionIndex()
                    previousHash = hash
                }
            }
            expected = row.sequence + 1
        }
        var unauthenticatedFrom: Int64? = nil
        var pageStarted = ContinuousClock.now
        let keepsEntryIDs = store.keepsAuditIntake
        walk: while true {
            if paced {
                // A background walk stops when its task is cancelled (the server is stopping)
                // rather than reading the rest of the log unpaced.
                if Task.isCancelled { throw .storeState("the verification was stopped before it ended (its task was cancelled)") }
                try? await Task.sleep(for: (ContinuousClock.now - pageStarted) * 3)
                pageStarted = ContinuousClock.now
            }
            let after = expected - 1
            let page = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: after, limit: 1000) })
            if page.isEmpty { break }
            for row in page {
                if let through, row.sequence > through { break walk }
                result.entries += 1
                if row.sequence != expected {
                    result.problems.append("audit #\(expected): missing (next entry is #\(row.sequence)); entries were removed")
                    expected = row.sequence
                }
                if row.previousHash != previousHash {
                    result.problems.append("audit #\(row.sequence): does not follow #\(row.sequence - 1) (entries removed, inserted or reordered)")
                }
                if AuditLog.chainHash(previous: row.previousHash, sequence: row.sequence, body: row.body) != row.hash {
                    result.problems.append("audit #\(row.sequence): its content was changed (hash mismatch)")
                }
                if let event = try? CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)") {
                    try index.apply(event.anchors.map(\.row), protection: protection)
                    if event.keyID != row.keyID {
                        result.problems.append("audit #\(row.sequence): the key-id column says \(row.keyID.map { "\($0)" } ?? "none") "
                                               + "but the entry names \(event.keyID.map { "\($0)" } ?? "none") (index column edited)")
                    }
                    // The sequencer finds chained entry ids by this column: cleared or changed, it
                    // would let a replayed intake row through (decision 0034).
                    if keepsEntryIDs, event.entry != row.entry {
                        result.problems.append("audit #\(row.sequence): the entry-id column says \(row.entry ?? "none") "
                                               + "but the entry names \(event.entry ?? "none") (index column edited)")
                    }
                } else {
                    result.problems.append("audit #\(row.sequence): the body does not decode")
                }
                if row.mac.isEmpty {
                    if unauthenticatedFrom == nil { unauthenticatedFrom = row.sequence }
                } else {
                    if !protection.checkAuditMAC(row.mac, row.hash, index.digest) {
                        let from = unauthenticatedFrom ?? row.sequence
                        result.problems.append("audit #\(from)–#\(row.sequence): the batch MAC does not verify (forged or rewritten entries)")
                    }
                    unauthenticatedFrom = nil
                }
                previousHash = row.hash
                expected = row.sequence + 1
            }
        }
        if let from = unauthenticatedFrom {
            result.problems.append("audit #\(from)–#\(expected - 1): no MAC covers these entries (a batch's MAC'd last entry is missing)")
        }
        return (result, expected - 1, previousHash)
    }

    /// The newest `count` audit entries, oldest first, decoded.
    public func auditTail(_ count: Int) async throws(KeywardError) -> [(sequence: Int64, event: AuditEvent)] {
        guard (1...10_000).contains(count) else { throw .invalidArgument("tail length \(count); choose 1 to 10000") }
        let head = try await storing({ () async throws(StorageError) in try await store.auditHead() })?.sequence ?? 0
        let rows = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: max(0, head - Int64(count)), limit: count) })
        var out: [(Int64, AuditEvent)] = []
        for row in rows {
            out.append((row.sequence, try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)")))
        }
        return out
    }

    /// Cache statistics: hits, misses, keys held.
    public var cacheStatistics: (hits: Int, misses: Int, held: Int) {
        (cache.hits.load(ordering: .relaxed), cache.misses.load(ordering: .relaxed), cache.count)
    }
}
