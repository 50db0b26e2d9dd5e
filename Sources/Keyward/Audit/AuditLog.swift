import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

/// The hash-chained, MAC'd audit log, with group commit, and the revision index it anchors.
///
/// Entry n stores `hash_n = SHA-256(hash_{n-1} || u64 n || body_n)`, so a changed, removed,
/// inserted or reordered entry breaks the chain. The last entry of every batch also stores
/// `HMAC(auditKey, hash_n || digest)`, where `digest` is the revision index's digest after the
/// batch (``RevisionIndex``); since that hash commits to every entry before it, the MAC
/// authenticates the whole batch and the index as it left it. Every batch ends with a MAC'd
/// entry, so no entry is left unauthenticated.
///
/// The index (the newest audited revision of every key, version, token and alias) is held in
/// memory, checked against the newest batch MAC when the log opens and whenever another
/// process has appended: `KeyRepository` compares each row it loads with it, so a row put back
/// from an older copy of the store is refused, and an index row edited to let it through fails
/// that MAC.
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
    private let store: any KeyStore
    private let kekID: KeyID

    /// A log continuing from `head`, whose batch MAC `index` has been checked against.
    /// With `intakeNode`, entries go to the store's intake under that node's name and reach the
    /// chain when a sequencer (`sequence(under:)`) chains them (decision 0034).
    /// `clock` dates the entries the log writes itself (an intake row refused by the sequencer).
    init(store: any KeyStore, protection: RecordProtection, head: AuditRow?, index: RevisionIndex, intakeNode: String? = nil,
         clock: @escaping @Sendable () -> Date = { Date() }) {
        writer = AuditWriter(store: store, protection: protection, head: head, index: index, intakeNode: intakeNode, clock: clock)
        self.store = store
        self.kekID = protection.kekID
    }

    /// `error`, unless it is an integrity failure that another process's KEK rotation explains:
    /// rows re-protected under a KEK this instance does not hold fail its MAC checks without
    /// anyone having tampered with them. Then a `staleKEK` store error saying so, not a false
    /// tamper alarm.
    func explainingRotation(_ error: KeywardError) async -> KeywardError {
        guard case .integrityFailure = error,
              let header = try? await store.header(), header.activeKEK != kekID else { return error }
        return .storage(.staleKEK("rows are now protected under KEK \(header.activeKEK), which another process rotated in; "
                                  + "this instance holds KEK \(kekID)"))
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
        var event = event
        // An entry that may go through the intake names itself, so a replayed copy of its
        // intake row is refused (decision 0034).
        if writer.intakeNode != nil { event.entry = UUID().uuidString }
        let body = event.canonicalBody()
        try await writer.submit(.entry(body: body, keyID: event.keyID, anchors: event.anchors.map(\.row), time: event.time, entry: event.entry))
    }


    /// The newest revision the log anchors for `record`, if any.
    func anchor(of record: AnchoredRecord) -> RevisionIndex.Entry? { writer.anchor(of: record) }

    /// A fence for a row about to be read: the anchors that bind it.
    func fence() -> ReadFence { ReadFence(sequence: writer.sequence) }

    /// The sequence number of the newest entry this log knows of.
    var sequence: Int64 { writer.sequence }

    /// Whether entries go to the intake rather than straight to the chain.
    var writesIntake: Bool { writer.intakeNode != nil }

    /// Chains what waits in the store's intake, oldest first, in batches, each in one transaction
    /// fenced by `lease`; returns how many intake rows it took. A row whose MAC fails is not
    /// chained: an entry naming it is chained in its place. Runs on the writer thread.
    func sequence(under lease: Lease) async throws(KeywardError) -> Int {
        let taken = AuditWriter.Tally()
        try await writer.submit(.sequence(lease, taken))
        return taken.value.load(ordering: .acquiring)
    }

    /// This node no longer holds the sequencer's lease: its entries go to the intake again.
    func standDown() { writer.standDown() }

    /// Reads the store's newest entry and revision index again and checks them against each
    /// other: after another process appended, so that its changes (a token revoked, an alias
    /// moved) count in replay checks here too. Runs on the writer thread, between batches.
    func resynchronize() async throws(KeywardError) {
        try await writer.submit(.resynchronize)
    }

    static func chainHash(previous: [UInt8], sequence: Int64, body: [UInt8]) -> [UInt8] {
        SHA256Hash.hash(concatenating: previous, RecordProtection.bytes(sequence), body)
    }

    /// The store's newest entry and revision index, checked against each other (the entry's hash,
    /// and its batch MAC over that hash and the index's digest).
    static func verifiedSnapshot(_ snapshot: AnchorSnapshot, protection: RecordProtection) throws(KeywardError) -> (head: AuditRow?, index: RevisionIndex) {
        let index = try RevisionIndex(rows: snapshot.anchors, protection: protection)
        guard let head = snapshot.head else {
            guard index.count == 0 else { throw .integrityFailure("the revision index has rows but the audit log is empty (the log was emptied)") }
            return (nil, index)
        }
        guard AuditLog.chainHash(previous: head.previousHash, sequence: head.sequence, body: head.body) == head.hash else {
            throw .integrityFailure("the newest audit entry (#\(head.sequence)) fails its hash (edited)")
        }
        guard protection.checkAuditMAC(head.mac, head.hash, index.digest) else {
            throw .integrityFailure("the newest audit entry (#\(head.sequence)) fails its MAC over the revision index: the entry, or the index "
                                    + "(anchored_revisions), was edited; run keyward verify to name it")
        }
        return (head, index)
    }
}

/// The audit log's writer thread: takes what is pending, chains, MACs and writes it, resumes
/// the callers, and sleeps when nothing is pending. Ends when its log is released. It alone
/// changes the revision index held in memory.
final class AuditWriter: Sendable {
    /// What a caller hands the thread.
    enum Job {
        /// An entry: the body is encoded by the caller, in parallel with others, so the writer
        /// only chains, MACs and writes.
        case entry(body: [UInt8], keyID: KeyID?, anchors: [RevisionAnchorRow], time: Date, entry: String?)
        /// Re-read the head and the index from the store (`AuditLog.resynchronize`).
        case resynchronize
        /// Chain the store's intake under the lease (`AuditLog.sequence(under:)`); the count
        /// of intake rows taken is left in the tally.
        case sequence(Lease, Tally)
    }

    /// A count a job leaves for its caller.
    final class Tally: Sendable {
        let value = Atomic<Int>(0)
    }

    /// A job and the caller waiting for it.
    struct Waiter {
        let job: Job
        let continuation: UnsafeContinuation<Void, any Error>
    }

    private struct State {
        var pending: [Waiter] = []
        var started = false
        var sequence: Int64
        var headHash: [UInt8]
        var index: RevisionIndex
        /// Anchors of this node's entries that wait in the intake, newest per record: they
        /// count for what a record's newest revision is (a deleted alias's row is missing, a
        /// re-created one starts past the deletion) until the index holds them, but bind no
        /// read (sequence `Int64.max`), as other nodes' unchained anchors do not either.
        var unchained: [[UInt8]: RevisionIndex.Entry] = [:]

        /// Drops the waiting anchors the index has caught up with (their entries were chained,
        /// by this node or the sequencer).
        mutating func forgetChained() {
            guard !unchained.isEmpty else { return }
            unchained = unchained.filter { record, waiting in
                guard let chained = index.entries[record] else { return true }
                return chained.revision < waiting.revision
            }
        }
    }

    private let store: any KeyStore
    private let protection: RecordProtection
    private let state: Mutex<State>
    private let thread = WorkerThread(name: "keyward-audit")
    /// The node whose entries go to the intake; nil when entries are chained as written.
    let intakeNode: String?
    /// The time for entries the writer makes itself.
    private let clock: @Sendable () -> Date
    /// True while this node is the sequencer (its last sequencing under the lease succeeded):
    /// then its own entries are chained as they are written, after the intake, rather than
    /// making a round trip through it.
    private let sequencing = Atomic<Bool>(false)
    /// Intake batches in flight at once: each is an independent transaction, so the database
    /// can commit several together while the next batch gathers.
    private let intakeSlots = DispatchSemaphore(value: AuditWriter.intakeBatchesInFlight)
    static let intakeBatchesInFlight = 4

    init(store: any KeyStore, protection: RecordProtection, head: AuditRow?, index: RevisionIndex, intakeNode: String? = nil,
         clock: @escaping @Sendable () -> Date) {
        self.clock = clock
        self.store = store
        self.protection = protection
        self.intakeNode = intakeNode
        self.state = Mutex(State(sequence: head?.sequence ?? 0, headHash: head?.hash ?? [UInt8](repeating: 0, count: 32), index: index))
    }

    /// Hands `job` to the thread and waits for it.
    func submit(_ job: Job) async throws(KeywardError) {
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                enqueue(Waiter(job: job, continuation: continuation))
            }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .auditUnavailable("\(error)")
        }
    }

    func anchor(of record: AnchoredRecord) -> RevisionIndex.Entry? {
        state.withLock { state in
            let chained = state.index.entry(record)
            guard !state.unchained.isEmpty, let waiting = state.unchained[record.identity] else { return chained }
            guard let chained, chained.revision > waiting.revision else { return waiting }
            return chained
        }
    }

    var sequence: Int64 { state.withLock { $0.sequence } }

    /// Queues `waiter`; starts the thread on first use and wakes it.
    private func enqueue(_ waiter: Waiter) {
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

    /// Writes the next batch of what is pending (entries up to the next resynchronisation), or
    /// carries out that resynchronisation.
    private func step(_ stopping: Bool) -> WorkerThread.Step {
        let next = state.withLock { state -> [Waiter]? in
            guard let first = state.pending.first else { return nil }
            guard case .entry = first.job else {
                state.pending.removeFirst()
                return [first]
            }
            let limit = min(state.pending.count, AuditLog.maximumBatch)
            var count = 1
            while count < limit, case .entry = state.pending[count].job { count += 1 }
            if count == state.pending.count {
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
            }
            defer { state.pending.removeFirst(count) }
            return Array(state.pending.prefix(count))
        }
        guard let batch = next else { return stopping ? .finished : .idle }
        switch batch[0].job {
        case .resynchronize:
            do {
                try resynchronize()
                batch[0].continuation.resume()
            } catch {
                fail(batch, error)
            }
        case .sequence(let lease, let taken):
            do {
                // The intake batches still in flight land first, so the chain takes them now.
                drainIntake()
                let count = try sequence(under: lease)
                sequencing.store(true, ordering: .relaxed)
                taken.value.store(count, ordering: .releasing)
                batch[0].continuation.resume()
            } catch let error as StorageError {
                sequencing.store(false, ordering: .relaxed)
                fail(batch, KeywardError.storage(error))
            } catch {
                sequencing.store(false, ordering: .relaxed)
                fail(batch, error)
            }
        case .entry:
            if intakeNode != nil, !sequencing.load(ordering: .relaxed) { writeIntake(batch) } else { write(batch) }
        }
        return .worked
    }

    /// Writes one batch, re-chaining it when another process appended since this one last did
    /// (`keyward token create` beside a running server): the store refuses the batch as a
    /// conflict, the head and index are read and checked again, and the batch is chained onto them.
    private func write(_ batch: [Waiter]) {
        // Several nodes on one database race for the head: a batch that loses re-chains and
        // tries again for up to two seconds, however many times another node wins meanwhile.
        let started = ContinuousClock.now
        while true {
            do {
                try append(batch)
                for waiter in batch { waiter.continuation.resume() }
            } catch StorageError.conflict where started.duration(to: .now) < .seconds(2) {
                do {
                    try resynchronize()
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

    /// An entry to chain: its body, key column, anchors, time and entry id.
    private typealias Unchained = (body: [UInt8], keyID: KeyID?, anchors: [RevisionAnchorRow], time: Date, entry: String?)

    /// Chains, MACs and writes one batch after the current head; then makes the batch's end the
    /// head and its anchors part of the index.
    private func append(_ batch: [Waiter]) throws {
        let entries = batch.compactMap { waiter -> Unchained? in
            guard case .entry(let body, let keyID, let anchors, let time, let entry) = waiter.job else { return nil }
            return (body, keyID, anchors, time, entry)
        }
        try chain(entries) { rows throws(StorageError) in try store.appendAuditBlocking(rows) }
    }

    /// Chains `entries` after the current head, MACs the last over the index as they leave it,
    /// has `write` store them, and then makes them the head and their anchors part of the index.
    private func chain(_ entries: [Unchained], write: ([AuditRow]) throws(StorageError) -> Void) throws {
        let (sequence, headHash, digest, pending) = try state.withLock { (state: inout State) throws(KeywardError) in
            var pending: RevisionIndex.Pending? = nil
            for (offset, entry) in entries.enumerated() where !entry.anchors.isEmpty {
                pending = try state.index.pending(entry.anchors, sequence: state.sequence + Int64(offset) + 1, protection: protection, continuing: pending)
            }
            return (state.sequence, state.headHash, state.index.digest, pending)
        }
        var rows: [AuditRow] = []
        rows.reserveCapacity(entries.count)
        var previous = headHash
        var number = sequence
        for entry in entries {
            number += 1
            let hash = AuditLog.chainHash(previous: previous, sequence: number, body: entry.body)
            rows.append(AuditRow(sequence: number, body: entry.body, previousHash: previous, hash: hash,
                                 mac: [], keyID: entry.keyID, anchors: entry.anchors, time: entry.time, entry: entry.entry))
            previous = hash
        }
        rows[rows.count - 1].mac = try protection.auditMAC(previous, pending?.digest ?? digest)
        try write(rows)
        state.withLock { state in
            state.sequence = number
            state.headHash = previous
            if let pending { state.index.adopt(pending) }
            state.forgetChained()
        }
    }

    // MARK: The intake (decision 0034)

    /// Writes one batch to the intake: each entry MAC'd under this node's name, inserted in one
    /// transaction with no guard on the chain's head, up to `intakeBatchesInFlight` at once (the
    /// thread goes on gathering the next batch meanwhile). Its anchors count here until chained;
    /// its callers resume once it has committed.
    private func writeIntake(_ batch: [Waiter]) {
        guard let node = intakeNode else { return }
        var rows: [AuditIntakeRow] = []
        rows.reserveCapacity(batch.count)
        var anchors: [RevisionAnchorRow] = []
        do {
            for waiter in batch {
                guard case .entry(let body, let keyID, let entryAnchors, let time, _) = waiter.job else { continue }
                var row = AuditIntakeRow(node: node, body: body, keyID: keyID, time: time, mac: [])
                row.mac = try protection.mac(RecordFraming.auditIntake(row))
                rows.append(row)
                anchors += entryAnchors
            }
        } catch {
            fail(batch, error)
            return
        }
        intakeSlots.wait()
        let store = self.store, written = rows, waiting = anchors
        Task { [self] in
            defer { intakeSlots.signal() }
            do throws(StorageError) {
                try await store.appendAuditIntake(written)
            } catch {
                fail(batch, error)
                return
            }
            if !waiting.isEmpty {
                state.withLock { state in
                    for anchor in waiting where (state.unchained[anchor.record]?.revision ?? .min) <= anchor.revision {
                        state.unchained[anchor.record] = RevisionIndex.Entry(revision: anchor.revision, deleted: anchor.deleted, sequence: .max)
                    }
                }
            }
            for waiter in batch { waiter.continuation.resume() }
        }
    }

    /// From the next batch on, this node's entries go to the intake (it lost the lease).
    func standDown() { sequencing.store(false, ordering: .relaxed) }

    /// Waits until no intake batch is in flight.
    private func drainIntake() {
        for _ in 0..<AuditWriter.intakeBatchesInFlight { intakeSlots.wait() }
        for _ in 0..<AuditWriter.intakeBatchesInFlight { intakeSlots.signal() }
    }

    /// Most intake rows chained in one transaction.
    static let sequencingBatch = 2048

    /// Chains the intake, oldest first, a batch per transaction fenced by `lease`, until it is
    /// empty. A batch that finds the head moved (a process appending directly, a sequencer
    /// before this one) reads what was appended and chains again.
    private func sequence(under lease: Lease) throws -> Int {
        let store = self.store
        var taken = 0
        while true {
            let rows = try waitBlocking { () async throws(StorageError) in try await store.auditIntake(limit: AuditWriter.sequencingBatch) }
            guard !rows.isEmpty else { return taken }
            let entries = try refusingReplays(rows, rows.map(admitted))
            let consumed = rows.map(\.id)
            var attempts = 0
            while true {
                do {
                    try chain(entries) { chained throws(StorageError) in
                        try waitBlocking { () async throws(StorageError) in try await store.sequenceAuditIntake(chained, consumed: consumed, lease: lease) }
                    }
                    break
                } catch StorageError.conflict where attempts < 3 {
                    attempts += 1
                    try resynchronize()
                }
            }
            taken += rows.count
            if rows.count < AuditWriter.sequencingBatch { return taken }
        }
    }

    /// The entry an intake row is chained as: the row's own when its MAC verifies and its body
    /// is an entry with an entry id, and otherwise an entry that names the row as refused.
    private func admitted(_ row: AuditIntakeRow) -> Unchained {
        if protection.verifies(row.mac, RecordFraming.auditIntake(row)),
           let event = try? CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit intake row \(row.id)"),
           let entry = event.entry, UUID(uuidString: entry) != nil {
            return (row.body, row.keyID, event.anchors.map(\.row), row.time, entry)
        }
        return refusal(row, "fails its MAC, is not an entry or names no entry id: forged or edited in the database")
    }

    /// `entries` (admitted from `rows`), each whose entry id is already chained, or came earlier
    /// in this batch, replaced by an entry that names its row as a replay: a copy of an intake
    /// row put back after it was chained carries a valid MAC, and would otherwise be chained
    /// again as an operation that happened twice.
    private func refusingReplays(_ rows: [AuditIntakeRow], _ entries: [Unchained]) throws -> [Unchained] {
        let store = self.store
        let ids = entries.compactMap(\.entry)
        let chained = try waitBlocking { () async throws(StorageError) in try await store.chainedEntries(ids) }
        var seen: Set<String> = []
        return zip(rows, entries).map { row, entry in
            guard let id = entry.entry else { return entry }
            if let sequence = chained[id] {
                return refusal(row, "replays entry \(id), already chained as #\(sequence): a copy put back in the database")
            }
            guard seen.insert(id).inserted else {
                return refusal(row, "repeats entry \(id), taken from an earlier row of the intake: a copy put in the database")
            }
            return entry
        }
    }

    /// The entry chained in place of a refused intake row, saying why it was refused.
    private func refusal(_ row: AuditIntakeRow, _ reason: String) -> Unchained {
        let now = clock()
        let event = AuditEvent(time: now, actor: SystemJob.auditSequencing.principal, operation: AuditOperation.rejectIntake.description,
                               keyID: row.keyID, outcome: AuditOutcome.denied.rawValue,
                               detail: "intake row #\(row.id) (node \(String(row.node.prefix(80)).debugDescription)) \(reason); it was not chained")
        return (event.canonicalBody(), row.keyID, [], now, nil)
    }

    /// Takes up what other processes appended since this log's head: each entry must follow
    /// the chain, and each batch MAC must verify over the index as the entries' anchors leave it.
    /// Rare (another process appended), so it waits for the store's async reads on this thread.
    private func resynchronize() throws {
        let store = self.store
        var (number, previous, pending) = state.withLock { ($0.sequence, $0.headHash, RevisionIndex.Pending(digest: $0.index.digest)) }
        var unauthenticated: Int64? = nil
        while true {
            let after = number
            let page = try waitBlocking { () async throws(StorageError) in try await store.auditEntries(after: after, limit: 1000) }
            guard !page.isEmpty else { break }
            for row in page {
                guard row.sequence == number + 1, row.previousHash == previous,
                      AuditLog.chainHash(previous: row.previousHash, sequence: row.sequence, body: row.body) == row.hash else {
                    throw KeywardError.integrityFailure("audit #\(row.sequence), appended by another process, does not follow #\(number) as this process wrote it "
                                                        + "(entries removed or rewritten); run keyward verify")
                }
                let anchors = try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)").anchors.map(\.row)
                if !anchors.isEmpty {
                    let start = pending
                    pending = try state.withLock { (state: inout State) throws(KeywardError) in
                        try state.index.pending(anchors, sequence: row.sequence, protection: protection, continuing: start)
                    }
                }
                if row.mac.isEmpty {
                    unauthenticated = unauthenticated ?? row.sequence
                } else {
                    guard protection.checkAuditMAC(row.mac, row.hash, pending.digest) else {
                        throw KeywardError.integrityFailure("audit #\(row.sequence), appended by another process, fails its batch MAC over the revision index; run keyward verify")
                    }
                    unauthenticated = nil
                }
                number = row.sequence
                previous = row.hash
            }
        }
        if let unauthenticated {
            throw KeywardError.integrityFailure("audit #\(unauthenticated)–#\(number): no batch MAC covers these entries; run keyward verify")
        }
        state.withLock { state in
            state.sequence = number
            state.headHash = previous
            state.index.adopt(pending)
            state.forgetChained()
        }
    }
}


/// What `verifyAudit` found.
public struct AuditVerification: Sendable, Hashable {
    /// Entries checked.
    public var entries: Int
    /// Entries checked in the audit intake, durable but not yet chained by the sequencer
    /// (decision 0034); 0 on a store without an intake.
    public var unchained = 0
    /// One line per problem, naming the entry's sequence number.
    public var problems: [String]
    /// The entry a resumed walk continued after (`AuditWalkPoint`), trusting the entries up to
    /// it; nil for a walk from the log's first entry.
    public var resumedAfter: Int64? = nil
    /// True when the chain is whole.
    public var isIntact: Bool { problems.isEmpty }
}
