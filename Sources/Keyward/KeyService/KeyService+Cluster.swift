import Foundation
import KeywardStorage

/// A node's hold on the cluster's background work, with its fencing token (defined with the
/// store that keeps it).
public typealias Lease = KeywardStorage.Lease

/// The nodes serving one store, and who runs its background work.
public struct ClusterStatus: Sendable, Hashable {
    /// The node answering (nil for a process that does not serve).
    public var node: String?
    /// Every lease on background work, live or lapsed, with its holder and fencing token.
    public var leases: [Lease]
    /// Every node's last heartbeat.
    public var nodes: [NodeHeartbeat]
}

/// Coordination between the nodes that serve one store (`ClusterStore`): the heartbeat each
/// node writes so a destruction knows what every node has seen (`DestructionBarrier`), and the
/// leases under which background work runs once in the cluster, each write of that work fenced
/// by the lease's token (`LeaseFence`).
extension KeyService {
    /// Records that this node is alive and has caught up with `caughtUpGeneration`. Does
    /// nothing for a process without `Options.nodeID`.
    public func reportHeartbeat() async throws(KeywardError) {
        guard let node = options.nodeID else { return }
        let generation = caughtUpGeneration
        guard generation >= 0 else { return }
        try await storing({ () async throws(StorageError) in try await store.heartbeat(node: node, seenGeneration: generation) })
    }

    /// Takes or renews the lease `name` for this node (`Options.nodeID`) for `duration`; nil
    /// while another node holds it.
    public func acquireLease(_ name: String, duration: Duration) async throws(KeywardError) -> Lease? {
        guard let node = options.nodeID else { throw .invalidArgument("only a serving node (with a node id) takes leases") }
        return try await storing({ () async throws(StorageError) in try await store.acquireLease(name, holder: node, duration: duration) })
    }

    /// Gives `lease` up (at shutdown), so another node takes the work at once.
    public func releaseLease(_ lease: Lease) async throws(KeywardError) {
        try await storing({ () async throws(StorageError) in try await store.releaseLease(lease) })
    }

    /// The maintenance sweep (`runMaintenance()`) with every row write fenced by `lease`: once
    /// the lease lapses or passes to another node, the sweep's writes fail with `leaseLost`
    /// and nothing of them lands.
    public func runMaintenance(under lease: Lease) async throws(KeywardError) -> MaintenanceReport {
        let result = await LeaseFence.$current.withValue(lease) { () async -> Result<MaintenanceReport, KeywardError> in
            do throws(KeywardError) { return .success(try await runMaintenance()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Chains what waits in the store's audit intake into the log (decision 0034), in batches
    /// each fenced by `lease`: the node holding the maintenance lease calls it continually.
    /// Returns how many intake rows it took (0 at once on a store without an intake, or when
    /// this instance writes its own entries to the chain).
    ///
    /// - Throws: `storage(.leaseLost)` once the lease lapsed or passed to another node (nothing
    ///   of the batch under way was written), `auditUnavailable` or `storage` when the store fails.
    public func sequenceAudit(under lease: Lease) async throws(KeywardError) -> Int {
        guard auditor.log.writesIntake else { return 0 }
        return try await auditor.log.sequence(under: lease)
    }

    /// Tells the audit log this node no longer holds the lease `sequenceAudit` ran under: its
    /// entries go to the intake again rather than to the chain's head, where they would contend
    /// with the new sequencer's.
    public func standDownAsAuditSequencer() {
        auditor.log.standDown()
    }

    /// The nodes and leases, for a caller granted `maintenance`.
    public func clusterStatus(actor: Caller) async throws(KeywardError) -> ClusterStatus {
        try await checkAdministration(.maintenance, actor: actor)
        let leases = try await storing({ () async throws(StorageError) in try await store.lease(MaintenanceLease.name) })
        let nodes = try await storing({ () async throws(StorageError) in try await store.heartbeats() })
        return ClusterStatus(node: options.nodeID, leases: leases.map { [$0] } ?? [], nodes: nodes)
    }
}

/// The lease under which a cluster's background work runs: the maintenance sweep (due
/// destructions, scheduled rotations, deleting destroyed keys' material) and periodic
/// verification of the store.
public enum MaintenanceLease {
    /// The lease's name in the store.
    public static let name = "maintenance"
}
