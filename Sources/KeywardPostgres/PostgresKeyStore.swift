import Foundation
import KeywardCrypto
import KeywardStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The clustered key store: every storage concern on one PostgreSQL database, shared by any
/// number of `keyward serve` nodes.
///
/// The store keeps what `KeyStore` promises with the database's own guarantees:
/// - every method is one transaction (a crash, of the node or of the database, leaves all of a
///   call's writes or none; an acknowledged commit is durable with PostgreSQL's `fsync`);
/// - compare-and-swap revisions are `UPDATE … WHERE revision = $expected`; unique versions,
///   aliases and audit sequences are primary keys, so two nodes racing end with one winner and
///   the loser's `conflict`;
/// - the audit log stays gapless across nodes: an append checks, in its transaction, that its
///   first sequence follows the stored head, and the primary key refuses a second node's batch
///   for the same sequences, which that node then re-chains (`AuditWriter`);
/// - the KEK fence: every write holds the shared advisory lock `PostgresSchema.kekLock` and
///   reads the header's active KEK in its transaction; `rewriteAll` holds it exclusively, so a
///   write either commits before a rotation (and is rewritten by it) or fails with `staleKEK`.
///
/// Rows are what the `Keyward` layer hands over: sealed, MAC'd and revisioned exactly as in the
/// SQLite store. Nothing here sees a key or a token in clear.
///
/// Every call fails with `unavailable` after `operationTimeout` when the database does not
/// answer (postgres-nio's pool waits for a connection indefinitely), so a node whose database
/// is gone answers 503 rather than hanging.
public final class PostgresKeyStore: KeyStore {
    /// Where the database is.
    public let location: PostgresLocation
    private let client: PostgresClient
    /// The task running the pool, when the store runs it itself (`connect`); nil when the
    /// caller runs it under its ServiceGroup (`PostgresPool`).
    private let runner: Task<Void, Never>?
    private let logger: Logger
    private let fence = Mutex<[UInt8]?>(nil)
    /// How long one store call may take before it fails with `unavailable`.
    public let operationTimeout: Duration
    /// The audit writer's blocking connection (`appendAuditBlocking`).
    private let auditConnection: PostgresAuditConnection

    private init(location: PostgresLocation, password: String?, client: PostgresClient, runner: Task<Void, Never>?, logger: Logger, operationTimeout: Duration) {
        self.auditConnection = PostgresAuditConnection(location: location, password: password, timeout: operationTimeout)
        self.location = location
        self.client = client
        self.runner = runner
        self.logger = logger
        self.operationTimeout = operationTimeout
    }

    /// Connects to the database at `location` and applies missing schema migrations (under the
    /// migration lock, so nodes starting together are safe).
    ///
    /// - Parameter password: from `PostgresLocation.password()`, never from the URL.
    /// - Throws: `unavailable` when the database cannot be reached within `operationTimeout`,
    ///   refuses the credentials, or holds a schema newer than this build.
    public static func connect(_ location: PostgresLocation, password: String?, operationTimeout: Duration = .seconds(5),
                               logger: Logger = Logger(label: "keyward.postgres")) async throws(StorageError) -> PostgresKeyStore {
        let configuration: PostgresClient.Configuration
        do {
            configuration = try location.clientConfiguration(password: password)
        } catch {
            throw .unavailable(error.description)
        }
        try await probe(location, password: password, timeout: operationTimeout)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresKeyStore(location: location, password: password, client: client, runner: runner, logger: logger, operationTimeout: operationTimeout)
        do {
            try await store.deadline("connecting and migrating the schema") { () async throws in try await PostgresSchema.migrate(client, logger: logger) }
        } catch {
            runner.cancel()
            throw error
        }
        return store
    }

    /// A store on `pool`, which the caller runs as a ServiceLifecycle service (`keyward serve`
    /// runs it in its ServiceGroup, started before and stopped after the server), applying
    /// missing schema migrations under the migration lock. Several stores may share one pool:
    /// each keeps its own KEK fence.
    ///
    /// - Throws: `unavailable` when the database cannot be reached within `operationTimeout`
    ///   (the pool is not running, the database is down, the credentials are refused), or holds
    ///   a schema newer than this build.
    public static func open(on pool: PostgresPool, operationTimeout: Duration = .seconds(5),
                            logger: Logger = Logger(label: "keyward.postgres")) async throws(StorageError) -> PostgresKeyStore {
        try await probe(pool.location, password: pool.password, timeout: operationTimeout)
        let store = PostgresKeyStore(location: pool.location, password: pool.password, client: pool.client, runner: nil, logger: logger, operationTimeout: operationTimeout)
        let client = pool.client
        try await store.deadline("connecting and migrating the schema") { () async throws in try await PostgresSchema.migrate(client, logger: logger) }
        return store
    }

    /// One connection with libpq, opened and closed, before the pool's first query: libpq says
    /// at once why a connection fails (refused, unknown host or database, credentials, TLS),
    /// where the pool retries until the deadline and can then say only that nothing answered.
    /// libpq blocks while it connects, so the probe runs on a dispatch thread, not on one of
    /// Swift concurrency's.
    private static func probe(_ location: PostgresLocation, password: String?, timeout: Duration) async throws(StorageError) {
        let failure: StorageError? = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: PostgresAuditConnection(location: location, password: password, timeout: timeout).connectionFailure())
            }
        }
        if let failure { throw failure }
    }

    deinit { runner?.cancel() }

    /// Closes the connection pool when the store runs it itself (it also closes when the store
    /// is released; a pool the caller runs stops with the caller's ServiceGroup), and the audit
    /// writer's connection. The store cannot be used afterwards.
    public func close() {
        runner?.cancel()
        auditConnection.close()
    }

    // MARK: Transactions

    /// Runs `body` with a deadline; maps every failure to a `StorageError`.
    ///
    /// The caller gets its answer at the deadline even when `body` does not end then: a query
    /// caught on a connection the database dropped (seen across `pg_ctl restart -m immediate`)
    /// can ignore cancellation, and a task group would wait for it forever, holding the audit
    /// writer and with it every request. `body` is cancelled and left to end on its own.
    private func deadline<T: Sendable>(_ what: String, timeout: Duration? = nil, _ body: @escaping @Sendable () async throws -> T) async throws(StorageError) -> T {
        let timeout = timeout ?? operationTimeout
        let location = self.location
        let outcome: Result<T, StorageError> = await withCheckedContinuation { continuation in
            let race = DeadlineRace(continuation)
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                race.finish(.failure(.unavailable("PostgreSQL at \(location) did not answer within \(timeout) (\(what))")))
            }
            race.work = Task {
                let result: Result<T, StorageError>
                do { result = .success(try await body()) } catch { result = .failure(Self.storageError(error, location: location)) }
                timer.cancel()
                race.finish(result)
            }
        }
        return try outcome.get()
    }

    /// Maps a failure the server reported, by its SQLSTATE: constraint and serialisation
    /// failures are `conflict`; a server shutting down, a statement cancelled (its timeout), a
    /// lost connection or refused credentials `unavailable`; anything else `database`.
    static func storageError(sqlState state: String, message: String, location: PostgresLocation) -> StorageError {
        switch state {
        case "23505", "23503", "23514", "40001", "40P01": return .conflict(message)
        case "57P01", "57P02", "57P03", "57014", "08000", "08003", "08006": return .unavailable("PostgreSQL at \(location): \(message)")
        case "28000", "28P01": return .unavailable("PostgreSQL at \(location) refused the credentials: \(message)")
        case "3D000": return .unavailable("PostgreSQL at \(location): \(message)")
        default: return .database("\(message) (SQLSTATE \(state))")
        }
    }

    /// Maps a postgres-nio failure to the storage layer's: constraint and serialisation failures
    /// are `conflict`, a failed connection `unavailable`, anything else `database`.
    static func storageError(_ error: any Error, location: PostgresLocation) -> StorageError {
        switch error {
        case let error as StorageError:
            return error
        case let error as PostgresTransactionError:
            if let inner = error.closureError ?? error.beginError { return storageError(inner, location: location) }
            if let commit = error.commitError {
                return .database("the commit's outcome is unknown (\(storageError(commit, location: location).description)); check before retrying")
            }
            return .database("transaction failed")
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                return storageError(sqlState: state, message: error.serverInfo?[.message] ?? state, location: location)
            }
            return .unavailable("PostgreSQL at \(location): \(error.code)")
        case is CancellationError:
            return .unavailable("the operation was cancelled")
        default:
            return .database("\(error)")
        }
    }

    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async throws(StorageError) -> T {
        let client = self.client, logger = self.logger
        return try await deadline(what) { try await body(client, logger) }
    }

    /// One write transaction behind the KEK fence.
    private func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws(StorageError) -> T {
        let client = self.client, logger = self.logger
        let expected = fence.withLock { $0 }
        let lease = LeaseFence.current
        return try await deadline(what) {
            try await client.withTransaction(logger: logger) { connection in
                if let expected { try await Self.checkFence(connection, expected, logger: logger) }
                if let lease { try await Self.checkLease(connection, lease, logger: logger) }
                return try await body(connection, logger)
            }
        }
    }

    /// Takes the KEK lock shared and checks the header's active KEK (`fenceWrites`).
    private static func checkFence(_ connection: PostgresConnection, _ expected: [UInt8], logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock_shared(\(PostgresSchema.kekLock))", logger: logger)
        let rows = try await connection.query("SELECT active_kek FROM store_header WHERE id = 1", logger: logger).collect()
        guard let row = rows.first else { return }
        let active = try Columns(row).bytes("active_kek")
        guard active == expected else { throw StorageError.staleKEK(describeStale(expected: expected, active: active)) }
    }

    static func describeStale(expected: [UInt8], active: [UInt8]) -> String {
        let name: ([UInt8]) -> String = { bytes in (try? KeyID(bytes: bytes))?.description ?? "?" }
        return "this node writes under KEK \(name(expected)), but another node rotated the store's KEK to \(name(active)); nothing was written"
    }

    public func isReady(within timeout: Duration) async throws(StorageError) -> Bool {
        let client = self.client, logger = self.logger
        return try await deadline("the readiness check", timeout: timeout) {
            try await !client.query("SELECT 1 FROM store_header WHERE id = 1", logger: logger).collect().isEmpty
        }
    }

    // MARK: Header and KEKs

    public func fenceWrites(activeKEK: KeyID) { fence.withLock { $0 = activeKEK.bytes } }

    public func generation() async throws(StorageError) -> Int64 {
        try await read("reading the generation") { client, logger in
            let rows = try await client.query("SELECT value FROM store_generation WHERE id = 1", logger: logger).collect()
            return try rows.first.map { try Columns($0).int("value") } ?? 0
        }
    }

    public func header() async throws(StorageError) -> StoreHeader? {
        try await read("reading the header") { client, logger in
            try await client.query("SELECT * FROM store_header WHERE id = 1", logger: logger).collect().first.map(Self.header)
        }
    }

    public func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError) {
        try await write("initialising the store") { connection, logger in
            // Two nodes initialising one empty database: the first commits, the second waits on
            // the header's primary key and then fails as already initialised.
            try await connection.query("LOCK TABLE store_header IN EXCLUSIVE MODE", logger: logger)
            if try await !connection.query("SELECT 1 FROM store_header", logger: logger).collect().isEmpty { throw StorageError.alreadyInitialized }
            try await Self.insert(kek, connection, logger)
            try await Self.save(header, connection, logger)
        }
    }

    public func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord? {
        try await read("reading a KEK") { client, logger in
            try await client.query("SELECT * FROM keks WHERE id = \(Self.blob(id.bytes))", logger: logger).collect().first.map(Self.kek)
        }
    }

    public func keks() async throws(StorageError) -> [KEKRecord] {
        try await read("reading the KEKs") { client, logger in
            try await client.query("SELECT * FROM keks ORDER BY created_at", logger: logger).collect().map(Self.kek)
        }
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError) {
        try await write("creating a key") { connection, logger in
            try await Self.insert(key, connection, logger)
            if let firstVersion { try await Self.insert(firstVersion, connection, logger) }
            for alias in aliases { try await Self.insert(alias, connection, logger) }
        }
    }

    public func key(_ id: KeyID) async throws(StorageError) -> KeyRow? {
        try await read("reading a key") { client, logger in
            guard let row = try await client.query("SELECT * FROM keys WHERE id = \(Self.blob(id.bytes))", logger: logger).collect().first else { return nil }
            return try await Self.keyRow(row, client, logger)
        }
    }

    public func restoreKeys(_ keys: [RestoredKey], intoEmptyStore: Bool) async throws(StorageError) {
        try await write("restoring keys") { connection, logger in
            try await connection.query("LOCK TABLE keys IN EXCLUSIVE MODE", logger: logger)
            if intoEmptyStore {
                let count = try await connection.query("SELECT count(*) FROM keys", logger: logger).collect().first.map { try Columns($0).int("count") } ?? 0
                guard count == 0 else { throw StorageError.conflict("the store already holds keys; a backup is restored only into an empty store") }
            }
            for item in keys {
                if try await connection.query("SELECT 1 FROM keys WHERE id = \(Self.blob(item.key.id.bytes))", logger: logger).collect().first != nil {
                    throw StorageError.conflict("the store already holds key \(item.key.id)")
                }
                for alias in item.aliases {
                    let name = alias.name
                    if try await connection.query("SELECT 1 FROM aliases WHERE name = \(name)", logger: logger).collect().first != nil {
                        throw StorageError.conflict("the alias \(alias.name) already names a key in this store")
                    }
                }
                try await Self.insert(item.key, connection, logger)
                for version in item.versions { try await Self.insert(version, connection, logger) }
                for alias in item.aliases { try await Self.insert(alias, connection, logger) }
            }
        }
    }

    public func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try await write("updating a key") { connection, logger in try await Self.update(key, expectedRevision: expectedRevision, connection, logger) }
    }

    public func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow] {
        try await read("listing keys") { client, logger in
            var bindings = PostgresBindings()
            var sql = "SELECT k.* FROM keys k"
            func parameter(_ value: some PostgresDynamicTypeEncodable) -> String {
                bindings.append(value)
                return "$\(bindings.count)"
            }
            if let tag = filter.tag {
                sql += " JOIN key_tags t ON t.key_id = k.id AND t.tag_key = \(parameter(tag.key)) AND t.tag_value = \(parameter(tag.value))"
            }
            if let alias = filter.alias { sql += " JOIN aliases a ON a.key_id = k.id AND a.name = \(parameter(alias))" }
            var conditions: [String] = []
            if let state = filter.state { conditions.append("k.state = \(parameter(state))") }
            if let cursor { conditions.append("k.id > \(parameter(ByteBuffer(bytes: cursor.bytes)))") }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY k.id LIMIT \(parameter(limit))"
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
            var keys: [KeyRow] = []
            for row in rows { keys.append(try await Self.keyRow(row, client, logger)) }
            return keys
        }
    }

    public func keyCount() async throws(StorageError) -> Int {
        try await read("counting keys") { client, logger in
            Int(try await client.query("SELECT count(*) FROM keys", logger: logger).collect().first.map { try Columns($0).int("count") } ?? 0)
        }
    }

    // MARK: Versions

    public func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow? {
        try await read("reading a key version") { client, logger in
            try await client.query("SELECT * FROM key_versions WHERE key_id = \(Self.blob(keyID.bytes)) AND version = \(Int64(version))", logger: logger)
                .collect().first.map(Self.versionRow)
        }
    }

    public func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow] {
        try await read("reading key versions") { client, logger in
            try await client.query("SELECT * FROM key_versions WHERE key_id = \(Self.blob(keyID.bytes)) ORDER BY version", logger: logger).collect().map(Self.versionRow)
        }
    }

    public func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try await write("rotating a key") { connection, logger in
            try await Self.update(key, expectedRevision: expectedRevision, connection, logger)
            try await Self.insert(version, connection, logger)
        }
    }

    public func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError) {
        try await write("updating a key version") { connection, logger in
            let rows = try await connection.query("""
                UPDATE key_versions SET kek_id = \(Self.blob(version.kekID.bytes)), sealed = \(Self.blob(version.sealed)), body = \(Self.blob(version.body)),
                  revision = \(version.revision), mac = \(Self.blob(version.mac))
                WHERE key_id = \(Self.blob(version.keyID.bytes)) AND version = \(Int64(version.version)) AND revision = \(expectedRevision)
                RETURNING 1
                """, logger: logger).collect()
            if rows.count != 1 { throw StorageError.conflict("version \(version.version) of key \(version.keyID) changed meanwhile") }
        }
    }

    // MARK: Aliases

    public func alias(_ name: String) async throws(StorageError) -> AliasRow? {
        try await read("reading an alias") { client, logger in
            try await client.query("SELECT * FROM aliases WHERE name = \(name)", logger: logger).collect().first.map(Self.aliasRow)
        }
    }

    public func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow] {
        try await read("reading aliases") { client, logger in
            try await client.query("SELECT * FROM aliases WHERE key_id = \(Self.blob(keyID.bytes)) ORDER BY name", logger: logger).collect().map(Self.aliasRow)
        }
    }

    public func aliases(after cursor: String?, limit: Int) async throws(StorageError) -> [AliasRow] {
        let after = cursor ?? ""
        return try await read("listing aliases") { client, logger in
            try await client.query("SELECT * FROM aliases WHERE name > \(after) COLLATE \"C\" ORDER BY name COLLATE \"C\" LIMIT \(limit)", logger: logger).collect().map(Self.aliasRow)
        }
    }

    public func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError) {
        try await write("writing an alias") { connection, logger in
            if let expectedRevision {
                let rows = try await connection.query("""
                    UPDATE aliases SET key_id = \(Self.blob(alias.keyID.bytes)), revision = \(alias.revision), mac = \(Self.blob(alias.mac))
                    WHERE name = \(alias.name) AND revision = \(expectedRevision) RETURNING 1
                    """, logger: logger).collect()
                if rows.count != 1 { throw StorageError.conflict("alias \(alias.name) changed meanwhile") }
            } else {
                try await Self.insert(alias, connection, logger)
            }
        }
    }

    public func deleteAlias(_ name: String, expectedRevision: Int64) async throws(StorageError) {
        try await write("deleting an alias") { connection, logger in
            let rows = try await connection.query("DELETE FROM aliases WHERE name = \(name) AND revision = \(expectedRevision) RETURNING 1", logger: logger).collect()
            if rows.count != 1 { throw StorageError.conflict("alias \(name) changed meanwhile") }
        }
    }

    // MARK: Tokens

    public func insertToken(_ token: TokenRow) async throws(StorageError) {
        try await write("creating a token") { connection, logger in
            try await connection.query("""
                INSERT INTO tokens (id, hash, body, revision, mac)
                VALUES (\(Self.blob(token.id.bytes)), \(Self.blob(token.hash)), \(Self.blob(token.body)), \(token.revision), \(Self.blob(token.mac)))
                """, logger: logger)
        }
    }

    public func token(_ id: KeyID) async throws(StorageError) -> TokenRow? {
        try await read("reading a token") { client, logger in
            try await client.query("SELECT * FROM tokens WHERE id = \(Self.blob(id.bytes))", logger: logger).collect().first.map(Self.tokenRow)
        }
    }

    public func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError) {
        try await write("updating a token") { connection, logger in
            let rows = try await connection.query("""
                UPDATE tokens SET hash = \(Self.blob(token.hash)), body = \(Self.blob(token.body)), revision = \(token.revision), mac = \(Self.blob(token.mac))
                WHERE id = \(Self.blob(token.id.bytes)) AND revision = \(expectedRevision) RETURNING 1
                """, logger: logger).collect()
            if rows.count != 1 { throw StorageError.conflict("token \(token.id) changed meanwhile") }
        }
    }

    public func tokens(after cursor: KeyID?, limit: Int) async throws(StorageError) -> [TokenRow] {
        try await read("listing tokens") { client, logger in
            let after = cursor?.bytes ?? []
            return try await client.query("SELECT * FROM tokens WHERE id > \(Self.blob(after)) ORDER BY id LIMIT \(limit)", logger: logger).collect().map(Self.tokenRow)
        }
    }

    // MARK: Audit

    /// Appends `entries` in one statement (so one round trip and one commit): a guard row exists
    /// only when the header's active KEK is the fenced one and the stored head is the entry before
    /// the first; the batch is inserted, and the revision index upserted, only with it. A node
    /// racing another for the same sequences gets `conflict` from the primary key; a node whose
    /// KEK was rotated away gets `staleKEK`. The KEK rotation locks the audit table before it
    /// rewrites, and a statement takes its snapshot after its table locks, so an append either
    /// commits before a rotation (which re-MACs it) or sees the rotated header and writes nothing.
    public func appendAudit(_ entries: [AuditRow]) async throws(StorageError) {
        guard !entries.isEmpty else { return }
        let statement = AuditAppendStatement(entries: entries, fence: fence.withLock { $0 })
        let client = self.client, logger = self.logger
        let outcome = try await deadline("appending audit entries") { () async throws -> AuditAppendStatement.Row in
            try await Self.run(statement, on: client, logger: logger)
        }
        try Self.check(outcome, of: statement)
    }

    /// `appendAudit` for the audit writer's own thread: the statement goes over the writer's
    /// own libpq connection, the thread waiting on its socket (decision 0035), with the same
    /// statement, outcome and refusals as `appendAudit`.
    public func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError) {
        guard !entries.isEmpty else { return }
        let statement = AuditAppendStatement(entries: entries, fence: fence.withLock { $0 })
        try Self.check(try auditConnection.append(statement), of: statement)
    }

    /// Runs the audit append and returns its one row.
    private static func run(_ statement: AuditAppendStatement, on client: PostgresClient, logger: Logger) async throws -> AuditAppendStatement.Row {
        for try await row in try await client.execute(statement, logger: logger) { return row }
        throw StorageError.database("the audit append returned no row")
    }

    /// Whether the append took every entry; if not, why not: the KEK was rotated away
    /// (`staleKEK`), or another writer's entries are in the way (`conflict`).
    private static func check(_ outcome: AuditAppendStatement.Row, of statement: AuditAppendStatement) throws(StorageError) {
        let entries = statement.entries
        guard let first = entries.first else { return }
        guard outcome.inserted == Int64(entries.count) else {
            if let expected = statement.fence, let active = outcome.active, active != expected {
                throw .staleKEK(Self.describeStale(expected: expected, active: active))
            }
            throw .conflict("audit sequence \(first.sequence) does not follow \(outcome.head)")
        }
    }

    public func auditHead() async throws(StorageError) -> AuditRow? {
        try await read("reading the audit head") { client, logger in
            try await client.query("SELECT * FROM audit ORDER BY sequence DESC LIMIT 1", logger: logger).collect().first.map(Self.auditRow)
        }
    }

    public func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow] {
        try await read("reading audit entries") { client, logger in
            try await client.query("SELECT * FROM audit WHERE sequence > \(after) ORDER BY sequence LIMIT \(limit)", logger: logger).collect().map(Self.auditRow)
        }
    }

    public func anchorSnapshot() async throws(StorageError) -> AnchorSnapshot {
        let client = self.client, logger = self.logger
        return try await deadline("reading the audit head and revision index") {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
                let head = try await connection.query("SELECT * FROM audit ORDER BY sequence DESC LIMIT 1", logger: logger).collect().first.map(Self.auditRow)
                let anchors = try await connection.query("SELECT record, revision, deleted FROM anchored_revisions", logger: logger).collect().map { row in
                    let columns = try Columns(row)
                    return RevisionAnchorRow(record: try columns.bytes("record"), revision: try columns.int("revision"), deleted: try columns.bool("deleted"))
                }
                return AnchorSnapshot(head: head, anchors: anchors)
            }
        }
    }

    public func auditCheckpoint() async throws(StorageError) -> AuditCheckpointRow? {
        try await read("reading the audit checkpoint") { client, logger in
            try await client.query("SELECT sequence, body, signature FROM audit_checkpoint WHERE id = 1", logger: logger).collect().first.map { row in
                let columns = try Columns(row)
                return AuditCheckpointRow(sequence: try columns.int("sequence"), body: try columns.bytes("body"), signature: try columns.bytes("signature"))
            }
        }
    }

    public func pruneAudit(_ checkpoint: AuditCheckpointRow) async throws(StorageError) {
        try await write("pruning the audit log") { connection, logger in
            // The checkpoint row is locked first, so two prunings cannot both read the old one.
            let current = try await connection.query("SELECT sequence FROM audit_checkpoint WHERE id = 1 FOR UPDATE", logger: logger)
                .collect().first.map { try Columns($0).int("sequence") }
            let head = try await connection.query("SELECT max(sequence) AS head FROM audit", logger: logger)
                .collect().first.flatMap { try? Columns($0).int("head") }
            try Self.checkPruning(checkpoint.sequence, head: head, current: current)
            try await connection.query("""
                INSERT INTO audit_checkpoint (id, sequence, body, signature)
                VALUES (1, \(checkpoint.sequence), \(Self.blob(checkpoint.body)), \(Self.blob(checkpoint.signature)))
                ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, body = excluded.body, signature = excluded.signature
                """, logger: logger)
            try await connection.query("DELETE FROM audit WHERE sequence <= \(checkpoint.sequence)", logger: logger)
        }
    }

    // MARK: Audit intake (decision 0034)

    public var keepsAuditIntake: Bool { true }

    /// One statement (one round trip, one commit), inserted only while the header's active KEK
    /// is the fenced one; no guard on the chain's head, so nodes' inserts never wait for each other.
    public func appendAuditIntake(_ rows: [AuditIntakeRow]) async throws(StorageError) {
        guard !rows.isEmpty else { return }
        let statement = AuditIntakeStatement(rows: rows, fence: fence.withLock { $0 })
        let client = self.client, logger = self.logger
        let outcome = try await deadline("appending audit entries to the intake") { () async throws -> AuditIntakeStatement.Row in
            for try await row in try await client.execute(statement, logger: logger) { return row }
            throw StorageError.database("the audit intake insert returned no row")
        }
        guard outcome.inserted == Int64(rows.count) else {
            if let expected = statement.fence, let active = outcome.active, active != expected {
                throw .staleKEK(Self.describeStale(expected: expected, active: active))
            }
            throw .database("the audit intake took \(outcome.inserted) of \(rows.count) entries")
        }
    }

    public func auditIntake(limit: Int) async throws(StorageError) -> [AuditIntakeRow] {
        try await read("reading the audit intake") { client, logger in
            try await client.query("SELECT * FROM audit_intake ORDER BY id LIMIT \(limit)", logger: logger).collect().map(Self.intakeRow)
        }
    }

    public func chainedEntries(_ entries: [String]) async throws(StorageError) -> [String: Int64] {
        guard !entries.isEmpty else { return [:] }
        return try await read("looking up audit entry ids") { client, logger in
            var found: [String: Int64] = [:]
            for row in try await client.query("SELECT entry, sequence FROM audit WHERE entry = ANY(\(entries))", logger: logger).collect() {
                let columns = try Columns(row)
                found[try columns.text("entry")] = try columns.int("sequence")
            }
            return found
        }
    }

    public func sequenceAuditIntake(_ entries: [AuditRow], consumed: [Int64], lease: Lease) async throws(StorageError) {
        let statement = AuditAppendStatement(entries: entries, fence: fence.withLock { $0 })
        try await write("sequencing the audit intake") { connection, logger in
            try await Self.checkLease(connection, lease, logger: logger)
            let removed = try await connection.query("DELETE FROM audit_intake WHERE id = ANY(\(consumed)) RETURNING 1", logger: logger).collect().count
            guard removed == consumed.count else { throw StorageError.conflict("\(consumed.count - removed) intake rows were already taken") }
            guard !entries.isEmpty else { return }
            var outcome: AuditAppendStatement.Row? = nil
            for try await row in try await connection.execute(statement, logger: logger) { outcome = row }
            guard let outcome, outcome.inserted == Int64(entries.count) else {
                throw StorageError.conflict("audit sequence \(entries[0].sequence) does not follow \(outcome?.head ?? -1)")
            }
        }
    }

    // MARK: KEK rotation

    public func rewriteAll(newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter,
                           progress: @escaping @Sendable (Int) -> Void) async throws(StorageError) -> Int {
        let client = self.client, logger = self.logger
        let expected = fence.withLock { $0 }
        let count: Int
        do {
            // No deadline: rewriting a large store takes as long as it takes, in one transaction.
            count = try await client.withTransaction(logger: logger) { connection in
                // Every other write holds this lock shared: none is under way while the rows are
                // rewritten, and each that follows sees the new header and fails its fence.
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.kekLock))", logger: logger)
                // Audit appends are single statements outside the advisory lock: the table lock
                // holds them until this commits, and they then see the new header.
                try await connection.query("LOCK TABLE audit IN EXCLUSIVE MODE", logger: logger)
                try await connection.query("LOCK TABLE audit_intake IN EXCLUSIVE MODE", logger: logger)
                if let expected {
                    let active = try await connection.query("SELECT active_kek FROM store_header WHERE id = 1", logger: logger).collect().first.map { try Columns($0).bytes("active_kek") }
                    if let active, active != expected { throw StorageError.staleKEK(Self.describeStale(expected: expected, active: active)) }
                }
                try await connection.query("UPDATE keks SET state = 'retired' WHERE state = 'active'", logger: logger)
                try await Self.insert(newKEK, connection, logger)
                var count = 0
                func tick() {
                    count += 1
                    if count % 1000 == 0 { progress(count) }
                }
                var cursor: [UInt8] = []
                while true {
                    let rows = try await connection.query("SELECT * FROM keys WHERE id > \(Self.blob(cursor)) ORDER BY id LIMIT 500", logger: logger).collect()
                    guard let last = rows.last else { break }
                    for row in rows {
                        let key = try rewriter.key(try await Self.keyRow(row, connection, logger))
                        try await connection.query("UPDATE keys SET body = \(Self.blob(key.body)), revision = \(key.revision), mac = \(Self.blob(key.mac)) WHERE id = \(Self.blob(key.id.bytes))", logger: logger)
                        tick()
                        for versionRow in try await connection.query("SELECT * FROM key_versions WHERE key_id = \(Self.blob(key.id.bytes))", logger: logger).collect() {
                            let version = try rewriter.version(try Self.versionRow(versionRow), key)
                            try await connection.query("""
                                UPDATE key_versions SET kek_id = \(Self.blob(version.kekID.bytes)), sealed = \(Self.blob(version.sealed)), body = \(Self.blob(version.body)),
                                  revision = \(version.revision), mac = \(Self.blob(version.mac))
                                WHERE key_id = \(Self.blob(version.keyID.bytes)) AND version = \(Int64(version.version))
                                """, logger: logger)
                            tick()
                        }
                        for aliasRow in try await connection.query("SELECT * FROM aliases WHERE key_id = \(Self.blob(key.id.bytes))", logger: logger).collect() {
                            let alias = try rewriter.alias(try Self.aliasRow(aliasRow))
                            try await connection.query("UPDATE aliases SET key_id = \(Self.blob(alias.keyID.bytes)), revision = \(alias.revision), mac = \(Self.blob(alias.mac)) WHERE name = \(alias.name)", logger: logger)
                            tick()
                        }
                    }
                    cursor = try Columns(last).bytes("id")
                }
                for tokenRow in try await connection.query("SELECT * FROM tokens", logger: logger).collect() {
                    let token = try rewriter.token(try Self.tokenRow(tokenRow))
                    try await connection.query("UPDATE tokens SET mac = \(Self.blob(token.mac)) WHERE id = \(Self.blob(token.id.bytes))", logger: logger)
                    tick()
                }
                var sequence: Int64 = 0
                while true {
                    let rows = try await connection.query("SELECT * FROM audit WHERE sequence > \(sequence) ORDER BY sequence LIMIT 1000", logger: logger).collect()
                    guard !rows.isEmpty else { break }
                    for row in rows {
                        let original = try Self.auditRow(row)
                        let entry = try rewriter.audit(original)
                        if entry.mac != original.mac {
                            try await connection.query("UPDATE audit SET mac = \(Self.blob(entry.mac)) WHERE sequence = \(entry.sequence)", logger: logger)
                            tick()
                        }
                        sequence = original.sequence
                    }
                }
                // Entries waiting for the sequencer are re-MAC'd under the new KEK's audit key.
                for row in try await connection.query("SELECT * FROM audit_intake ORDER BY id", logger: logger).collect() {
                    let intake = try rewriter.intake(try Self.intakeRow(row))
                    try await connection.query("UPDATE audit_intake SET mac = \(Self.blob(intake.mac)) WHERE id = \(intake.id)", logger: logger)
                    tick()
                }
                try await Self.save(header, connection, logger)
                try await connection.query("DELETE FROM keks WHERE state = 'retired'", logger: logger)
                progress(count)
                return count
            }
        } catch {
            throw Self.storageError(error, location: location)
        }
        fence.withLock { $0 = newKEK.id.bytes }
        return count
    }

    // MARK: Cluster

    /// The database's clock, in seconds since 1970: every node reads the same one.
    private static let now = "extract(epoch from clock_timestamp())::double precision"

    public func acquireLease(_ name: String, holder: String, duration: Duration) async throws(StorageError) -> Lease? {
        let client = self.client, logger = self.logger
        let seconds = duration.seconds
        // One statement: insert, or take over a lapsed lease (a new token), or renew one's own.
        return try await deadline("taking the \(name) lease") {
            let rows = try await client.query(PostgresQuery(unsafeSQL: """
                INSERT INTO leases AS l (name, holder, token, expires_at) VALUES ($1, $2, 1, \(Self.now) + $3)
                ON CONFLICT (name) DO UPDATE SET
                    token = CASE WHEN l.holder = excluded.holder THEN l.token ELSE l.token + 1 END,
                    holder = excluded.holder, expires_at = excluded.expires_at
                WHERE l.holder = excluded.holder OR l.expires_at <= \(Self.now)
                RETURNING holder, token, expires_at
                """, binds: Self.bindings(name, holder, seconds)), logger: logger).collect()
            return try rows.first.map { try Self.lease(name, $0) }
        }
    }

    public func lease(_ name: String) async throws(StorageError) -> Lease? {
        try await read("reading the \(name) lease") { client, logger in
            try await client.query("SELECT holder, token, expires_at FROM leases WHERE name = \(name)", logger: logger).collect().first.map { try Self.lease(name, $0) }
        }
    }

    public func releaseLease(_ lease: Lease) async throws(StorageError) {
        try await read("releasing the \(lease.name) lease") { client, logger in
            try await client.query("UPDATE leases SET expires_at = 0 WHERE name = \(lease.name) AND holder = \(lease.holder) AND token = \(lease.token)", logger: logger)
        }
    }

    public func heartbeat(node: String, seenGeneration: Int64) async throws(StorageError) {
        let client = self.client, logger = self.logger
        _ = try await deadline("recording this node's heartbeat") {
            try await client.query(PostgresQuery(unsafeSQL: """
                INSERT INTO nodes (id, seen_generation, heartbeat_at) VALUES ($1, $2, \(Self.now))
                ON CONFLICT (id) DO UPDATE SET seen_generation = excluded.seen_generation, heartbeat_at = excluded.heartbeat_at
                """, binds: Self.bindings(node, seenGeneration)), logger: logger)
            try await client.query(PostgresQuery(unsafeSQL: "DELETE FROM nodes WHERE heartbeat_at < \(Self.now) - 86400"), logger: logger)
        }
    }

    public func heartbeats() async throws(StorageError) -> [NodeHeartbeat] {
        try await read("reading the nodes' heartbeats") { client, logger in
            try await client.query(PostgresQuery(unsafeSQL: "SELECT id, seen_generation, heartbeat_at, \(Self.now) - heartbeat_at AS age FROM nodes ORDER BY id"),
                                   logger: logger).collect().map { row in
                let c = try Columns(row)
                return NodeHeartbeat(node: try c.text("id"), seenGeneration: try c.int("seen_generation"), at: try c.date("heartbeat_at"),
                                     age: try c.double("age"))
            }
        }
    }

    /// Throws `leaseLost` unless `lease` is still held, unlapsed by the database's clock, with
    /// its token (`LeaseFence`). Runs inside the write's transaction, so a takeover that
    /// commits first makes the write fail, and one that commits after it found it done.
    private static func checkLease(_ connection: PostgresConnection, _ lease: Lease, logger: Logger) async throws {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > \(now) FOR SHARE
            """, binds: bindings(lease.name, lease.holder, lease.token)), logger: logger).collect()
        if rows.isEmpty { throw StorageError.leaseLost("lease \(lease.name) with token \(lease.token) has lapsed or passed to another node") }
    }

    private static func lease(_ name: String, _ row: PostgresRow) throws -> Lease {
        let c = try Columns(row)
        return Lease(name: name, holder: try c.text("holder"), token: try c.int("token"), expiresAt: try c.date("expires_at"))
    }

    private static func bindings(_ values: any PostgresDynamicTypeEncodable...) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }

    // MARK: Rows

    static func blob(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    private static func header(_ row: PostgresRow) throws -> StoreHeader {
        let c = try Columns(row)
        return StoreHeader(storeID: try c.id("store_id"), formatVersion: Int(try c.int("format_version")), rootOfTrust: try c.text("root_kind"),
                           rootParameters: try c.bytes("root_parameters"), activeKEK: try c.id("active_kek"), createdAt: try c.date("created_at"), mac: try c.bytes("mac"))
    }

    private static func save(_ header: StoreHeader, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO store_header (id, store_id, format_version, root_kind, root_parameters, active_kek, created_at, mac)
            VALUES (1, \(blob(header.storeID.bytes)), \(Int64(header.formatVersion)), \(header.rootOfTrust), \(blob(header.rootParameters)),
                    \(blob(header.activeKEK.bytes)), \(header.createdAt.timeIntervalSince1970), \(blob(header.mac)))
            ON CONFLICT (id) DO UPDATE SET store_id = excluded.store_id, format_version = excluded.format_version,
              root_kind = excluded.root_kind, root_parameters = excluded.root_parameters, active_kek = excluded.active_kek,
              created_at = excluded.created_at, mac = excluded.mac
            """, logger: logger)
    }

    private static func kek(_ row: PostgresRow) throws -> KEKRecord {
        let c = try Columns(row)
        return KEKRecord(id: try c.id("id"), wrapped: try c.bytes("wrapped"), createdAt: try c.date("created_at"), state: try c.text("state"))
    }

    private static func insert(_ kek: KEKRecord, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("INSERT INTO keks (id, wrapped, created_at, state) VALUES (\(blob(kek.id.bytes)), \(blob(kek.wrapped)), \(kek.createdAt.timeIntervalSince1970), \(kek.state))",
                                   logger: logger)
    }

    /// A key row with its tags, read by `query` (the pool's or a transaction's connection).
    private static func keyRow(_ row: PostgresRow, _ query: (PostgresQuery) async throws -> PostgresRowSequence) async throws -> KeyRow {
        let c = try Columns(row)
        let id = try c.id("id")
        let tags = try await query("SELECT tag_key, tag_value FROM key_tags WHERE key_id = \(blob(id.bytes))").collect()
        return try keyRow(c, id: id, tags: tags)
    }

    private static func keyRow(_ row: PostgresRow, _ client: PostgresClient, _ logger: Logger) async throws -> KeyRow {
        try await keyRow(row) { try await client.query($0, logger: logger) }
    }

    private static func keyRow(_ row: PostgresRow, _ connection: PostgresConnection, _ logger: Logger) async throws -> KeyRow {
        try await keyRow(row) { try await connection.query($0, logger: logger) }
    }

    private static func keyRow(_ c: Columns, id: KeyID, tags tagRows: [PostgresRow]) throws -> KeyRow {
        var tags: [String: String] = [:]
        for tag in tagRows {
            let t = try Columns(tag)
            tags[try t.text("tag_key")] = try t.text("tag_value")
        }
        return KeyRow(id: id, body: try c.bytes("body"), revision: try c.int("revision"), mac: try c.bytes("mac"),
                      spec: try c.text("spec"), state: try c.text("state"), createdAt: try c.date("created_at"), tags: tags)
    }

    private static func insert(_ key: KeyRow, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO keys (id, body, revision, mac, spec, state, created_at)
            VALUES (\(blob(key.id.bytes)), \(blob(key.body)), \(key.revision), \(blob(key.mac)), \(key.spec), \(key.state), \(key.createdAt.timeIntervalSince1970))
            """, logger: logger)
        try await saveTags(key, connection, logger)
    }

    private static func saveTags(_ key: KeyRow, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("DELETE FROM key_tags WHERE key_id = \(blob(key.id.bytes))", logger: logger)
        for (name, value) in key.tags {
            try await connection.query("INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (\(blob(key.id.bytes)), \(name), \(value))", logger: logger)
        }
    }

    private static func update(_ key: KeyRow, expectedRevision: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let rows = try await connection.query("""
            UPDATE keys SET body = \(blob(key.body)), revision = \(key.revision), mac = \(blob(key.mac)), spec = \(key.spec), state = \(key.state)
            WHERE id = \(blob(key.id.bytes)) AND revision = \(expectedRevision) RETURNING 1
            """, logger: logger).collect()
        if rows.count != 1 { throw StorageError.conflict("key \(key.id) changed meanwhile (expected revision \(expectedRevision))") }
        try await saveTags(key, connection, logger)
    }

    private static func versionRow(_ row: PostgresRow) throws -> VersionRow {
        let c = try Columns(row)
        let number = try c.int("version")
        guard let version = UInt32(exactly: number) else { throw StorageError.corrupted("version \(number) is out of range") }
        return VersionRow(keyID: try c.id("key_id"), version: version, kekID: try c.id("kek_id"), sealed: try c.bytes("sealed"),
                          body: try c.bytes("body"), revision: try c.int("revision"), mac: try c.bytes("mac"))
    }

    private static func insert(_ version: VersionRow, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO key_versions (key_id, version, kek_id, sealed, body, revision, mac)
            VALUES (\(blob(version.keyID.bytes)), \(Int64(version.version)), \(blob(version.kekID.bytes)), \(blob(version.sealed)),
                    \(blob(version.body)), \(version.revision), \(blob(version.mac)))
            """, logger: logger)
    }

    private static func aliasRow(_ row: PostgresRow) throws -> AliasRow {
        let c = try Columns(row)
        return AliasRow(name: try c.text("name"), keyID: try c.id("key_id"), revision: try c.int("revision"), mac: try c.bytes("mac"))
    }

    private static func insert(_ alias: AliasRow, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("INSERT INTO aliases (name, key_id, revision, mac) VALUES (\(alias.name), \(blob(alias.keyID.bytes)), \(alias.revision), \(blob(alias.mac)))",
                                   logger: logger)
    }

    private static func tokenRow(_ row: PostgresRow) throws -> TokenRow {
        let c = try Columns(row)
        return TokenRow(id: try c.id("id"), hash: try c.bytes("hash"), body: try c.bytes("body"), revision: try c.int("revision"), mac: try c.bytes("mac"))
    }

    private static func intakeRow(_ row: PostgresRow) throws -> AuditIntakeRow {
        let c = try Columns(row)
        return AuditIntakeRow(id: try c.int("id"), node: try c.text("node"), body: try c.bytes("body"), keyID: try c.optionalID("key_id"),
                              time: try c.date("time"), mac: try c.bytes("mac"))
    }

    private static func auditRow(_ row: PostgresRow) throws -> AuditRow {
        let c = try Columns(row)
        return AuditRow(sequence: try c.int("sequence"), body: try c.bytes("body"), previousHash: try c.bytes("previous_hash"),
                        hash: try c.bytes("hash"), mac: try c.bytes("mac"), keyID: try c.optionalID("key_id"), time: try c.date("time"),
                        entry: try c.optionalText("entry"))
    }
}

/// A row's columns by name, each read as the type the schema promises; anything else (a column
/// missing or retyped by hand) is `StorageError.corrupted`, never a crash.
struct Columns {
    private let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) throws { self.row = row.makeRandomAccess() }

    private func cell(_ name: String) throws -> PostgresCell {
        guard row.contains(name) else { throw StorageError.corrupted("the column \(name) is missing") }
        return row[name]
    }

    private func decode<T: PostgresDecodable>(_ name: String, _ type: T.Type, _ what: String) throws -> T {
        do {
            return try cell(name).decode(T.self)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.corrupted("the column \(name) is not \(what)")
        }
    }

    func bytes(_ name: String) throws -> [UInt8] {
        var buffer = try decode(name, ByteBuffer.self, "bytes")
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    func id(_ name: String) throws -> KeyID {
        do { return try KeyID(bytes: try bytes(name)) } catch { throw StorageError.corrupted("the column \(name) is not a 16-byte id") }
    }

    func optionalBytes(_ name: String) throws -> [UInt8]? {
        guard let buffer = try decode(name, Optional<ByteBuffer>.self, "bytes or null") else { return nil }
        return Array(buffer.readableBytesView)
    }

    func optionalID(_ name: String) throws -> KeyID? {
        guard let buffer = try decode(name, Optional<ByteBuffer>.self, "bytes or null") else { return nil }
        do { return try KeyID(bytes: Array(buffer.readableBytesView)) } catch { throw StorageError.corrupted("the column \(name) is not a 16-byte id") }
    }

    func optionalText(_ name: String) throws -> String? { try decode(name, Optional<String>.self, "text or null") }
    func int(_ name: String) throws -> Int64 { try decode(name, Int64.self, "an integer") }
    func text(_ name: String) throws -> String { try decode(name, String.self, "text") }
    func bool(_ name: String) throws -> Bool { try decode(name, Bool.self, "a boolean") }
    func double(_ name: String) throws -> Double { try decode(name, Double.self, "a number") }
    func date(_ name: String) throws -> Date { Date(timeIntervalSince1970: try decode(name, Double.self, "a time")) }
}

/// The first of a store call's outcome and its deadline, delivered once; the loser is dropped
/// (and the work cancelled when the deadline wins).
private final class DeadlineRace<T: Sendable>: Sendable {
    private let state: Mutex<CheckedContinuation<Result<T, StorageError>, Never>?>
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ continuation: CheckedContinuation<Result<T, StorageError>, Never>) {
        state = Mutex(continuation)
    }

    /// The work's task, cancelled if the deadline wins.
    var work: Task<Void, Never>? {
        get { task.withLock { $0 } }
        set { task.withLock { $0 = newValue } }
    }

    func finish(_ result: Result<T, StorageError>) {
        guard let continuation = state.withLock({ state -> CheckedContinuation<Result<T, StorageError>, Never>? in
            defer { state = nil }
            return state
        }) else { return }
        continuation.resume(returning: result)
        if case .failure(.unavailable) = result { work?.cancel() }
    }
}

/// The audit append as one prepared statement (parsed and planned once per connection): a guard
/// row exists only when the header's active KEK is the fenced one (when fenced) and the stored
/// head is the entry before the first; the batch is inserted from arrays, and the revision
/// index upserted, only with it. It returns how many entries went in, the active KEK and the
/// head it saw, so a refusal can say why.
struct AuditAppendStatement: PostgresPreparedStatement {
    static let sql = """
        WITH guard AS (
          SELECT 1 WHERE ($1::bytea IS NULL OR EXISTS (SELECT 1 FROM store_header WHERE id = 1 AND active_kek = $1::bytea))
            AND coalesce((SELECT max(sequence) FROM audit), (SELECT sequence FROM audit_checkpoint), 0) = $2::bigint),
        inserted AS (
          INSERT INTO audit (sequence, body, previous_hash, hash, mac, key_id, time, entry)
          SELECT v.s, v.b, v.p, v.h, v.m, NULLIF(v.k, ''::bytea), v.t, NULLIF(v.e, '')
          FROM unnest($3::bigint[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[], $9::float8[], $13::text[])
            AS v(s, b, p, h, m, k, t, e)
          WHERE EXISTS (SELECT 1 FROM guard)
          RETURNING 1),
        anchored AS (
          INSERT INTO anchored_revisions (record, revision, deleted)
          SELECT a.r, a.v, a.d FROM unnest($10::bytea[], $11::bigint[], $12::boolean[]) AS a(r, v, d)
          WHERE EXISTS (SELECT 1 FROM inserted)
          ON CONFLICT (record) DO UPDATE SET revision = excluded.revision, deleted = excluded.deleted)
        SELECT (SELECT count(*) FROM inserted) AS inserted,
               (SELECT active_kek FROM store_header WHERE id = 1) AS active,
               coalesce((SELECT max(sequence) FROM audit), (SELECT sequence FROM audit_checkpoint), 0) AS head
        """

    typealias Row = (inserted: Int64, active: [UInt8]?, head: Int64)

    let entries: [AuditRow]
    let fence: [UInt8]?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        bindings.append(fence.map { ByteBuffer(bytes: $0) })
        bindings.append((entries.first?.sequence ?? 1) - 1)
        bindings.append(entries.map(\.sequence))
        bindings.append(entries.map { ByteBuffer(bytes: $0.body) })
        bindings.append(entries.map { ByteBuffer(bytes: $0.previousHash) })
        bindings.append(entries.map { ByteBuffer(bytes: $0.hash) })
        bindings.append(entries.map { ByteBuffer(bytes: $0.mac) })
        // An empty id stands for none (a key id is 16 bytes); NULLIF turns it back into NULL.
        bindings.append(entries.map { ByteBuffer(bytes: $0.keyID?.bytes ?? []) })
        bindings.append(entries.map(\.time.timeIntervalSince1970))
        let anchors = newestAnchors()
        bindings.append(anchors.map { ByteBuffer(bytes: $0.record) })
        bindings.append(anchors.map(\.revision))
        bindings.append(anchors.map(\.deleted))
        // An empty id stands for none (an id is a UUID); NULLIF turns it back into NULL.
        bindings.append(entries.map { $0.entry ?? "" })
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let columns = try Columns(row)
        return (try columns.int("inserted"), try columns.optionalBytes("active"), try columns.int("head"))
    }

    /// The revision index's rows the batch changes: the last word per record (entries are in order).
    func newestAnchors() -> [RevisionAnchorRow] {
        var newest: [[UInt8]: RevisionAnchorRow] = [:]
        var order: [[UInt8]] = []
        for entry in entries {
            for anchor in entry.anchors {
                if newest[anchor.record] == nil { order.append(anchor.record) }
                newest[anchor.record] = anchor
            }
        }
        return order.map { newest[$0]! }
    }
}

/// The intake insert as one prepared statement: the rows go in from arrays only when the
/// header's active KEK is the fenced one (when fenced). Returns how many went in and the active
/// KEK, so a refusal can say why.
struct AuditIntakeStatement: PostgresPreparedStatement {
    static let sql = """
        WITH inserted AS (
          INSERT INTO audit_intake (node, body, key_id, time, mac)
          SELECT v.n, v.b, NULLIF(v.k, ''::bytea), v.t, v.m
          FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::float8[], $6::bytea[]) WITH ORDINALITY AS v(n, b, k, t, m, o)
          WHERE $1::bytea IS NULL OR EXISTS (SELECT 1 FROM store_header WHERE id = 1 AND active_kek = $1::bytea)
          ORDER BY v.o
          RETURNING 1)
        SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT active_kek FROM store_header WHERE id = 1) AS active
        """

    typealias Row = (inserted: Int64, active: [UInt8]?)

    let rows: [AuditIntakeRow]
    let fence: [UInt8]?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(fence.map { ByteBuffer(bytes: $0) })
        bindings.append(rows.map(\.node))
        bindings.append(rows.map { ByteBuffer(bytes: $0.body) })
        // An empty id stands for none (a key id is 16 bytes); NULLIF turns it back into NULL.
        bindings.append(rows.map { ByteBuffer(bytes: $0.keyID?.bytes ?? []) })
        bindings.append(rows.map(\.time.timeIntervalSince1970))
        bindings.append(rows.map { ByteBuffer(bytes: $0.mac) })
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let columns = try Columns(row)
        return (try columns.int("inserted"), try columns.optionalBytes("active"))
    }
}
