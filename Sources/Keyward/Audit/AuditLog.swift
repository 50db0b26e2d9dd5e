import Crypto
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
/// batch ends with a MAC'd entry, so no entry is left unauthenticated. Appends are batched: callers that arrive while a batch is being written join the
/// next one, which is written in a single transaction. A caller returns only once its entry is
/// durable; if the write fails, every caller in the batch gets the error and the operation that
/// wanted auditing fails (fail-closed).
final class AuditLog: Sendable {
    /// An entry waiting for its batch: the body is encoded by the caller, in parallel with
    /// others, so the flusher only chains, MACs and writes.
    private struct Waiter {
        let body: [UInt8]
        let keyID: KeyID?
        let keyRevision: Int64?
        let time: Date
        let continuation: UnsafeContinuation<Void, any Error>
    }

    private struct State {
        var pending: [Waiter] = []
        var flushing = false
        var sequence: Int64
        var headHash: [UInt8]
    }

    private let store: any KeyStore
    private let protection: RecordProtection
    private let state: Mutex<State>
    /// Largest batch written in one transaction.
    static let maximumBatch = 4096

    init(store: any KeyStore, protection: RecordProtection, head: AuditRow?) {
        self.store = store
        self.protection = protection
        self.state = Mutex(State(sequence: head?.sequence ?? 0, headHash: head?.hash ?? [UInt8](repeating: 0, count: 32)))
    }

    /// Appends `event` and returns once it is durable.
    func record(_ event: AuditEvent) async throws(KeywardError) {
        let body = event.canonicalBody()
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let startFlusher = state.withLock { state -> Bool in
                    state.pending.append(Waiter(body: body, keyID: event.keyID, keyRevision: event.keyRevision, time: event.time, continuation: continuation))
                    if state.flushing { return false }
                    state.flushing = true
                    return true
                }
                if startFlusher {
                    Task { await self.flush() }
                }
            }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .auditUnavailable("\(error)")
        }
    }

    private func flush() async {
        while true {
            let next = state.withLock { state -> (batch: [Waiter], sequence: Int64, hash: [UInt8])? in
                guard !state.pending.isEmpty else {
                    state.flushing = false
                    return nil
                }
                let count = min(state.pending.count, Self.maximumBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return (batch, state.sequence, state.headHash)
            }
            guard var (batch, sequence, headHash) = next else { return }
            // Another process on the same store (`keyward token create` beside a running
            // server) may have appended since this one last did: the store refuses the batch
            // as a conflict, and the batch is chained again onto the newest verified head.
            var attempt = 0
            while true {
                attempt += 1
                do {
                    let (lastSequence, lastHash) = try await append(batch, after: sequence, headHash)
                    state.withLock { state in
                        state.sequence = lastSequence
                        state.headHash = lastHash
                    }
                    for waiter in batch { waiter.continuation.resume() }
                } catch StorageError.conflict where attempt < 8 {
                    do {
                        (sequence, headHash) = try await verifiedHead()
                        continue
                    } catch {
                        fail(batch, error)
                    }
                } catch {
                    fail(batch, error)
                }
                break
            }
        }
    }

    private func fail(_ batch: [Waiter], _ error: any Error) {
        let failure = error as? KeywardError ?? KeywardError.auditUnavailable("\(error)")
        for waiter in batch { waiter.continuation.resume(throwing: failure) }
    }

    /// Chains, MACs and writes one batch after `sequence`; returns the new head.
    private func append(_ batch: [Waiter], after sequence: Int64, _ headHash: [UInt8]) async throws -> (Int64, [UInt8]) {
        var rows: [AuditRow] = []
        rows.reserveCapacity(batch.count)
        var previous = headHash
        var number = sequence
        for waiter in batch {
            number += 1
            let hash = Self.chainHash(previous: previous, sequence: number, body: waiter.body)
            rows.append(AuditRow(sequence: number, body: waiter.body, previousHash: previous, hash: hash,
                                 mac: [], keyID: waiter.keyID, keyRevision: waiter.keyRevision, time: waiter.time))
            previous = hash
        }
        rows[rows.count - 1].mac = try protection.auditMAC(previous)
        try await store.appendAudit(rows)
        return (number, previous)
    }

    /// The store's newest audit entry, checked (MAC and hash) before anything is chained to it.
    private func verifiedHead() async throws -> (Int64, [UInt8]) {
        guard let head = try await store.auditHead() else { return (0, [UInt8](repeating: 0, count: 32)) }
        guard protection.checkAuditMAC(head.mac, head.hash),
              Self.chainHash(previous: head.previousHash, sequence: head.sequence, body: head.body) == head.hash else {
            throw KeywardError.integrityFailure("the newest audit entry (#\(head.sequence)) fails its MAC or hash")
        }
        return (head.sequence, head.hash)
    }

    static func chainHash(previous: [UInt8], sequence: Int64, body: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        previous.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: sequence.bigEndian) { hasher.update(bufferPointer: $0) }
        body.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { [UInt8]($0) }
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
