import Foundation
import KeywardCrypto
import KeywardStorage

/// What one maintenance sweep did.
public struct MaintenanceReport: Sendable, Hashable {
    /// Keys examined.
    public var keys = 0
    /// Keys destroyed because their destruction date had passed.
    public var destroyed = 0
    /// Keys rotated because their rotation period had passed.
    public var rotated = 0
    /// Keys whose maintenance failed, with the reason (the sweep goes on past them).
    public var failures: [String] = []
}

/// Maintenance: the work a key's own schedule makes due (its destruction date, its rotation
/// period). It runs under Keyward's own `SystemJob` callers, so no caller needs to be granted
/// it, in three places: on the first access after it falls due (the pipeline's step 5, so no
/// key is ever used past its schedule); in a sweep, `runMaintenance()`, which `keyward serve`
/// runs on a timer and `keyward maintain` runs once, so it happens on time with no request
/// involved; and before a backup or a KEK rotation, so neither carries material that is due to
/// be destroyed.
extension KeyService {
    /// Destroys every key whose destruction date has passed and rotates every key whose
    /// rotation is due, now, whether or not anyone uses them.
    public func runMaintenance() async throws(KeywardError) -> MaintenanceReport {
        var report = MaintenanceReport()
        var cursor: KeyID? = nil
        repeat {
            let after = cursor
            let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: KeyFilter(), after: after, limit: 500) })
            for row in rows {
                report.keys += 1
                do throws(KeywardError) {
                    let key = try await records.load(row.id)
                    guard maintenanceDue(key) else { continue }
                    let wasDestruction = key.metadata.state == .pendingDestruction || key.metadata.importWrappingFor != nil
                    let after = try await maintain(key)
                    if wasDestruction, after.metadata.state == .destroyed { report.destroyed += 1 } else if !wasDestruction { report.rotated += 1 }
                } catch {
                    report.failures.append("key \(row.id): \(error.description)")
                }
            }
            cursor = rows.count == 500 ? rows.last?.id : nil
        } while cursor != nil
        return report
    }

    /// Whether `key` has a destruction or rotation due now.
    func maintenanceDue(_ key: LoadedKey) -> Bool {
        let now = clock.now
        return destructionDue(key, now: now) || rotationDue(key, now: now) || wrappingKeyExpired(key, now: now)
    }

    /// An import wrapping key past its expiry: destroyed, since nothing may use it again.
    private func wrappingKeyExpired(_ key: LoadedKey, now: Date) -> Bool {
        guard key.metadata.importWrappingFor != nil, key.metadata.state != .destroyed, let expiry = key.metadata.expiresAt else { return false }
        return expiry <= now
    }

    private func destructionDue(_ key: LoadedKey, now: Date) -> Bool {
        guard key.metadata.state == .pendingDestruction, let date = key.metadata.destructionDate else { return false }
        return date <= now
    }

    private func rotationDue(_ key: LoadedKey, now: Date) -> Bool {
        guard key.metadata.state == .active, key.metadata.origin != "imported", let due = key.metadata.nextRotationAt else { return false }
        return due <= now
    }

    /// Destroys a key whose destruction date has passed, and rotates one whose rotation is due.
    /// Returns the key as it now is.
    /// Concurrent callers may both find the same work due; the one that loses the
    /// compare-and-swap reloads and sees the winner's result instead of failing.
    func maintain(_ key: LoadedKey) async throws(KeywardError) -> LoadedKey {
        var key = key
        for _ in 0..<4 {
            let now = clock.now
            let id = key.row.id
            do {
                if destructionDue(key, now: now) || wrappingKeyExpired(key, now: now) {
                    try await destroy(key)
                    key = try await records.load(id)
                    continue
                }
                if rotationDue(key, now: now) {
                    let current = key
                    _ = try await auditor.audited(.key(.rotate), caller: .system(.periodicRotation), key: id) { (event) throws(KeywardError) -> KeyDescription in
                        try await addVersion(current, event: &event)
                    }
                    key = try await records.load(id)
                    continue
                }
                return key
            } catch {
                guard case .storage(.conflict) = error else { throw error }
                cache.invalidate(id)
                key = try await records.load(id)
            }
        }
        return key
    }

    /// Zeroizes and deletes every version's material (the rows stay as tombstones) and marks
    /// the key destroyed. Idempotent: a crash midway is finished by the next access.
    func destroy(_ key: LoadedKey, as job: SystemJob = .scheduledDestruction) async throws(KeywardError) {
        let id = key.row.id
        try await auditor.audited(.key(.destroy), caller: .system(job), key: id) { (event) throws(KeywardError) -> Void in
            let fence = records.fence()
            let rows = try await storing({ () async throws(StorageError) in try await store.versions(id) })
            for row in rows {
                var metadata = try records.verifiedVersion(row, of: id, row.version, fence)
                guard metadata.state != "destroyed" else { continue }
                metadata.state = "destroyed"
                let tombstone = try records.versionRow(keyID: id, version: row.version, sealed: [], metadata: metadata, revision: row.revision + 1)
                try await storing({ () async throws(StorageError) in try await store.updateVersion(tombstone, expectedRevision: row.revision) })
                event.anchor(.version(id, row.version), tombstone.revision)
            }
            var metadata = key.metadata
            metadata.state = .destroyed
            metadata.stateChangedAt = clock.now
            _ = try await commit(key, metadata, event: &event)
        }
    }
}
