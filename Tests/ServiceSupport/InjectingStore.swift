import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage
import Synchronization

/// A store that forwards to SQLite but can be told to fail: audit appends (fail-closed tests)
/// or a KEK rewrite after some rows (crash-in-the-middle tests).
public final class InjectingStore: KeyStore, @unchecked Sendable {
    public let inner: SQLiteKeyStore
    public var failing = false
    /// How many of the next audit appends fail (as an append that lost the race for the head
    /// for as long as the log tries does), whatever `failing` says.
    public var failingAuditAppends = 0
    public var failRewriteAfter: Int? = nil
    public init(_ inner: SQLiteKeyStore) { self.inner = inner }
    public func header() async throws(StorageError) -> StoreHeader? { try await inner.header() }
    public func generation() async throws(StorageError) -> Int64 { try await inner.generation() }
    public func acquireLease(_ name: String, holder: String, duration: Duration) async throws(StorageError) -> Lease? { try await inner.acquireLease(name, holder: holder, duration: duration) }
    public func lease(_ name: String) async throws(StorageError) -> Lease? { try await inner.lease(name) }
    public func releaseLease(_ lease: Lease) async throws(StorageError) { try await inner.releaseLease(lease) }
    public func heartbeat(node: String, seenGeneration: Int64) async throws(StorageError) { try await inner.heartbeat(node: node, seenGeneration: seenGeneration) }
    public func heartbeats() async throws(StorageError) -> [NodeHeartbeat] { try await inner.heartbeats() }
    public func fenceWrites(activeKEK: KeyID) { inner.fenceWrites(activeKEK: activeKEK) }
    public func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError) { try await inner.initialize(header: header, kek: kek) }
    public func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord? { try await inner.kek(id) }
    public func keks() async throws(StorageError) -> [KEKRecord] { try await inner.keks() }
    public func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError) { try await inner.insertKey(key, firstVersion: firstVersion, aliases: aliases) }
    public func key(_ id: KeyID) async throws(StorageError) -> KeyRow? { try await inner.key(id) }
    public func restoreKeys(_ keys: [RestoredKey], intoEmptyStore: Bool) async throws(StorageError) { try await inner.restoreKeys(keys, intoEmptyStore: intoEmptyStore) }
    public func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError) { try await inner.updateKey(key, expectedRevision: expectedRevision) }
    public func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow] { try await inner.listKeys(filter: filter, after: cursor, limit: limit) }
    public func keyCount() async throws(StorageError) -> Int { try await inner.keyCount() }
    public func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow? { try await inner.version(keyID, version) }
    public func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow] { try await inner.versions(keyID) }
    public func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError) { try await inner.insertVersion(version, key: key, expectedRevision: expectedRevision) }
    public func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError) { try await inner.updateVersion(version, expectedRevision: expectedRevision) }
    /// Alias rows read through `alias(_:)` so far (the alias cache's tests count them).
    public let aliasReads = Atomic<Int>(0)
    public func alias(_ name: String) async throws(StorageError) -> AliasRow? {
        aliasReads.add(1, ordering: .relaxed)
        return try await inner.alias(name)
    }
    public func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow] { try await inner.aliases(of: keyID) }
    public func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError) { try await inner.putAlias(alias, expectedRevision: expectedRevision) }
    public func aliases(after cursor: String?, limit: Int) async throws(StorageError) -> [AliasRow] { try await inner.aliases(after: cursor, limit: limit) }
    public func deleteAlias(_ name: String, expectedRevision: Int64) async throws(StorageError) { try await inner.deleteAlias(name, expectedRevision: expectedRevision) }
    public func appendAudit(_ entries: [AuditRow]) async throws(StorageError) {
        if failing { throw .database("disk full") }
        if failingAuditAppends > 0 {
            failingAuditAppends -= 1
            throw .database("simulated refusal of audit #\(entries.first?.sequence ?? 0)")
        }
        try await inner.appendAudit(entries)
    }
    public func auditHead() async throws(StorageError) -> AuditRow? { try await inner.auditHead() }
    public func insertToken(_ token: TokenRow) async throws(StorageError) { try await inner.insertToken(token) }
    public func token(_ id: KeyID) async throws(StorageError) -> TokenRow? { try await inner.token(id) }
    public func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError) { try await inner.updateToken(token, expectedRevision: expectedRevision) }
    /// Reads of the tokens table from its start (`tokens(after: nil, ...)`): each is one walk
    /// of every token, as reading the grant book makes.
    public let tokenScans = Atomic<Int>(0)
    /// Milliseconds each read of a page of tokens takes on top of the database's time.
    public let tokenPageDelay = Atomic<Int>(0)
    public func tokens(after cursor: KeyID?, limit: Int) async throws(StorageError) -> [TokenRow] {
        if cursor == nil { tokenScans.add(1, ordering: .relaxed) }
        let delay = tokenPageDelay.load(ordering: .relaxed)
        if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
        return try await inner.tokens(after: cursor, limit: limit)
    }
    /// While true, reads of audit entries wait (up to 30 s): a walk of the log that never ends.
    public let auditReadsHeld = Atomic<Bool>(false)
    /// Reads of audit entries that have waited because `auditReadsHeld` was set.
    public let heldAuditReads = Atomic<Int>(0)
    public func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow] {
        let started = ContinuousClock.now
        if auditReadsHeld.load(ordering: .relaxed) { heldAuditReads.add(1, ordering: .relaxed) }
        while auditReadsHeld.load(ordering: .relaxed), ContinuousClock.now - started < .seconds(30) { try? await Task.sleep(for: .milliseconds(20)) }
        return try await inner.auditEntries(after: after, limit: limit)
    }
    public func anchorSnapshot() async throws(StorageError) -> AnchorSnapshot { try await inner.anchorSnapshot() }
    public func auditCheckpoint() async throws(StorageError) -> AuditCheckpointRow? { try await inner.auditCheckpoint() }
    public func pruneAudit(_ checkpoint: AuditCheckpointRow) async throws(StorageError) { try await inner.pruneAudit(checkpoint) }
    public func rewriteAll(newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter, progress: @escaping @Sendable (Int) -> Void) async throws(StorageError) -> Int {
        guard let limit = failRewriteAfter else {
            return try await inner.rewriteAll(newKEK: newKEK, header: header, rewriter: rewriter, progress: progress)
        }
        let counter = Counter()
        var failing = rewriter
        failing.version = { row, key in
            if counter.next() > limit { throw StorageError.database("simulated crash during KEK rotation") }
            return try rewriter.version(row, key)
        }
        return try await inner.rewriteAll(newKEK: newKEK, header: header, rewriter: failing, progress: progress)
    }
}


final class Counter: Sendable {
    private let value = Mutex(0)
    public func next() -> Int { value.withLock { $0 += 1; return $0 } }
}
