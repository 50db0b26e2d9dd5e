import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

/// A `KeyStore` held in memory, for tests and examples: every guarantee the protocol states
/// (atomic calls, compare-and-swap revisions, unique versions and alias names, an audit log
/// without gaps), and nothing persisted. Each call takes one lock, so a call is atomic and
/// calls are linearisable.
///
/// It keeps what it is given as given, like any backend: MACs and sealing are the `Keyward`
/// layer's, so a test may also reach in (``mutate(_:)``) to tamper with rows as an attacker
/// with access to the database would.
public final class InMemoryKeyStore: KeyStore {
    /// Everything the store holds.
    public struct Contents: Sendable {
        /// The header, once initialised.
        public var header: StoreHeader?
        /// KEK records by id.
        public var keks: [KeyID: KEKRecord] = [:]
        /// Key rows by id.
        public var keys: [KeyID: KeyRow] = [:]
        /// Version rows by key id and version number.
        public var versions: [KeyID: [UInt32: VersionRow]] = [:]
        /// Alias rows by name.
        public var aliases: [String: AliasRow] = [:]
        /// Token rows by id.
        public var tokens: [KeyID: TokenRow] = [:]
        /// Audit rows, oldest first; `audit[i].sequence == i + 1 + (auditCheckpoint?.sequence ?? 0)`.
        public var audit: [AuditRow] = []
        /// The checkpoint of a pruned log (`pruneAudit`).
        public var auditCheckpoint: AuditCheckpointRow?
        /// The revision index: newest audited revision (and deletion) per record identity.
        public var anchors: [[UInt8]: RevisionAnchorRow] = [:]
        /// `generation()`: increased by every administrative change.
        public var generation: Int64 = 0
        /// Leases by name (`ClusterStore`).
        public var leases: [String: Lease] = [:]
        /// Node heartbeats by node id.
        public var nodes: [String: (seenGeneration: Int64, at: Date)] = [:]
    }

    private let contents = Mutex(Contents())
    /// The KEK writes are checked against (`fenceWrites`).
    private let fence = Mutex<KeyID?>(nil)

    /// Run once, at the next `anchorSnapshot`, before it reads or after (see
    /// `beforeNextAnchorSnapshot`, `afterNextAnchorSnapshot`).
    private let snapshotHook = Mutex<(before: (@Sendable () async -> Void)?, after: (@Sendable () async -> Void)?)>((nil, nil))

    /// An empty store.
    public init() {}

    /// Runs `hook` once, when `anchorSnapshot` is next called and before it reads: a test's way
    /// to land a write at that moment (another process writing while this one verifies).
    public func beforeNextAnchorSnapshot(_ hook: @escaping @Sendable () async -> Void) {
        snapshotHook.withLock { $0.before = hook }
    }

    /// Runs `hook` once, when `anchorSnapshot` is next called, after it has read and before it
    /// returns: a write that lands just after the snapshot was taken.
    public func afterNextAnchorSnapshot(_ hook: @escaping @Sendable () async -> Void) {
        snapshotHook.withLock { $0.after = hook }
    }

    /// Runs `body` on the stored rows under the store's lock (a test's way to tamper).
    public func mutate<T>(_ body: (inout Contents) throws -> T) rethrows -> T {
        try contents.withLock { try body(&$0) }
    }

    private func withContents<T>(_ body: (inout Contents) -> T) -> T {
        contents.withLock { body(&$0) }
    }

    /// Runs a write: refused with `staleKEK` when the header's active KEK is not the fenced one,
    /// and with `leaseLost` when the task writes under a lease (`LeaseFence`) no longer held.
    private func locked<T>(fencedByLease: Bool = true, _ body: (inout Contents) throws(StorageError) -> T) throws(StorageError) -> T {
        let expected = fence.withLock { $0 }
        let lease = fencedByLease ? LeaseFence.current : nil
        return try contents.withLock { (state: inout Contents) throws(StorageError) -> T in
            if let expected, let active = state.header?.activeKEK, active != expected {
                throw .staleKEK("this instance writes under KEK \(expected), but the store's KEK is now \(active); nothing was written")
            }
            if let lease, state.leases[lease.name].map({ $0.holder != lease.holder || $0.token != lease.token || $0.expiresAt <= Date() }) ?? true {
                throw .leaseLost("lease \(lease.name) with token \(lease.token) has lapsed or passed to another node")
            }
            return try body(&state)
        }
    }

    // MARK: HeaderStore

    public func header() async throws(StorageError) -> StoreHeader? { withContents { $0.header } }

    public func generation() async throws(StorageError) -> Int64 { withContents { $0.generation } }

    public func fenceWrites(activeKEK: KeyID) { fence.withLock { $0 = activeKEK } }

    public func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard state.header == nil else { throw .alreadyInitialized }
            state.header = header
            state.keks[kek.id] = kek
        }
    }

    public func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord? { withContents { $0.keks[id] } }

    public func keks() async throws(StorageError) -> [KEKRecord] {
        withContents { $0.keks.values.sorted { $0.createdAt < $1.createdAt } }
    }

    // MARK: KeyRecordStore

    public func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard state.keys[key.id] == nil else { throw .conflict("key \(key.id) exists") }
            for alias in aliases where state.aliases[alias.name] != nil { throw .conflict("alias \(alias.name) exists") }
            guard Set(aliases.map(\.name)).count == aliases.count else { throw .conflict("an alias is given twice") }
            state.keys[key.id] = key
            if let firstVersion { state.versions[key.id, default: [:]][firstVersion.version] = firstVersion }
            for alias in aliases { state.aliases[alias.name] = alias }
        }
    }

    public func key(_ id: KeyID) async throws(StorageError) -> KeyRow? { withContents { $0.keys[id] } }

    public func restoreKeys(_ keys: [RestoredKey], intoEmptyStore: Bool) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            if intoEmptyStore, !state.keys.isEmpty { throw .conflict("the store already holds keys; a backup is restored only into an empty store") }
            var next = state
            for item in keys {
                guard next.keys[item.key.id] == nil else { throw .conflict("the store already holds key \(item.key.id), or it is given twice") }
                next.keys[item.key.id] = item.key
                for version in item.versions { next.versions[item.key.id, default: [:]][version.version] = version }
                for alias in item.aliases {
                    guard next.aliases[alias.name] == nil else { throw .conflict("the alias \(alias.name) already names a key, or is given twice") }
                    next.aliases[alias.name] = alias
                }
            }
            next.generation += 1
            state = next
        }
    }

    public func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in try Self.update(key, expectedRevision: expectedRevision, &state) }
    }

    private static func update(_ key: KeyRow, expectedRevision: Int64, _ state: inout Contents) throws(StorageError) {
        guard let stored = state.keys[key.id] else { throw .conflict("key \(key.id) does not exist") }
        guard stored.revision == expectedRevision else {
            throw .conflict("key \(key.id) is at revision \(stored.revision), not \(expectedRevision)")
        }
        state.keys[key.id] = key
        state.generation += 1
    }

    public func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow] {
        withContents { state in
            let matching = state.keys.values.filter { row in
                if let cursor, !cursor.bytes.lexicographicallyPrecedes(row.id.bytes) { return false }
                if let wanted = filter.state, row.state != wanted { return false }
                if let tag = filter.tag, row.tags[tag.key] != tag.value { return false }
                if let alias = filter.alias, state.aliases[alias]?.keyID != row.id { return false }
                return true
            }
            return Array(matching.sorted { $0.id.bytes.lexicographicallyPrecedes($1.id.bytes) }.prefix(max(0, limit)))
        }
    }

    public func keyCount() async throws(StorageError) -> Int { withContents { $0.keys.count } }

    public func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow? {
        withContents { $0.versions[keyID]?[version] }
    }

    public func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow] {
        withContents { ($0.versions[keyID] ?? [:]).values.sorted { $0.version < $1.version } }
    }

    public func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard state.versions[version.keyID]?[version.version] == nil else {
                throw .conflict("version \(version.version) of key \(version.keyID) exists")
            }
            try Self.update(key, expectedRevision: expectedRevision, &state)
            state.versions[version.keyID, default: [:]][version.version] = version
        }
    }

    public func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard let stored = state.versions[version.keyID]?[version.version] else {
                throw .conflict("version \(version.version) of key \(version.keyID) does not exist")
            }
            guard stored.revision == expectedRevision else {
                throw .conflict("version \(version.version) of key \(version.keyID) is at revision \(stored.revision), not \(expectedRevision)")
            }
            state.versions[version.keyID]![version.version] = version
        }
    }

    public func alias(_ name: String) async throws(StorageError) -> AliasRow? { withContents { $0.aliases[name] } }

    public func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow] {
        withContents { $0.aliases.values.filter { $0.keyID == keyID }.sorted { $0.name < $1.name } }
    }

    public func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            let stored = state.aliases[alias.name]
            guard stored?.revision == expectedRevision else {
                throw .conflict("alias \(alias.name) is at revision \(stored.map { String($0.revision) } ?? "none"), not \(expectedRevision.map(String.init) ?? "none")")
            }
            state.aliases[alias.name] = alias
            state.generation += 1
        }
    }

    public func aliases(after cursor: String?, limit: Int) async throws(StorageError) -> [AliasRow] {
        withContents { contents in
            Array(contents.aliases.values.filter { $0.name > (cursor ?? "") }.sorted { $0.name < $1.name }.prefix(limit))
        }
    }

    public func deleteAlias(_ name: String, expectedRevision: Int64) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard let stored = state.aliases[name], stored.revision == expectedRevision else {
                throw .conflict("alias \(name) is not at revision \(expectedRevision)")
            }
            state.aliases[name] = nil
            state.generation += 1
        }
    }

    // MARK: CredentialStore

    public func insertToken(_ token: TokenRow) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard state.tokens[token.id] == nil else { throw .conflict("token \(token.id) exists") }
            state.tokens[token.id] = token
        }
    }

    public func token(_ id: KeyID) async throws(StorageError) -> TokenRow? { withContents { $0.tokens[id] } }

    public func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError) {
        try locked { (state: inout Contents) throws(StorageError) in
            guard let stored = state.tokens[token.id] else { throw .conflict("token \(token.id) does not exist") }
            guard stored.revision == expectedRevision else {
                throw .conflict("token \(token.id) is at revision \(stored.revision), not \(expectedRevision)")
            }
            state.tokens[token.id] = token
            state.generation += 1
        }
    }

    public func tokens(after cursor: KeyID?, limit: Int) async throws(StorageError) -> [TokenRow] {
        withContents { contents in
            let sorted = contents.tokens.values.sorted { $0.id.bytes.lexicographicallyPrecedes($1.id.bytes) }
            let after = cursor.map { cursor in sorted.filter { cursor.bytes.lexicographicallyPrecedes($0.id.bytes) } } ?? sorted
            return Array(after.prefix(limit))
        }
    }

    // MARK: AuditStore

    public func appendAudit(_ entries: [AuditRow]) async throws(StorageError) {
        try appendAuditBlocking(entries)
    }

    public func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError) {
        try locked(fencedByLease: false) { (state: inout Contents) throws(StorageError) in
            var next = Int64(state.audit.count) + 1 + (state.auditCheckpoint?.sequence ?? 0)
            for entry in entries {
                guard entry.sequence == next else { throw .conflict("audit entry #\(entry.sequence) does not follow #\(next - 1)") }
                next += 1
            }
            state.audit += entries
            for anchor in entries.flatMap(\.anchors) { state.anchors[anchor.record] = anchor }
        }
    }

    public func auditHead() async throws(StorageError) -> AuditRow? { withContents { $0.audit.last } }

    public func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow] {
        withContents { state in
            let base = state.auditCheckpoint?.sequence ?? 0
            let start = Int(max(0, min(after - base, Int64(state.audit.count))))
            return Array(state.audit[start...].prefix(max(0, limit)))
        }
    }

    public func auditCheckpoint() async throws(StorageError) -> AuditCheckpointRow? { withContents { $0.auditCheckpoint } }

    public func pruneAudit(_ checkpoint: AuditCheckpointRow) async throws(StorageError) {
        try locked(fencedByLease: true) { (state: inout Contents) throws(StorageError) in
            try Self.checkPruning(checkpoint.sequence, head: state.audit.last?.sequence, current: state.auditCheckpoint?.sequence)
            let base = state.auditCheckpoint?.sequence ?? 0
            state.audit.removeFirst(Int(min(Int64(state.audit.count), checkpoint.sequence - base)))
            state.auditCheckpoint = checkpoint
        }
    }

    public func anchorSnapshot() async throws(StorageError) -> AnchorSnapshot {
        if let hook = snapshotHook.withLock({ hooks in defer { hooks.before = nil }; return hooks.before }) { await hook() }
        let snapshot = withContents { AnchorSnapshot(head: $0.audit.last, anchors: Array($0.anchors.values)) }
        if let hook = snapshotHook.withLock({ hooks in defer { hooks.after = nil }; return hooks.after }) { await hook() }
        return snapshot
    }

    // MARK: KEK rotation

    public func rewriteAll(
        newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter,
        progress: @escaping @Sendable (Int) -> Void
    ) async throws(StorageError) -> Int {
        let count = try locked { (state: inout Contents) throws(StorageError) -> Int in
            var next = state
            var count = 0
            do {
                for (id, row) in state.keys {
                    let key = try rewriter.key(row)
                    next.keys[id] = key
                    for (number, version) in state.versions[id] ?? [:] {
                        next.versions[id]![number] = try rewriter.version(version, key)
                        count += 1
                    }
                    count += 1
                }
                for (name, row) in state.aliases { next.aliases[name] = try rewriter.alias(row); count += 1 }
                for (id, row) in state.tokens { next.tokens[id] = try rewriter.token(row); count += 1 }
                next.audit = try state.audit.map { row in
                    let rewritten = try rewriter.audit(row)
                    if rewritten.mac != row.mac { count += 1 }
                    return rewritten
                }
            } catch let error as StorageError {
                throw error
            } catch {
                throw .database("rewriting under the new KEK failed: \(error)")
            }
            progress(count)
            next.keks = [newKEK.id: newKEK]
            next.header = header
            state = next
            return count
        }
        fence.withLock { $0 = newKEK.id }
        return count
    }

    // MARK: ClusterStore

    public func acquireLease(_ name: String, holder: String, duration: Duration) async throws(StorageError) -> Lease? {
        withContents { state in
            let now = Date()
            let expires = now.addingTimeInterval(duration.seconds)
            guard let current = state.leases[name] else {
                state.leases[name] = Lease(name: name, holder: holder, token: 1, expiresAt: expires)
                return state.leases[name]
            }
            if current.holder != holder, current.expiresAt > now { return nil }
            let token = current.holder == holder ? current.token : current.token + 1
            state.leases[name] = Lease(name: name, holder: holder, token: token, expiresAt: expires)
            return state.leases[name]
        }
    }

    public func lease(_ name: String) async throws(StorageError) -> Lease? { withContents { $0.leases[name] } }

    public func releaseLease(_ lease: Lease) async throws(StorageError) {
        withContents { state in
            guard let current = state.leases[lease.name], current.holder == lease.holder, current.token == lease.token else { return }
            state.leases[lease.name]?.expiresAt = .distantPast
        }
    }

    public func heartbeat(node: String, seenGeneration: Int64) async throws(StorageError) {
        withContents { $0.nodes[node] = (seenGeneration, Date()) }
    }

    public func heartbeats() async throws(StorageError) -> [NodeHeartbeat] {
        let now = Date()
        return withContents { state in
            state.nodes.map { NodeHeartbeat(node: $0.key, seenGeneration: $0.value.seenGeneration, at: $0.value.at, age: now.timeIntervalSince($0.value.at)) }
                .sorted { $0.node < $1.node }
        }
    }
}
