import Foundation
import KeywardCrypto
import KeywardStorage

/// What `verifyStore` found.
public struct StoreVerification: Sendable, Hashable {
    /// Keys, versions and aliases checked.
    public var keys = 0
    /// Key versions checked.
    public var versions = 0
    /// Aliases checked.
    public var aliases = 0
    /// The audit chain's result.
    public var audit = AuditVerification(entries: 0, problems: [])
    /// One line per record that fails, naming it.
    public var problems: [String] = []
    /// True when every record and the audit chain check out.
    public var isIntact: Bool { problems.isEmpty && audit.isIntact }
}

extension KeyService {
    /// Checks every key row (MAC, columns, revision against the audit log), every version
    /// (MAC, and that its sealed material opens under its binding), every alias (MAC) and the
    /// audit chain. Each failing record is named; nothing is changed. `progress` is called with
    /// the number of keys checked so far.
    public func verifyStore(progress: @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> StoreVerification {
        var report = StoreVerification()
        // The audit chain first: the revisions it records are the reference for replay checks
        // (the `audited_revisions` table that loads consult is only a fast copy of them).
        var auditedRevisions: [KeyID: Int64] = [:]
        report.audit = try await verifyAudit { event in
            if let key = event.keyID, let revision = event.keyRevision {
                auditedRevisions[key] = max(auditedRevisions[key] ?? 0, revision)
            }
        }
        var cursor: KeyID? = nil
        while true {
            let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: KeyFilter(), after: cursor, limit: 500) })
            for row in rows {
                report.keys += 1
                let metadata: KeyMetadata
                do {
                    metadata = try records.verifiedMetadata(row)
                    let audited = auditedRevisions[row.id] ?? 0
                    if audited > row.revision {
                        report.problems.append("key \(row.id): revision \(row.revision) is older than the audited revision \(audited) (replayed row)")
                    }
                    let indexed = try await storing({ () async throws(StorageError) in try await store.latestAuditedRevision(of: row.id) }) ?? 0
                    if indexed != audited {
                        report.problems.append("key \(row.id): the audited-revision index says \(indexed) but the audit log says \(audited) (index edited)")
                    }
                } catch {
                    report.problems.append("key \(row.id): \(error)")
                    continue
                }
                let versions = try await storing({ () async throws(StorageError) in try await store.versions(row.id) })
                for version in versions {
                    report.versions += 1
                    do {
                        try protection.check(version.mac, RecordFraming.version(version), what: "version \(version.version) of key \(row.id)")
                        let versionMetadata = try CanonicalJSON.decode(VersionMetadata.self, from: version.body, what: "version \(version.version) of key \(row.id)")
                        if versionMetadata.state != "destroyed" {
                            _ = try protection.open(version.sealed, keyID: row.id, version: version.version, spec: metadata.spec)
                        }
                    } catch {
                        report.problems.append("key \(row.id) version \(version.version): \(error)")
                    }
                }
                if versions.count != Int(metadata.currentVersion) {
                    report.problems.append("key \(row.id): \(versions.count) version rows but metadata says \(metadata.currentVersion)")
                }
                for alias in try await storing({ () async throws(StorageError) in try await store.aliases(of: row.id) }) {
                    report.aliases += 1
                    do { try protection.check(alias.mac, RecordFraming.alias(alias), what: "alias \(alias.name)") } catch {
                        report.problems.append("alias \(alias.name): \(error)")
                    }
                }
            }
            progress(report.keys)
            guard rows.count == 500 else { break }
            cursor = rows.last?.id
        }
        return report
    }

    /// Walks the audit chain from the first entry: sequence numbers without gaps, each entry's
    /// hash over its predecessor's, and each MAC. Names every entry that fails.
    public func verifyAudit() async throws(KeywardError) -> AuditVerification {
        try await verifyAudit { _ in }
    }

    /// `verifyAudit`, also handing every decoded entry to `visit`.
    func verifyAudit(visit: (AuditEvent) -> Void) async throws(KeywardError) -> AuditVerification {
        var result = AuditVerification(entries: 0, problems: [])
        var previousHash = [UInt8](repeating: 0, count: 32)
        var expected: Int64 = 1
        var unauthenticatedFrom: Int64? = nil
        while true {
            let page = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: expected - 1, limit: 1000) })
            if page.isEmpty { break }
            for row in page {
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
                if row.mac.isEmpty {
                    if unauthenticatedFrom == nil { unauthenticatedFrom = row.sequence }
                } else {
                    if !protection.checkAuditMAC(row.mac, row.hash) {
                        let from = unauthenticatedFrom ?? row.sequence
                        result.problems.append("audit #\(from)–#\(row.sequence): the batch MAC does not verify (forged or rewritten entries)")
                    }
                    unauthenticatedFrom = nil
                }
                if let event = try? CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)") {
                    visit(event)
                } else {
                    result.problems.append("audit #\(row.sequence): the body does not decode")
                }
                previousHash = row.hash
                expected = row.sequence + 1
            }
        }
        if let from = unauthenticatedFrom {
            result.problems.append("audit #\(from)–#\(expected - 1): no MAC covers these entries (a batch's MAC'd last entry is missing)")
        }
        return result
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
