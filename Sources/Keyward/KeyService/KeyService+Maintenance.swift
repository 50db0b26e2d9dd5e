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
    /// Destroyed keys whose stored material was deleted in this sweep, once every node had
    /// seen their destruction (`KeyService.destroy`'s barrier).
    public var purged = 0
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
                    if try await purgeDue(key) {
                        let purged = key.metadata.state == .destroyed
                            ? try await purgeMaterial(key, as: .scheduledDestruction)
                            : try await purgeImportedMaterial(key, as: .importedMaterialExpiry)
                        if purged { report.purged += 1 }
                        continue
                    }
                    guard maintenanceDue(key) else { continue }
                    if importedMaterialExpired(key, now: clock.now) {
                        _ = try await maintain(key)
                        continue
                    }
                    let wasDestruction = key.metadata.state == .pendingDestruction || key.metadata.importWrappingFor != nil
                    let after = try await maintain(key)
                    if wasDestruction, after.metadata.state == .destroyed { report.destroyed += 1 } else if !wasDestruction { report.rotated += 1 }
                } catch {
                    // The lease this sweep ran under is gone: another node runs the work now.
                    if case .storage(.leaseLost) = error { throw error }
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
        return destructionDue(key, now: now) || rotationDue(key, now: now) || wrappingKeyExpired(key, now: now) || importedMaterialExpired(key, now: now)
    }

    /// Whether `key` is destroyed, or waiting for imported material, but some version's
    /// material is still stored: its deletion stopped at the barrier (a node had not yet seen
    /// it) or was interrupted.
    func purgeDue(_ key: LoadedKey) async throws(KeywardError) -> Bool {
        guard key.metadata.state == .destroyed || key.metadata.awaitingMaterial == true else { return false }
        let fence = records.fence()
        let id = key.row.id
        for row in try await storing({ () async throws(StorageError) in try await store.versions(id) }) {
            if try records.verifiedVersion(row, of: id, row.version, fence).state != "destroyed" { return true }
        }
        return false
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
        guard key.metadata.state == .active, !key.metadata.holdsImportedMaterial, let due = key.metadata.nextRotationAt else { return false }
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
                if importedMaterialExpired(key, now: now) {
                    try await expireImportedMaterial(key)
                    key = try await records.load(id)
                    continue
                }
                if destructionDue(key, now: now) || wrappingKeyExpired(key, now: now) {
                    try await destroy(key)
                    key = try await records.load(id)
                    continue
                }
                if rotationDue(key, now: now) {
                    let current = key
                    _ = try await auditor.audited(.key(.rotate), caller: .system(.periodicRotation), key: id) { (event) throws(KeywardError) -> KeyDescription in
                        try await addVersion(current, rotation: "scheduled", event: &event)
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
}
