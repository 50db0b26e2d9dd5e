import Foundation
import KeywardCrypto
import Synchronization

/// The audit log's rows: appended in one order, with no gaps in `sequence`.
public protocol AuditStore: Sendable {
    /// Appends entries in one transaction; their sequences must continue the chain.
    func appendAudit(_ entries: [AuditRow]) async throws(StorageError)
    /// `appendAudit`, blocking the calling thread until the entries are written. Called only
    /// from the audit log's own writer thread, never from a Swift concurrency executor.
    func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError)
    /// The newest entry.
    func auditHead() async throws(StorageError) -> AuditRow?
    /// Entries with sequence greater than `after`, oldest first.
    func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow]
    /// The newest audit entry and the revision index it anchors, read in one transaction
    /// (replay detection: the `Keyward` layer checks the index against the head's MAC).
    func anchorSnapshot() async throws(StorageError) -> AnchorSnapshot
    /// The checkpoint that stands for the pruned start of the log, if it was pruned.
    func auditCheckpoint() async throws(StorageError) -> AuditCheckpointRow?
    /// In one transaction: makes `checkpoint` the log's checkpoint and deletes every entry up to
    /// its sequence. Entries continue to be appended after the newest one as before; an empty log
    /// with a checkpoint continues at the entry after it (a copied store).
    ///
    /// - Throws: `conflict` when the checkpoint would remove the newest entry (a pruned log keeps
    ///   at least one), or is not newer than the checkpoint in place.
    func pruneAudit(_ checkpoint: AuditCheckpointRow) async throws(StorageError)

    /// Whether the store keeps an audit intake (decision 0034): nodes insert entries there in
    /// transactions of their own, with no ordering between them, and one sequencer chains them.
    var keepsAuditIntake: Bool { get }
    /// Inserts `rows` into the intake in one transaction, fenced by the active KEK as every
    /// write is. Rows from many transactions and nodes commit in parallel.
    func appendAuditIntake(_ rows: [AuditIntakeRow]) async throws(StorageError)
    /// The oldest `limit` intake rows, in the order they are to be chained.
    func auditIntake(limit: Int) async throws(StorageError) -> [AuditIntakeRow]
    /// In one transaction, fenced by `lease`: appends `entries` as `appendAudit` does (they must
    /// continue the chain) and deletes the intake rows `consumed` (chained, or rejected with an
    /// entry saying so). Throws `leaseLost` when `lease` is no longer held, `conflict` when the
    /// entries do not follow the head or a consumed row is already gone.
    func sequenceAuditIntake(_ entries: [AuditRow], consumed: [Int64], lease: Lease) async throws(StorageError)
    /// Of the entry ids `entries`, those already in the chain, with the sequence of the entry
    /// that holds each (the sequencer refuses a replayed intake row by it).
    func chainedEntries(_ entries: [String]) async throws(StorageError) -> [String: Int64]
}

extension AuditStore {
    public var keepsAuditIntake: Bool { false }
    public func appendAuditIntake(_ rows: [AuditIntakeRow]) async throws(StorageError) {
        throw .unavailable("this store keeps no audit intake; entries are appended to the chain directly")
    }
    public func auditIntake(limit: Int) async throws(StorageError) -> [AuditIntakeRow] { [] }
    public func sequenceAuditIntake(_ entries: [AuditRow], consumed: [Int64], lease: Lease) async throws(StorageError) {
        throw .unavailable("this store keeps no audit intake")
    }
    public func chainedEntries(_ entries: [String]) async throws(StorageError) -> [String: Int64] { [:] }
}

extension AuditStore {
    /// The rule every store applies in `pruneAudit`, inside its transaction: `through` must leave
    /// the newest entry (`head`) in place and move past the checkpoint in place (`current`).
    public static func checkPruning(_ through: Int64, head: Int64?, current: Int64?) throws(StorageError) {
        if let head, through >= head {
            throw .conflict("pruning through audit #\(through) would remove the newest entry (#\(head)); a pruned log keeps at least one")
        }
        if let current, through <= current {
            throw .conflict("the audit log is already pruned through #\(current)")
        }
    }

    /// Runs `appendAudit` in a task and waits for it: for stores with no synchronous path.
    public func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError) {
        try waitBlocking { () async throws(StorageError) in try await appendAudit(entries) }
    }
}

/// Runs `body` in a task and blocks the calling thread until it ends, returning its result: for
/// a thread of Keyward's own (the audit writer) calling an async store method. Never call it
/// from a Swift concurrency executor, whose few threads it would block.
public func waitBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws(StorageError) -> T) throws(StorageError) -> T {
    let outcome = Mutex<Result<T, StorageError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        do throws(StorageError) {
            let value = try await body()
            outcome.withLock { $0 = .success(value) }
        } catch {
            outcome.withLock { $0 = .failure(error) }
        }
        done.signal()
    }
    done.wait()
    return try outcome.withLock { $0 }!.get()
}
