import Foundation

/// A node's hold on one kind of cluster-wide background work (the maintenance sweep, periodic
/// verification), with the fencing token that proves it.
///
/// Invariants: the store hands a lease to one holder at a time; its `token` grows every time the
/// lease changes hands, never when the holder renews it; a lease is live only until `expiresAt`,
/// by the store's own clock (the database's, on PostgreSQL), so nodes' clocks need not agree.
public struct Lease: Sendable, Hashable {
    /// What the lease is for ("maintenance").
    public var name: String
    /// The node holding it.
    public var holder: String
    /// The fencing token: larger for every later holder.
    public var token: Int64
    /// When it lapses unless renewed, by the store's clock.
    public var expiresAt: Date

    /// A lease as the store records it.
    public init(name: String, holder: String, token: Int64, expiresAt: Date) {
        self.name = name
        self.holder = holder
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// What a serving node last reported: that it is alive, and the store generation its caches
/// have caught up with (`HeaderStore.generation`).
public struct NodeHeartbeat: Sendable, Hashable {
    /// The node's id (host, process and a random suffix).
    public var node: String
    /// The generation the node had seen, and dropped its stale caches for, when it reported.
    public var seenGeneration: Int64
    /// When it reported, by the store's clock.
    public var at: Date
    /// Seconds since it reported, by the store's clock, when this was read.
    public var age: TimeInterval

    /// A heartbeat as the store records it.
    public init(node: String, seenGeneration: Int64, at: Date, age: TimeInterval) {
        self.node = node
        self.seenGeneration = seenGeneration
        self.at = at
        self.age = age
    }
}

/// How several nodes on one store coordinate: leases that make background work run once in the
/// cluster, and heartbeats that tell a destruction when every node has seen it.
public protocol ClusterStore: Sendable {
    /// Takes the lease `name` for `holder` for `duration` when it is free or has lapsed, or
    /// renews it when `holder` already holds it. Returns the lease `holder` now holds, or nil
    /// when another holder's lease is live.
    func acquireLease(_ name: String, holder: String, duration: Duration) async throws(StorageError) -> Lease?
    /// The lease `name` as stored (live or lapsed), or nil when no node ever took it.
    func lease(_ name: String) async throws(StorageError) -> Lease?
    /// Gives up `lease` at once (a node shutting down), when its holder still holds it.
    func releaseLease(_ lease: Lease) async throws(StorageError)
    /// Records that `node` is alive and has seen `seenGeneration`.
    func heartbeat(node: String, seenGeneration: Int64) async throws(StorageError)
    /// Every node's last heartbeat (nodes silent for more than a day are forgotten).
    func heartbeats() async throws(StorageError) -> [NodeHeartbeat]
}

/// The lease under which the current task writes.
///
/// Background work runs inside `LeaseFence.$current.withValue(lease) { … }`; every row write
/// the store makes in that task first checks, inside its own transaction, that `lease` is still
/// held by the same holder with the same token and has not lapsed, and fails with `leaseLost`
/// otherwise: a node paused past its lease (a GC stall, SIGSTOP, a VM migration) that wakes up
/// mid-sweep writes nothing, because another node may hold the work by then.
public enum LeaseFence {
    /// The lease the current task's writes are fenced by; nil outside background work.
    @TaskLocal public static var current: Lease?
}
