import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

extension KeyService {
    /// Rotates the storage KEK after running due maintenance (a key past its destruction date is
    /// destroyed, not re-sealed): a new random KEK, wrapped by `root`; every key version re-sealed
    /// under it and every row and audit batch MAC'd under its derived keys, in one transaction.
    /// A failure or crash before the commit leaves the store as it was, usable with the old KEK.
    ///
    /// - Returns: a service opened on the rotated store (this instance keeps the old KEK and
    ///   should be dropped).
    public func rotateKEK(root: any RootOfTrust, actor: Caller, progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> KeyService {
        do throws(KeywardError) {
            try authorizeAdministration(.rotateKEK, actor)
        } catch {
            throw await auditor.refusal(auditor.event(.rotateKEK, caller: actor), error)
        }
        guard root.kind == header.rootOfTrust else {
            throw .rootOfTrustRejected("the store's root of trust is \(header.rootOfTrust), not \(root.kind)")
        }
        // Keys past their destruction date are destroyed first, not re-sealed under the new KEK.
        let maintenance = try await runMaintenance()
        guard maintenance.failures.isEmpty else {
            throw .storeState("maintenance before the KEK rotation failed: \(maintenance.failures.joined(separator: "; "))")
        }
        let newID = KeyID()
        let newKEK: SecretBytes
        do { newKEK = try SecretBytes.random(count: 32) } catch { throw .crypto(error) }
        let wrapped = try root.wrap(newKEK)
        let fresh = try RecordProtection(storeID: header.storeID, kekID: newID, kek: newKEK)
        let old = protection
        var newHeader = header
        newHeader.activeKEK = newID
        newHeader.mac = try fresh.mac(RecordFraming.header(newHeader))
        // A pruned log's batch MACs continue from its checkpoint's index.
        var start: (sequence: Int64, rows: [RevisionAnchorRow]) = (0, [])
        if let row = try await storing({ () async throws(StorageError) in try await store.auditCheckpoint() }) {
            start = (row.sequence, try await verifiedAuditCheckpoint(row).rows)
        }
        let rewriter = try Self.rewriter(from: old, to: fresh, continuing: start)
        let count: Int
        do {
            count = try await store.rewriteAll(
                newKEK: KEKRecord(id: newID, wrapped: wrapped, createdAt: clock.now, state: "active"),
                header: newHeader, rewriter: rewriter, progress: progress)
        } catch {
            throw await auditor.refusal(auditor.event(.rotateKEK, caller: actor), .storage(error))
        }
        let rotated = try await KeyService.resuming(store: store, protection: fresh, header: newHeader, clock: clock, options: options)
        var event = rotated.auditor.event(.rotateKEK, caller: actor)
        event.detail = "\(count) records rewritten under KEK \(newID)"
        try await rotated.auditor.record(event)
        return rotated
    }

    /// Checks each row under `old` and re-protects it under `fresh`; the audit log's replay
    /// starts after `start`, its checkpoint's entry and index (0 and none for an unpruned log).
    static func rewriter(from old: RecordProtection, to fresh: RecordProtection,
                         continuing start: (sequence: Int64, rows: [RevisionAnchorRow])) throws(KeywardError) -> RecordRewriter {
        let replay = Mutex((old: try RevisionIndex(rows: start.rows, protection: old), fresh: try RevisionIndex(rows: start.rows, protection: fresh)))
        let next = Mutex(start.sequence + 1)
        return RecordRewriter(
            key: { row in
                try old.check(row.mac, RecordFraming.key(row), what: "the row of key \(row.id)")
                var out = row
                out.mac = try fresh.mac(RecordFraming.key(row))
                return out
            },
            version: { row, key in
                try old.check(row.mac, RecordFraming.version(row), what: "version \(row.version) of key \(row.keyID)")
                var out = row
                out.kekID = fresh.kekID
                if !row.sealed.isEmpty {
                    let spec = try CanonicalJSON.decode(KeyMetadata.self, from: key.body, what: "the metadata of key \(key.id)").spec
                    let material = try old.open(row.sealed, keyID: row.keyID, version: row.version, spec: spec)
                    out.sealed = try fresh.seal(material, keyID: row.keyID, version: row.version)
                }
                out.mac = try fresh.mac(RecordFraming.version(out))
                return out
            },
            alias: { row in
                try old.check(row.mac, RecordFraming.alias(row), what: "alias \(row.name)")
                var out = row
                out.mac = try fresh.mac(RecordFraming.alias(row))
                return out
            },
            token: { row in
                try old.check(row.mac, RecordFraming.token(row), what: "token \(row.id)")
                var out = row
                out.mac = try fresh.mac(RecordFraming.token(row))
                return out
            },
            audit: { row in
                // Each batch MAC covers the revision index as the entries before it left it, and
                // the index's elements are keyed under the KEK: both are replayed, entry by entry.
                try next.withLock { (expected: inout Int64) throws(KeywardError) in
                    guard row.sequence == expected else {
                        throw .storeState("the audit log changed during the KEK rotation (entry #\(row.sequence) where #\(expected) was expected: "
                                          + "pruned meanwhile?); nothing was rotated, run it again")
                    }
                    expected += 1
                }
                let anchors = try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)").anchors.map(\.row)
                return try replay.withLock { (indexes: inout (old: RevisionIndex, fresh: RevisionIndex)) throws -> AuditRow in
                    try indexes.old.apply(anchors, protection: old)
                    try indexes.fresh.apply(anchors, protection: fresh)
                    guard !row.mac.isEmpty else { return row }
                    guard old.checkAuditMAC(row.mac, row.hash, indexes.old.digest) else {
                        throw KeywardError.integrityFailure("audit #\(row.sequence) fails its MAC; the audit log must verify before the KEK is rotated")
                    }
                    var out = row
                    out.mac = try fresh.auditMAC(row.hash, indexes.fresh.digest)
                    return out
                }
            },
            intake: { row in
                try old.check(row.mac, RecordFraming.auditIntake(row), what: "audit intake row \(row.id) from node \(row.node)")
                var out = row
                out.mac = try fresh.mac(RecordFraming.auditIntake(row))
                return out
            })
    }

}
