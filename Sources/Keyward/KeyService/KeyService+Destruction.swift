import Foundation
import KeywardCrypto
import KeywardStorage

/// Destruction, as a barrier across the nodes that serve one store.
///
/// Each node caches unsealed keys. Destroying a key therefore happens in two steps:
/// 1. the key's state becomes `destroyed` (one committed row write). From then on no node that
///    has seen the change uses the key: its cache entry is dropped and the pipeline refuses
///    destroyed keys;
/// 2. every version's sealed material is deleted (each version row becomes a tombstone), but
///    only once every live node has seen step 1: each serving node reports in its heartbeat
///    the store generation its caches have caught up with (`ClusterStore.heartbeat`), and a
///    node silent for longer than `DestructionBarrier.silence` counts as gone, since a node
///    whose confirmations stop serves nothing from its cache after its coherence bound (1 s).
///
/// The barrier is awaited for at most `DestructionBarrier.wait`; a destruction that a lagging
/// node holds up past it keeps state `destroyed` (refused everywhere that has seen it) and the
/// maintenance sweep deletes the material once the barrier passes.
public enum DestructionBarrier {
    /// How long a node may be silent and still count as live (and so be waited for): the
    /// serving nodes' coherence bound (1 s) and heartbeat interval (250 ms), with a margin.
    public static let silence: TimeInterval = 2
    /// Longest a destruction waits for the barrier before leaving the deletion to the sweep.
    public static let wait: Duration = .seconds(3)
}

extension KeyService {
    /// Marks the key destroyed and, once every node has seen that (the barrier), zeroizes and
    /// deletes every version's material (the rows stay as tombstones). Idempotent: a crash or a
    /// barrier not passed in time is finished by the maintenance sweep (`purgeDue`).
    func destroy(_ key: LoadedKey, as job: SystemJob = .scheduledDestruction) async throws(KeywardError) {
        let id = key.row.id
        try await auditor.audited(.key(.destroy), caller: .system(job), key: id) { (event) throws(KeywardError) -> Void in
            var metadata = key.metadata
            metadata.state = .destroyed
            metadata.stateChangedAt = clock.now
            _ = try await commit(key, metadata, event: &event)
        }
        _ = try await purgeMaterial(try await records.load(id), as: job)
    }

    /// Deletes the stored material of a destroyed key once the destruction barrier has passed.
    /// Returns false, deleting nothing, while a live node has not yet seen the destruction.
    func purgeMaterial(_ key: LoadedKey, as job: SystemJob) async throws(KeywardError) -> Bool {
        guard key.metadata.state == .destroyed else { return false }
        let seen = try await storing({ () async throws(StorageError) in try await store.generation() })
        guard try await destructionBarrierPassed(generation: seen) else { return false }
        let id = key.row.id
        try await auditor.audited(.key(.destroy), caller: .system(job), key: id) { (event) throws(KeywardError) -> Void in
            try await tombstoneVersions(of: id, below: nil, event: &event)
        }
        cache.invalidate(id)
        return true
    }

    /// Destroys the material of every version below `oldest` (Transit's trim): the rows stay as
    /// tombstones, so their ciphertexts are refused as made under a destroyed version, and the
    /// key's `minAvailableVersion` becomes `oldest`. Needs `destroy` on the key, which must be
    /// in a state that may be scheduled for destruction.
    ///
    /// Only versions the key already refuses may go: `oldest` must not be above the minimum
    /// decryption version. And every live node must have caught up with the store first (the
    /// destruction barrier), so none still decrypts with a version it is about to lose; a node
    /// that lags past `DestructionBarrier.wait` fails the call with `unavailable` and destroys
    /// nothing. Idempotent: `oldest` at or below the current oldest version changes nothing.
    ///
    /// - Throws: `invalidArgument` for `oldest` outside 1 to the minimum decryption version;
    ///   `accessDenied`, `wrongState`; `unavailable` when a node has not caught up.
    public func destroyVersions(key reference: String, below oldest: UInt32, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let id = try await resolve(reference, for: .destroy, caller: actor)
        let seen = try await storing({ () async throws(StorageError) in try await store.generation() })
        let barrierPassed = try await destructionBarrierPassed(generation: seen)
        let description = try await withUsableKey(id, .destroy, admittedAs: .scheduleDestruction, purpose: nil, caller: actor, named: reference) { (key, event) throws(KeywardError) -> KeyDescription in
            var metadata = key.metadata
            guard (1...metadata.minDecryptionVersion).contains(oldest) else {
                throw .invalidArgument("the oldest version to keep is \(oldest); it must be 1 to the key's minimum decryption version \(metadata.minDecryptionVersion) (raise that first)")
            }
            guard oldest > (metadata.minAvailableVersion ?? 1) else {
                return KeyDescription(metadata: metadata, aliases: try await records.authenticAliases(of: id))
            }
            guard barrierPassed else {
                throw .storage(.unavailable("a node serving this store has not caught up with its latest changes; no version was destroyed; try again"))
            }
            event.detail = "versions \(metadata.minAvailableVersion ?? 1) to \(oldest - 1) destroyed"
            try await tombstoneVersions(of: id, below: oldest, event: &event)
            metadata.minAvailableVersion = oldest
            return try await commit(key, metadata, event: &event)
        }
        cache.invalidate(id)
        return description
    }

    /// Deletes the sealed material of the key's versions (those below `below`, or all): each row
    /// becomes a tombstone (state `destroyed`, no material) whose new revision `event` anchors.
    private func tombstoneVersions(of id: KeyID, below: UInt32?, event: inout AuditEvent) async throws(KeywardError) {
        let fence = records.fence()
        let rows = try await storing({ () async throws(StorageError) in try await store.versions(id) })
        for row in rows where below.map({ row.version < $0 }) ?? true {
            var metadata = try records.verifiedVersion(row, of: id, row.version, fence)
            guard metadata.state != "destroyed" else { continue }
            metadata.state = "destroyed"
            let tombstone = try records.versionRow(keyID: id, version: row.version, sealed: [], metadata: metadata, revision: row.revision + 1)
            try await storing({ () async throws(StorageError) in try await store.updateVersion(tombstone, expectedRevision: row.revision) })
            event.anchor(.version(id, row.version), tombstone.revision)
        }
    }

    /// Waits (at most `DestructionBarrier.wait`) until every other live node reports having
    /// seen `generation`. True when they all have.
    func destructionBarrierPassed(generation: Int64) async throws(KeywardError) -> Bool {
        let start = ContinuousClock.now
        while true {
            let beats = try await storing({ () async throws(StorageError) in try await store.heartbeats() })
            let lagging = beats.filter { $0.node != options.nodeID && $0.age <= DestructionBarrier.silence && $0.seenGeneration < generation }
            if lagging.isEmpty { return true }
            if ContinuousClock.now - start >= DestructionBarrier.wait { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
