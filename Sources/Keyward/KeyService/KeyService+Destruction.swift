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
        }
        cache.invalidate(id)
        return true
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
