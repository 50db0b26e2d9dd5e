import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

/// The hash-chained, MAC'd audit log, with group commit.
///
/// Entry n stores `hash_n = SHA-256(hash_{n-1} || u64 n || body_n)`, so a changed, removed,
/// inserted or reordered entry breaks the chain. The last entry of every batch also stores
/// `HMAC(auditKey, hash_n)`; since that hash commits to every entry before it, the MAC
/// authenticates the whole batch, and a rewritten chain (hashes recomputed) fails it. Every
/// batch ends with a MAC'd entry, so no entry is left unauthenticated.
///
/// Appends are batched by one writer thread of the log's own: callers that arrive while a batch
/// is being written join the next one, which is written in a single transaction. The thread
/// calls the store synchronously (`KeyStore.appendAuditBlocking`), so an audited request costs
/// one wake-up of that thread and one resumption, not a chain of executor hops. A caller returns
/// only once its entry is written; if the write fails, every caller in the batch gets the error
/// and the operation that wanted auditing fails (fail-closed).
final class AuditLog: Sendable {
    private let writer: AuditWriter
    /// Set by `retire`: this process may no longer write to the store (its KEK was rotated by
    /// another process), so every entry, and with it every operation, is refused with the reason.
    private let retired = Atomic<Bool>(false)
    private let retirement = Mutex<String?>(nil)

    init(store: any KeyStore, protection: RecordProtection, head: AuditRow?) {
        writer = AuditWriter(store: store, protection: protection, head: head)
    }

    deinit { writer.stop() }

    /// Largest batch written in one transaction.
    static let maximumBatch = 4096

    /// Stops all writing: from now on `record` fails with `storeState(reason)`.
    func retire(_ reason: String) {
        retirement.withLock { $0 = reason }
        retired.store(true, ordering: .releasing)
    }

    /// Why writing stopped, if it did.
    var retiredReason: String? { retired.load(ordering: .acquiring) ? retirement.withLock { $0 } : nil }

    /// Appends `event` and returns once it is written.
    func record(_ event: AuditEvent) async throws(KeywardError) {
        if retired.load(ordering: .relaxed), let reason = retiredReason { throw .storeState(reason) }
        let body = event.canonicalBody()
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                writer.enqueue(AuditWriter.Waiter(body: body, keyID: event.keyID, keyRevision: event.keyRevision,
                                                  time: event.time, continuation: continuation))
            }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .auditUnavailable("\(error)")
        }
    }

    static func chainHash(previous: [UInt8], sequence: Int64, body: [UInt8]) -> [UInt8] {
        SHA256Hash.hash(concatenating: previous, RecordProtection.bytes(sequence), body)
    }
}

/// The audit log's writer thread: takes what is pending, chains, MACs and writes it, resumes
/// the callers, and sleeps when nothing is pending. Ends when its log is released.
final class AuditWriter: Sendable {
    /// An entry waiting for its batch: the body is encoded by the caller, in parallel with
    /// others, so the writer only chains, MACs and writes.
    struct Waiter {
        let body: [UInt8]
        let keyID: KeyID?
        let keyRevision: Int64?
        let time: Date
        let continuation: UnsafeContinuation<Void, any Error>
    }

    private struct State {
        var pending: [Waiter] = []
        var started = false
        var sequence: Int64
        var headHash: [UInt8]
    }

    private let store: any KeyStore
    private let protection: RecordProtection
    private let state: Mutex<State>
    private let thread = WorkerThread(name: "keyward-audit")

    init(store: any KeyStore, protection: RecordProtection, head: AuditRow?) {
        self.store = store
        self.protection = protection
        self.state = Mutex(State(sequence: head?.sequence ?? 0, headHash: head?.hash ?? [UInt8](repeating: 0, count: 32)))
    }

    /// Queues `waiter`; starts the thread on first use and wakes it.
    func enqueue(_ waiter: Waiter) {
        let start = state.withLock { state -> Bool in
            state.pending.append(waiter)
            defer { state.started = true }
            return !state.started
        }
        if start {
            thread.start { [self] stopping in step(stopping) }
        } else {
            thread.signal()
        }
    }

    /// Lets the thread finish what is pending and end.
    func stop() { thread.stop() }

    /// Writes the next batch of what is pending.
    private func step(_ stopping: Bool) -> WorkerThread.Step {
        let next = state.withLock { state -> (batch: [Waiter], sequence: Int64, hash: [UInt8])? in
            guard !state.pending.isEmpty else { return nil }
            let count = min(state.pending.count, AuditLog.maximumBatch)
            let batch: [Waiter]
            if count == state.pending.count {
                batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
            } else {
                batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
            }
            return (batch, state.sequence, state.headHash)
        }
        guard let work = next else { return stopping ? .finished : .idle }
        write(work.batch, after: work.sequence, work.hash)
        return .worked
    }

    /// Writes one batch, re-chaining it when another process appended since this one last did
    /// (`keyward token create` beside a running server): the store refuses the batch as a
    /// conflict, and it is chained again onto the newest verified head.
    private func write(_ batch: [Waiter], after sequence: Int64, _ headHash: [UInt8]) {
        var (sequence, headHash) = (sequence, headHash)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let (lastSequence, lastHash) = try append(batch, after: sequence, headHash)
                state.withLock { state in
                    state.sequence = lastSequence
                    state.headHash = lastHash
                }
                for waiter in batch { waiter.continuation.resume() }
            } catch StorageError.conflict where attempt < 8 {
                do {
                    (sequence, headHash) = try verifiedHead()
                    continue
                } catch {
                    fail(batch, error)
                }
            } catch {
                fail(batch, error)
            }
            return
        }
    }

    private func fail(_ batch: [Waiter], _ error: any Error) {
        let failure = error as? KeywardError ?? KeywardError.auditUnavailable("\(error)")
        for waiter in batch { waiter.continuation.resume(throwing: failure) }
    }

    /// Chains, MACs and writes one batch after `sequence`; returns the new head.
    private func append(_ batch: [Waiter], after sequence: Int64, _ headHash: [UInt8]) throws -> (Int64, [UInt8]) {
        var rows: [AuditRow] = []
        rows.reserveCapacity(batch.count)
        var previous = headHash
        var number = sequence
        for waiter in batch {
            number += 1
            let hash = AuditLog.chainHash(previous: previous, sequence: number, body: waiter.body)
            rows.append(AuditRow(sequence: number, body: waiter.body, previousHash: previous, hash: hash,
                                 mac: [], keyID: waiter.keyID, keyRevision: waiter.keyRevision, time: waiter.time))
            previous = hash
        }
        rows[rows.count - 1].mac = try protection.auditMAC(previous)
        try store.appendAuditBlocking(rows)
        return (number, previous)
    }

    /// The store's newest audit entry, checked (MAC and hash) before anything is chained to it.
    /// Rare (a conflict), so it waits for the store's async read on this thread.
    private func verifiedHead() throws -> (Int64, [UInt8]) {
        let store = self.store
        let newest = try waitBlocking { () async throws(StorageError) in try await store.auditHead() }
        guard let head = newest else { return (0, [UInt8](repeating: 0, count: 32)) }
        guard protection.checkAuditMAC(head.mac, head.hash),
              AuditLog.chainHash(previous: head.previousHash, sequence: head.sequence, body: head.body) == head.hash else {
            throw KeywardError.integrityFailure("the newest audit entry (#\(head.sequence)) fails its MAC or hash")
        }
        return (head.sequence, head.hash)
    }
}

/// What `verifyAudit` found.
public struct AuditVerification: Sendable, Hashable {
    /// Entries checked.
    public var entries: Int
    /// One line per problem, naming the entry's sequence number.
    public var problems: [String]
    /// True when the chain is whole.
    public var isIntact: Bool { problems.isEmpty }
}
