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
    private struct Waiter {
        let event: AuditEvent
        let continuation: CheckedContinuation<Void, any Error>
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
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let startFlusher = state.withLock { state -> Bool in
                    state.pending.append(Waiter(event: event, continuation: continuation))
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
            guard let (batch, sequence, headHash) = next else { return }
            do {
                var rows: [AuditRow] = []
                rows.reserveCapacity(batch.count)
                var previous = headHash
                var number = sequence
                for waiter in batch {
                    number += 1
                    let row = makeRow(waiter.event, sequence: number, previousHash: previous)
                    previous = row.hash
                    rows.append(row)
                }
                rows[rows.count - 1].mac = try protection.auditMAC(previous)
                try await store.appendAudit(rows)
                let (lastSequence, lastHash) = (number, previous)
                state.withLock { state in
                    state.sequence = lastSequence
                    state.headHash = lastHash
                }
                for waiter in batch { waiter.continuation.resume() }
            } catch {
                let failure = KeywardError.auditUnavailable("\(error)")
                for waiter in batch { waiter.continuation.resume(throwing: failure) }
            }
        }
    }

    private func makeRow(_ event: AuditEvent, sequence: Int64, previousHash: [UInt8]) -> AuditRow {
        let body = event.canonicalBody()
        let hash = Self.chainHash(previous: previousHash, sequence: sequence, body: body)
        return AuditRow(sequence: sequence, body: body, previousHash: previousHash, hash: hash,
                        mac: [], keyID: event.keyID, keyRevision: event.keyRevision, time: event.time)
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
