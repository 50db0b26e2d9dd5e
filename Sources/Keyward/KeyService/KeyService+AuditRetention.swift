import Foundation
import KeywardCrypto
import KeywardStorage

/// Audit retention: the log's oldest entries leave the store as signed segment files in an
/// archive directory, and a signed checkpoint (`AuditCheckpoint`) stands for them, so the log
/// kept in the store still verifies from its first entry on, and the archived segments verify
/// offline (`keyward audit verify --segment`), each chained to the one before and the first
/// kept entry to the last.
extension KeyService {
    /// Archives and removes the audit entries older than `cutoff`, for a caller granted
    /// `maintenance` (and `read-audit`, for the export).
    ///
    /// The entries up to the newest batch end older than `cutoff` (never the newest entry) are
    /// verified (chain, batch MACs, the checkpoint before them), written to `directory` as
    /// segment files, synced, and only then removed, in one transaction that installs the new
    /// checkpoint. A log that fails verification is not pruned.
    ///
    /// - Throws: `invalidArgument` when `directory` is no directory; `integrityFailure` when the
    ///   log does not verify; `storeState` when an archive file cannot be written (nothing is
    ///   removed then).
    public func pruneAudit(olderThan cutoff: Date, archive directory: String, actor: Caller) async throws(KeywardError) -> AuditPruning {
        try await auditor.audited(.key(.maintenance), caller: actor, key: nil) { (event) throws(KeywardError) -> AuditPruning in
            try authorizeAdministration(.maintenance, actor)
            try authorizeAdministration(.readAudit, actor)
            let result = try await pruneAuditAuthorized(olderThan: cutoff, archive: directory, actor: actor)
            event.detail = result.through.map { "audit retention: #\($0) and before archived in \(result.segments.count) segments and removed" }
                ?? "audit retention: no entry older than the cutoff"
            return result
        }
    }

    /// `pruneAudit` as Keyward's own job, for the entries older than `days` by the service's
    /// clock, its writes fenced by `lease` when given: `keyward serve` runs it with
    /// `audit.retentionDays` on the node holding the maintenance lease.
    public func runAuditRetention(keepingDays days: Int, archive directory: String, under lease: Lease? = nil) async throws(KeywardError) -> AuditPruning {
        let cutoff = clock.now.addingTimeInterval(-Double(days) * 86_400)
        guard let lease else { return try await pruneAudit(olderThan: cutoff, archive: directory, actor: .system(.auditRetention)) }
        let result = await LeaseFence.$current.withValue(lease) { () async -> Result<AuditPruning, KeywardError> in
            do throws(KeywardError) {
                return .success(try await pruneAudit(olderThan: cutoff, archive: directory, actor: .system(.auditRetention)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func pruneAuditAuthorized(olderThan cutoff: Date, archive directory: String, actor: Caller) async throws(KeywardError) -> AuditPruning {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .invalidArgument("the audit archive directory \(directory) does not exist")
        }
        let start = try await storing({ () async throws(StorageError) in try await store.auditCheckpoint() })?.sequence ?? 0
        guard let head = try await storing({ () async throws(StorageError) in try await store.auditHead() })?.sequence else {
            return AuditPruning(through: nil, entries: 0, segments: [])
        }
        // The newest batch end (a MAC'd entry) before the cutoff, short of the newest entry: the
        // walk below then checks the MAC over everything it removes.
        var target: Int64? = nil
        var cursor = start
        scan: while true {
            let after = cursor
            let page = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: after, limit: 1000) })
            if page.isEmpty { break }
            for row in page {
                if row.time >= cutoff || row.sequence >= head { break scan }
                if !row.mac.isEmpty { target = row.sequence }
                cursor = row.sequence
            }
        }
        guard let through = target else { return AuditPruning(through: nil, entries: 0, segments: []) }

        var index = RevisionIndex()
        let walk = try await walkAudit(replaying: &index, through: through)
        guard walk.verification.isIntact else {
            throw .integrityFailure("the audit log does not verify (\(walk.verification.problems.prefix(3).joined(separator: "; "))); "
                                    + "nothing was archived or removed: run keyward audit verify")
        }
        guard walk.last == through else { throw .storeState("the audit log ends at #\(walk.last), before #\(through); nothing was removed") }

        var segments: [String] = []
        var after = start
        while after < through {
            let segment = try await exportAuditSegment(after: after, through: min(through, after + Int64(Self.maximumSegmentEntries)), actor: actor.internalStep)
            segments.append(try AuditArchive.write(segment, into: directory))
            after = segment.header.last
        }
        let signer = try await auditSigningKey(actor: actor.internalStep)
        let checkpoint = AuditCheckpoint(store: header.storeID, sequence: through, hash: walk.lastHash, rows: index.rows,
                                         signer: (signer.id, signer.version), createdAt: clock.now)
        let body = try CanonicalJSON.encode(checkpoint)
        let signature = try await sign(.message(body), key: signer.id.description, actor: actor.internalStep)
        guard signature.version == signer.version else {
            throw .storeState("the audit signing key was rotated during the retention run; nothing was removed, run it again")
        }
        try await storing({ () async throws(StorageError) in
            try await store.pruneAudit(AuditCheckpointRow(sequence: through, body: body, signature: signature.signature))
        })
        return AuditPruning(through: through, entries: Int(through - start), segments: segments)
    }

    /// The store's audit checkpoint, decoded and checked: its body names this store and its
    /// row's sequence, and the store's audit signing key (`keyward/audit-signer`, the version it
    /// names) signed it.
    ///
    /// - Throws: `integrityFailure` naming what is wrong.
    func verifiedAuditCheckpoint(_ row: AuditCheckpointRow) async throws(KeywardError) -> AuditCheckpoint {
        let checkpoint: AuditCheckpoint
        do { checkpoint = try CanonicalJSON.decode(AuditCheckpoint.self, from: row.body, what: "the audit checkpoint") } catch {
            throw .integrityFailure("the audit checkpoint does not decode (edited): \(error)")
        }
        guard checkpoint.format == AuditCheckpoint.format, checkpoint.store == header.storeID, checkpoint.sequence == row.sequence,
              checkpoint.hashBytes != nil else {
            throw .integrityFailure("the audit checkpoint's body disagrees with its row or with this store (edited)")
        }
        let signerID: KeyID
        do { signerID = try await records.resolve(Self.auditSignerAlias) } catch {
            throw .integrityFailure("the audit checkpoint cannot be checked: the store's audit signing key (\(Self.auditSignerAlias)) is gone (\(error))")
        }
        guard signerID == checkpoint.signerKeyID else {
            throw .integrityFailure("the audit checkpoint names signing key \(checkpoint.signerKeyID), not the store's audit signing key \(signerID) (forged)")
        }
        let publicKey: PublicKey
        do {
            let version = try await records.loadVersion(try await records.load(signerID), checkpoint.signerVersion)
            publicKey = try version.material.publicKey()
        } catch {
            throw .integrityFailure("the audit checkpoint cannot be checked: version \(checkpoint.signerVersion) of the audit signing key is unusable (\(error))")
        }
        guard (try? publicKey.verify(row.signature, for: .message(row.body))) == true else {
            throw .integrityFailure("the audit checkpoint's signature does not verify (edited or forged)")
        }
        return checkpoint
    }
}
