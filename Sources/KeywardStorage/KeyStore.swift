import Foundation
import Synchronization
import KeywardCrypto

/// Persistence for a Keyward store, without SQL in its interface, so that the SQLite backend
/// (single node) and a PostgreSQL backend (several nodes) are interchangeable.
///
/// The backend stores what it is given; integrity (MACs, revisions, AAD) is the `Keyward`
/// layer's job. What the backend guarantees:
/// - every method is atomic: a crash leaves either all of a call's writes or none;
/// - updates are compare-and-swap on `revision` (`StorageError.conflict` when stale);
/// - `(keyID, version)` is unique, so two concurrent rotations end with one new version;
/// - audit entries are appended in one order, with no gaps in `sequence`.
public protocol KeyStore: Sendable {
    // Store header and KEKs
    /// The header, or nil for an empty store.
    func header() async throws(StorageError) -> StoreHeader?
    /// Writes the header and the first KEK of a new store. Fails with `alreadyInitialized`.
    func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError)
    /// A KEK by id.
    func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord?
    /// All KEKs.
    func keks() async throws(StorageError) -> [KEKRecord]

    // Keys
    /// Inserts a new key with its first version and aliases, in one transaction.
    func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError)
    /// A key's metadata row.
    func key(_ id: KeyID) async throws(StorageError) -> KeyRow?
    /// Replaces a key's row if its stored revision is `expectedRevision`.
    func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError)
    /// A page of keys, ordered by id, after `cursor`.
    func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow]
    /// How many keys the store holds.
    func keyCount() async throws(StorageError) -> Int

    // Versions
    /// One version of a key.
    func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow?
    /// All versions of a key, oldest first.
    func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow]
    /// Adds a version and updates the key row (CAS) in one transaction.
    func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError)
    /// Replaces a version row if its stored revision is `expectedRevision`.
    func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError)

    // Aliases
    /// An alias by name.
    func alias(_ name: String) async throws(StorageError) -> AliasRow?
    /// The aliases of a key.
    func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow]
    /// Creates or re-points an alias (CAS on the existing row's revision, or insert when nil).
    func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError)
    /// Removes an alias.
    func deleteAlias(_ name: String) async throws(StorageError)

    // Tokens
    /// Stores a new token.
    func insertToken(_ token: TokenRow) async throws(StorageError)
    /// A token by id.
    func token(_ id: KeyID) async throws(StorageError) -> TokenRow?
    /// Replaces a token row if its stored revision is `expectedRevision`.
    func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError)
    /// All tokens.
    func tokens() async throws(StorageError) -> [TokenRow]

    // Audit
    /// Appends entries in one transaction; their sequences must continue the chain.
    func appendAudit(_ entries: [AuditRow]) async throws(StorageError)
    /// `appendAudit`, blocking the calling thread until the entries are written. Called only
    /// from the audit log's own writer thread, never from a Swift concurrency executor.
    func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError)
    /// The newest entry.
    func auditHead() async throws(StorageError) -> AuditRow?
    /// Entries with sequence greater than `after`, oldest first.
    func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow]
    /// The highest key revision the audit log records for `keyID` (rollback detection).
    func latestAuditedRevision(of keyID: KeyID) async throws(StorageError) -> Int64?

    // KEK rotation
    /// In one transaction: stores `newKEK` (retiring and then deleting the old ones), replaces the
    /// header, and rewrites every key, version, alias, token and audit row through `rewriter`. If
    /// anything fails (or the process dies) before the commit, nothing has changed. `progress`
    /// receives the number of rows rewritten so far. Returns that number.
    func rewriteAll(
        newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter,
        progress: @escaping @Sendable (Int) -> Void
    ) async throws(StorageError) -> Int
}

extension KeyStore {
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

/// How `rewriteAll` transforms each kind of row (re-sealing and re-MACing under a new KEK).
public struct RecordRewriter: Sendable {
    /// Rewrites a key row.
    public var key: @Sendable (KeyRow) throws -> KeyRow
    /// Receives the version and its key's row as rewritten.
    public var version: @Sendable (VersionRow, KeyRow) throws -> VersionRow
    /// Rewrites an alias row.
    public var alias: @Sendable (AliasRow) throws -> AliasRow
    /// Rewrites an audit batch's MAC'd entry.
    public var audit: @Sendable (AuditRow) throws -> AuditRow
    /// Rewrites a token row.
    public var token: @Sendable (TokenRow) throws -> TokenRow

    /// A rewriter of these closures.
    public init(key: @escaping @Sendable (KeyRow) throws -> KeyRow, version: @escaping @Sendable (VersionRow, KeyRow) throws -> VersionRow,
                alias: @escaping @Sendable (AliasRow) throws -> AliasRow, token: @escaping @Sendable (TokenRow) throws -> TokenRow,
                audit: @escaping @Sendable (AuditRow) throws -> AuditRow) {
        self.key = key
        self.version = version
        self.alias = alias
        self.audit = audit
        self.token = token
    }
}

/// Failures of the storage layer.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store file or database cannot be opened or created.
    case unavailable(String)
    /// A write lost a compare-and-swap race or broke a uniqueness rule.
    case conflict(String)
    /// The store already has a header.
    case alreadyInitialized
    /// A row does not have the shape the schema promises (edited or corrupted database).
    case corrupted(String)
    /// Any other database failure, with the database's message.
    case database(String)

    public var description: String {
        switch self {
        case .unavailable(let message): "key store unavailable: \(message)"
        case .conflict(let message): "conflicting update: \(message); retry the operation"
        case .alreadyInitialized: "the store is already initialised; use another --store path"
        case .corrupted(let message): "the key store is corrupted: \(message); run `keyward verify`"
        case .database(let message): "database error: \(message)"
        }
    }
}
