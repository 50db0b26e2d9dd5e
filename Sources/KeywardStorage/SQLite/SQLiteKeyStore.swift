import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import KeywardCrypto

/// How soon an appended audit batch reaches the disk itself (not only the operating system).
public enum AuditDurability: Sendable, Equatable {
    /// Every batch is fsync'ed before its callers return (the default).
    case eachBatch
    /// Every batch is written to the operating system before its callers return (it survives a
    /// crash of the process) and fsync'ed within this interval, or at once by the next change to
    /// a key, version, alias, token or header, all of which stay fsync'ed per commit.
    case within(Duration)
}

/// The embedded, single-node key store: one SQLite file through GRDB, in WAL mode with
/// `secure_delete` (deleted rows are overwritten with zeros) and `synchronous = FULL` (an
/// acknowledged write survives power loss; audit appends as `AuditDurability` says).
public final class SQLiteKeyStore: KeyStore {
    private let pool: DatabasePool
    /// How audit appends are synced.
    public let auditDurability: AuditDurability
    /// The audit log's own connection (see `appendAuditBlocking`).
    private let auditAppender: AuditAppender
    /// Fsyncs unsynced audit commits within the `.within` interval; nil for `.eachBatch`.
    private let checkpointer: WALCheckpointer?
    /// The KEK every write transaction checks (`fenceWrites`).
    private let fence = KEKFence()
    /// Key inserts waiting for the next shared transaction (see `insertKey`).
    private let pendingInserts = Mutex<(items: [PendingInsert], flushing: Bool)>(([], false))

    private struct PendingInsert {
        let key: KeyRow
        let version: VersionRow?
        let aliases: [AliasRow]
        let continuation: UnsafeContinuation<Result<Void, StorageError>, Never>
    }
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    ///
    /// A new store's file is created 0600 (SQLite gives its WAL and shared-memory files the same
    /// mode), in a directory created 0700 if it does not exist. An existing store whose file, WAL
    /// or shared-memory file group or others can read or write is refused: those files hold the
    /// audit log, the key metadata and the token hashes (`StoreFilePermissions`).
    ///
    /// - Throws: `StorageError.unavailable` when the file cannot be opened, is not a SQLite
    ///   database, or its schema cannot be migrated.
    ///
    /// With `.within` durability, `walLimitBytes` bounds the write-ahead log under steady load
    /// (see `WALCheckpointer`): past it, appends pause for one short checkpoint and the log
    /// restarts from its beginning.
    public init(path: String, auditDurability: AuditDurability = .eachBatch, walLimitBytes: Int = 256 << 20) throws(StorageError) {
        self.path = path
        self.auditDurability = auditDurability
        try StoreFilePermissions.prepare(path)
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator.migrate(pool)
            self.pool = pool
        } catch {
            throw .unavailable("\(path): \(SQLiteKeyStore.message(error))")
        }
        auditAppender = try AuditAppender(path: path, durability: auditDurability, walLimitBytes: walLimitBytes, fence: fence)
        if case .within(let interval) = auditDurability {
            checkpointer = try WALCheckpointer(path: path, interval: interval, appender: auditAppender, restartBytes: walLimitBytes)
        } else {
            checkpointer = nil
        }
    }

    static func message(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        if let error = error as? StorageError { return error.description }
        return "\(error)"
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StorageError) -> T {
        let expected = fence.current
        let lease = LeaseFence.current
        do {
            return try await pool.write { db in
                if let expected { try KEKFence.check(db, expected) }
                if let lease { try Self.checkLease(db, lease) }
                return try body(db)
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    private static func storageError(_ error: any Error) -> StorageError {
        do {
            throw error
        } catch let error as StorageError {
            return error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            return .conflict(error.message ?? "constraint violated")
        } catch {
            return .database(SQLiteKeyStore.message(error))
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StorageError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as StorageError {
            throw error
        } catch {
            throw .database(SQLiteKeyStore.message(error))
        }
    }

    // MARK: Header and KEKs

    public func fenceWrites(activeKEK: KeyID) { fence.set(activeKEK) }

    public func generation() async throws(StorageError) -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT value FROM store_generation WHERE id = 1") ?? 0 }
    }

    public func header() async throws(StorageError) -> StoreHeader? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM store_header WHERE id = 1").map(Self.header) }
    }

    public func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError) {
        try await write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM store_header") != nil { throw StorageError.alreadyInitialized }
            try Self.insert(kek, db)
            try Self.save(header, db)
        }
    }

    public func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM keks WHERE id = ?", arguments: [Data(id.bytes)]).map(Self.kek) }
    }

    public func keks() async throws(StorageError) -> [KEKRecord] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM keks ORDER BY created_at").map(Self.kek) }
    }

    // MARK: Keys

    /// Concurrent inserts share one transaction (one durable commit), each inside its own
    /// savepoint, so one insert's failure (a taken alias) fails only that insert.
    public func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError) {
        let result: Result<Void, StorageError> = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<Void, StorageError>, Never>) in
            let start = pendingInserts.withLock { state -> Bool in
                state.items.append(PendingInsert(key: key, version: firstVersion, aliases: aliases, continuation: continuation))
                if state.flushing { return false }
                state.flushing = true
                return true
            }
            if start { Task { await self.flushInserts() } }
        }
        try result.get()
    }

    private func flushInserts() async {
        while true {
            let batch = pendingInserts.withLock { state -> [PendingInsert] in
                let items = state.items
                state.items = []
                if items.isEmpty { state.flushing = false }
                return items
            }
            if batch.isEmpty { return }
            let outcomes: [StorageError?]
            let expected = fence.current
            do {
                outcomes = try await pool.write { db -> [StorageError?] in
                    if let expected {
                        do { try KEKFence.check(db, expected) } catch let error as StorageError { return batch.map { _ in error } }
                    }
                    return batch.map { item in
                        do {
                            try db.inSavepoint {
                                try Self.insert(item.key, db)
                                if let version = item.version { try Self.insert(version, db) }
                                for alias in item.aliases { try Self.insert(alias, db) }
                                return .commit
                            }
                            return nil
                        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                            return .conflict(error.message ?? "constraint violated")
                        } catch {
                            return .database(SQLiteKeyStore.message(error))
                        }
                    }
                }
            } catch {
                outcomes = Array(repeating: .database(SQLiteKeyStore.message(error)), count: batch.count)
            }
            for (item, outcome) in zip(batch, outcomes) {
                item.continuation.resume(returning: outcome.map { .failure($0) } ?? .success(()))
            }
        }
    }

    public func key(_ id: KeyID) async throws(StorageError) -> KeyRow? {
        try await read { db in try Self.fetchKey(id, db) }
    }

    public func restoreKeys(_ keys: [RestoredKey], intoEmptyStore: Bool) async throws(StorageError) {
        try await write { db in
            if intoEmptyStore {
                guard try Int.fetchOne(db, sql: "SELECT count(*) FROM keys") == 0 else {
                    throw StorageError.conflict("the store already holds keys; a backup is restored only into an empty store")
                }
            }
            for item in keys {
                if try Int.fetchOne(db, sql: "SELECT count(*) FROM keys WHERE id = ?", arguments: [Data(item.key.id.bytes)]) != 0 {
                    throw StorageError.conflict("the store already holds key \(item.key.id)")
                }
                for alias in item.aliases where try Int.fetchOne(db, sql: "SELECT count(*) FROM aliases WHERE name = ?", arguments: [alias.name]) != 0 {
                    throw StorageError.conflict("the alias \(alias.name) already names a key in this store")
                }
                try Self.insert(item.key, db)
                for version in item.versions { try Self.insert(version, db) }
                for alias in item.aliases { try Self.insert(alias, db) }
            }
        }
    }

    public func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try await write { db in try Self.update(key, expectedRevision: expectedRevision, db) }
    }

    public func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow] {
        try await read { db in
            var sql = "SELECT k.* FROM keys k"
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let tag = filter.tag {
                sql += " JOIN key_tags t ON t.key_id = k.id AND t.tag_key = ? AND t.tag_value = ?"
                arguments += [tag.key, tag.value]
            }
            if let alias = filter.alias {
                sql += " JOIN aliases a ON a.key_id = k.id AND a.name = ?"
                arguments.append(alias)
            }
            if let state = filter.state { conditions.append("k.state = ?"); arguments.append(state) }
            if let cursor { conditions.append("k.id > ?"); arguments.append(Data(cursor.bytes)) }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY k.id LIMIT ?"
            arguments.append(limit)
            let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            return try rows.map { try Self.keyRow($0, db) }
        }
    }

    public func keyCount() async throws(StorageError) -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM keys") ?? 0 }
    }

    // MARK: Versions

    public func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM key_versions WHERE key_id = ? AND version = ?", arguments: [Data(keyID.bytes), Int64(version)]).map(Self.versionRow)
        }
    }

    public func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM key_versions WHERE key_id = ? ORDER BY version", arguments: [Data(keyID.bytes)]).map(Self.versionRow)
        }
    }

    public func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError) {
        try await write { db in
            try Self.update(key, expectedRevision: expectedRevision, db)
            try Self.insert(version, db)
        }
    }

    public func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError) {
        try await write { db in
            try db.execute(sql: """
                UPDATE key_versions SET kek_id = ?, sealed = ?, body = ?, revision = ?, mac = ?
                WHERE key_id = ? AND version = ? AND revision = ?
                """, arguments: [Data(version.kekID.bytes), Data(version.sealed), Data(version.body), version.revision, Data(version.mac),
                                 Data(version.keyID.bytes), Int64(version.version), expectedRevision])
            if db.changesCount != 1 { throw StorageError.conflict("version \(version.version) of key \(version.keyID) changed meanwhile") }
        }
    }

    // MARK: Aliases

    public func alias(_ name: String) async throws(StorageError) -> AliasRow? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM aliases WHERE name = ?", arguments: [name]).map(Self.aliasRow) }
    }

    public func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM aliases WHERE key_id = ? ORDER BY name", arguments: [Data(keyID.bytes)]).map(Self.aliasRow) }
    }

    public func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError) {
        try await write { db in
            if let expectedRevision {
                try db.execute(sql: "UPDATE aliases SET key_id = ?, revision = ?, mac = ? WHERE name = ? AND revision = ?",
                               arguments: [Data(alias.keyID.bytes), alias.revision, Data(alias.mac), alias.name, expectedRevision])
                if db.changesCount != 1 { throw StorageError.conflict("alias \(alias.name) changed meanwhile") }
            } else {
                try Self.insert(alias, db)
            }
        }
    }

    public func aliases(after cursor: String?, limit: Int) async throws(StorageError) -> [AliasRow] {
        let after: String = cursor ?? ""
        return try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM aliases WHERE name > ? ORDER BY name LIMIT ?", arguments: [after, limit]).map(Self.aliasRow)
        }
    }

    public func deleteAlias(_ name: String, expectedRevision: Int64) async throws(StorageError) {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM aliases WHERE name = ? AND revision = ?").execute(arguments: [name, expectedRevision])
            if db.changesCount != 1 { throw StorageError.conflict("alias \(name) changed meanwhile") }
        }
    }

    // MARK: Tokens

    public func insertToken(_ token: TokenRow) async throws(StorageError) {
        try await write { db in
            try db.execute(sql: "INSERT INTO tokens (id, hash, body, revision, mac) VALUES (?, ?, ?, ?, ?)",
                           arguments: [Data(token.id.bytes), Data(token.hash), Data(token.body), token.revision, Data(token.mac)])
        }
    }

    public func token(_ id: KeyID) async throws(StorageError) -> TokenRow? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE id = ?", arguments: [Data(id.bytes)]).map(Self.tokenRow) }
    }

    public func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError) {
        try await write { db in
            try db.execute(sql: "UPDATE tokens SET hash = ?, body = ?, revision = ?, mac = ? WHERE id = ? AND revision = ?",
                           arguments: [Data(token.hash), Data(token.body), token.revision, Data(token.mac), Data(token.id.bytes), expectedRevision])
            if db.changesCount != 1 { throw StorageError.conflict("token \(token.id) changed meanwhile") }
        }
    }

    public func tokens(after cursor: KeyID?, limit: Int) async throws(StorageError) -> [TokenRow] {
        try await read { db in
            if let cursor {
                return try Row.fetchAll(db, sql: "SELECT * FROM tokens WHERE id > ? ORDER BY id LIMIT ?", arguments: [Data(cursor.bytes), limit]).map(Self.tokenRow)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY id LIMIT ?", arguments: [limit]).map(Self.tokenRow)
        }
    }

    private static func tokenRow(_ row: Row) throws -> TokenRow {
        TokenRow(id: try id(row, "id"), hash: try blob(row, "hash"), body: try blob(row, "body"), revision: try int(row, "revision"), mac: try blob(row, "mac"))
    }

    // MARK: Audit

    public func appendAudit(_ entries: [AuditRow]) async throws(StorageError) {
        let result: Result<Void, StorageError> = await withUnsafeContinuation { continuation in
            DispatchQueue.global().async {
                do throws(StorageError) {
                    try self.appendAuditBlocking(entries)
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try result.get()
    }

    /// Appends on the calling thread through the audit log's own connection: no executor hop,
    /// statements prepared once. With `.within`, the commit is not fsync'ed here; the WAL
    /// checkpointer does it within the interval, off this path.
    public func appendAuditBlocking(_ entries: [AuditRow]) throws(StorageError) {
        try auditAppender.append(entries)
        checkpointer?.committed()
    }

    public func auditHead() async throws(StorageError) -> AuditRow? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM audit ORDER BY sequence DESC LIMIT 1").map(Self.auditRow) }
    }

    public func auditEntries(after: Int64, limit: Int) async throws(StorageError) -> [AuditRow] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE sequence > ? ORDER BY sequence LIMIT ?", arguments: [after, limit]).map(Self.auditRow)
        }
    }

    public func anchorSnapshot() async throws(StorageError) -> AnchorSnapshot {
        try await read { db in
            let head = try Row.fetchOne(db, sql: "SELECT * FROM audit ORDER BY sequence DESC LIMIT 1").map(Self.auditRow)
            let anchors: [RevisionAnchorRow] = try Row.fetchAll(db, sql: "SELECT record, revision, deleted FROM anchored_revisions").map(Self.anchorRow)
            return AnchorSnapshot(head: head, anchors: anchors)
        }
    }

    public func auditCheckpoint() async throws(StorageError) -> AuditCheckpointRow? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT sequence, body, signature FROM audit_checkpoint WHERE id = 1").map {
                AuditCheckpointRow(sequence: $0["sequence"], body: [UInt8]($0["body"] as Data), signature: [UInt8]($0["signature"] as Data))
            }
        }
    }

    public func pruneAudit(_ checkpoint: AuditCheckpointRow) async throws(StorageError) {
        try await write { db in
            let head: Int64? = try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM audit")
            let current: Int64? = try Int64.fetchOne(db, sql: "SELECT sequence FROM audit_checkpoint WHERE id = 1")
            try Self.checkPruning(checkpoint.sequence, head: head, current: current)
            try db.execute(sql: """
                INSERT INTO audit_checkpoint (id, sequence, body, signature) VALUES (1, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET sequence = excluded.sequence, body = excluded.body, signature = excluded.signature
                """, arguments: [checkpoint.sequence, Data(checkpoint.body), Data(checkpoint.signature)])
            try db.execute(sql: "DELETE FROM audit WHERE sequence <= ?", arguments: [checkpoint.sequence])
        }
    }

    // MARK: KEK rotation

    public func rewriteAll(
        newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter,
        progress: @escaping @Sendable (Int) -> Void
    ) async throws(StorageError) -> Int {
        let count = try await write { db in
            try db.execute(sql: "UPDATE keks SET state = 'retired' WHERE state = 'active'")
            try Self.insert(newKEK, db)
            var count = 0
            func tick() {
                count += 1
                if count % 1000 == 0 { progress(count) }
            }
            // Keys (with their versions and aliases), a page at a time by primary key.
            var cursor = Data()
            while true {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM keys WHERE id > ? ORDER BY id LIMIT 500", arguments: [cursor])
                guard let last = rows.last else { break }
                for row in rows {
                    let key = try rewriter.key(try Self.keyRow(row, db))
                    try db.execute(sql: "UPDATE keys SET body = ?, revision = ?, mac = ? WHERE id = ?",
                                   arguments: [Data(key.body), key.revision, Data(key.mac), Data(key.id.bytes)])
                    tick()
                    for versionRow in try Row.fetchAll(db, sql: "SELECT * FROM key_versions WHERE key_id = ?", arguments: [Data(key.id.bytes)]) {
                        let version = try rewriter.version(try Self.versionRow(versionRow), key)
                        try db.execute(sql: "UPDATE key_versions SET kek_id = ?, sealed = ?, body = ?, revision = ?, mac = ? WHERE key_id = ? AND version = ?",
                                       arguments: [Data(version.kekID.bytes), Data(version.sealed), Data(version.body), version.revision, Data(version.mac),
                                                   Data(version.keyID.bytes), Int64(version.version)])
                        tick()
                    }
                    for aliasRow in try Row.fetchAll(db, sql: "SELECT * FROM aliases WHERE key_id = ?", arguments: [Data(key.id.bytes)]) {
                        let alias = try rewriter.alias(try Self.aliasRow(aliasRow))
                        try db.execute(sql: "UPDATE aliases SET key_id = ?, revision = ?, mac = ? WHERE name = ?",
                                       arguments: [Data(alias.keyID.bytes), alias.revision, Data(alias.mac), alias.name])
                        tick()
                    }
                }
                cursor = last["id"] as Data? ?? Data()
            }
            // Tokens.
            for tokenRow in try Row.fetchAll(db, sql: "SELECT * FROM tokens") {
                let token = try rewriter.token(try Self.tokenRow(tokenRow))
                try db.cachedStatement(sql: "UPDATE tokens SET mac = ? WHERE id = ?").execute(arguments: [Data(token.mac), Data(token.id.bytes)])
                tick()
            }
            // Audit batch MACs: every entry goes to the rewriter, oldest first (a batch MAC covers
            // the revision index as the entries before it left it); only changed MACs are written.
            var sequence: Int64 = 0
            while true {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE sequence > ? ORDER BY sequence LIMIT 1000", arguments: [sequence])
                guard let last = rows.last else { break }
                for row in rows {
                    let original = try Self.auditRow(row)
                    let entry = try rewriter.audit(original)
                    if entry.mac != original.mac {
                        try db.cachedStatement(sql: "UPDATE audit SET mac = ? WHERE sequence = ?").execute(arguments: [Data(entry.mac), entry.sequence])
                        tick()
                    }
                }
                sequence = last["sequence"] as Int64? ?? sequence
            }
            try Self.save(header, db)
            try db.execute(sql: "DELETE FROM keks WHERE state = 'retired'")
            progress(count)
            return count
        }
        fence.set(newKEK.id)
        return count
    }

    // MARK: Cluster

    // Every process on the file shares this machine's clock, so leases and heartbeats are kept
    // in seconds since 1970 by it.

    public func acquireLease(_ name: String, holder: String, duration: Duration) async throws(StorageError) -> Lease? {
        let seconds = duration.seconds
        do {
            return try await pool.write { db -> Lease? in
                let now = Date().timeIntervalSince1970
                let expires = now + seconds
                guard let row = try Row.fetchOne(db, sql: "SELECT holder, token, expires_at FROM leases WHERE name = ?", arguments: [name]) else {
                    try db.execute(sql: "INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, 1, ?)", arguments: [name, holder, expires])
                    return Lease(name: name, holder: holder, token: 1, expiresAt: Date(timeIntervalSince1970: expires))
                }
                let current = try Self.lease(name, row)
                if current.holder != holder, current.expiresAt.timeIntervalSince1970 > now { return nil }
                let token = current.holder == holder ? current.token : current.token + 1
                try db.execute(sql: "UPDATE leases SET holder = ?, token = ?, expires_at = ? WHERE name = ?", arguments: [holder, token, expires, name])
                return Lease(name: name, holder: holder, token: token, expiresAt: Date(timeIntervalSince1970: expires))
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    public func lease(_ name: String) async throws(StorageError) -> Lease? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT holder, token, expires_at FROM leases WHERE name = ?", arguments: [name]).map { try Self.lease(name, $0) }
        }
    }

    public func releaseLease(_ lease: Lease) async throws(StorageError) {
        do {
            try await pool.write { db in
                try db.execute(sql: "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND token = ?",
                               arguments: [lease.name, lease.holder, lease.token])
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    public func heartbeat(node: String, seenGeneration: Int64) async throws(StorageError) {
        do {
            try await pool.write { db in
                let now = Date().timeIntervalSince1970
                try db.execute(sql: """
                    INSERT INTO nodes (id, seen_generation, heartbeat_at) VALUES (?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET seen_generation = excluded.seen_generation, heartbeat_at = excluded.heartbeat_at
                    """, arguments: [node, seenGeneration, now])
                try db.execute(sql: "DELETE FROM nodes WHERE heartbeat_at < ?", arguments: [now - 86_400])
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    public func heartbeats() async throws(StorageError) -> [NodeHeartbeat] {
        try await read { db in
            let now = Date().timeIntervalSince1970
            return try Row.fetchAll(db, sql: "SELECT id, seen_generation, heartbeat_at FROM nodes ORDER BY id").map { row in
                let at = try Self.date(row, "heartbeat_at")
                return NodeHeartbeat(node: try Self.text(row, "id"), seenGeneration: try Self.int(row, "seen_generation"),
                                     at: at, age: now - at.timeIntervalSince1970)
            }
        }
    }

    /// Throws `leaseLost` unless `lease` is still held, unlapsed, with its token (`LeaseFence`).
    private static func checkLease(_ db: Database, _ lease: Lease) throws {
        let held = try Bool.fetchOne(db, sql: "SELECT 1 FROM leases WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?",
                                     arguments: [lease.name, lease.holder, lease.token, Date().timeIntervalSince1970]) ?? false
        if !held { throw StorageError.leaseLost("lease \(lease.name) with token \(lease.token) has lapsed or passed to another node") }
    }

    private static func lease(_ name: String, _ row: Row) throws -> Lease {
        Lease(name: name, holder: try text(row, "holder"), token: try int(row, "token"), expiresAt: try date(row, "expires_at"))
    }

    // MARK: Row mapping

    private static func blob(_ row: Row, _ column: String) throws -> [UInt8] {
        guard let data = row[column] as Data? else { throw StorageError.corrupted("column \(column) is not a blob") }
        return [UInt8](data)
    }

    private static func id(_ row: Row, _ column: String) throws -> KeyID {
        do { return try KeyID(bytes: try blob(row, column)) } catch { throw StorageError.corrupted("column \(column) is not a 16-byte id") }
    }

    private static func int(_ row: Row, _ column: String) throws -> Int64 {
        guard let value = row[column] as Int64? else { throw StorageError.corrupted("column \(column) is not an integer") }
        return value
    }

    private static func text(_ row: Row, _ column: String) throws -> String {
        guard let value = row[column] as String? else { throw StorageError.corrupted("column \(column) is not text") }
        return value
    }

    private static func date(_ row: Row, _ column: String) throws -> Date {
        guard let value = row[column] as Double? else { throw StorageError.corrupted("column \(column) is not a time") }
        return Date(timeIntervalSince1970: value)
    }

    private static func header(_ row: Row) throws -> StoreHeader {
        StoreHeader(storeID: try id(row, "store_id"), formatVersion: Int(try int(row, "format_version")), rootOfTrust: try text(row, "root_kind"),
                    rootParameters: try blob(row, "root_parameters"), activeKEK: try id(row, "active_kek"), createdAt: try date(row, "created_at"),
                    mac: try blob(row, "mac"))
    }

    private static func save(_ header: StoreHeader, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO store_header (id, store_id, format_version, root_kind, root_parameters, active_kek, created_at, mac)
            VALUES (1, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET store_id = excluded.store_id, format_version = excluded.format_version,
              root_kind = excluded.root_kind, root_parameters = excluded.root_parameters, active_kek = excluded.active_kek,
              created_at = excluded.created_at, mac = excluded.mac
            """, arguments: [Data(header.storeID.bytes), header.formatVersion, header.rootOfTrust, Data(header.rootParameters),
                             Data(header.activeKEK.bytes), header.createdAt.timeIntervalSince1970, Data(header.mac)])
    }

    private static func kek(_ row: Row) throws -> KEKRecord {
        KEKRecord(id: try id(row, "id"), wrapped: try blob(row, "wrapped"), createdAt: try date(row, "created_at"), state: try text(row, "state"))
    }

    private static func insert(_ kek: KEKRecord, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO keks (id, wrapped, created_at, state) VALUES (?, ?, ?, ?)",
                       arguments: [Data(kek.id.bytes), Data(kek.wrapped), kek.createdAt.timeIntervalSince1970, kek.state])
    }

    private static func fetchKey(_ id: KeyID, _ db: Database) throws -> KeyRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM keys WHERE id = ?", arguments: [Data(id.bytes)]).map { try keyRow($0, db) }
    }

    private static func keyRow(_ row: Row, _ db: Database) throws -> KeyRow {
        let keyID = try id(row, "id")
        var tags: [String: String] = [:]
        for tag in try Row.fetchAll(db, sql: "SELECT tag_key, tag_value FROM key_tags WHERE key_id = ?", arguments: [Data(keyID.bytes)]) {
            tags[try text(tag, "tag_key")] = try text(tag, "tag_value")
        }
        return KeyRow(id: keyID, body: try blob(row, "body"), revision: try int(row, "revision"), mac: try blob(row, "mac"),
                      spec: try text(row, "spec"), state: try text(row, "state"), createdAt: try date(row, "created_at"), tags: tags)
    }

    private static func insert(_ key: KeyRow, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO keys (id, body, revision, mac, spec, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [Data(key.id.bytes), Data(key.body), key.revision, Data(key.mac), key.spec, key.state, key.createdAt.timeIntervalSince1970])
        try saveTags(key, db)
    }

    private static func saveTags(_ key: KeyRow, _ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM key_tags WHERE key_id = ?").execute(arguments: [Data(key.id.bytes)])
        for (name, value) in key.tags {
            try db.cachedStatement(sql: "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)").execute(arguments: [Data(key.id.bytes), name, value])
        }
    }

    private static func update(_ key: KeyRow, expectedRevision: Int64, _ db: Database) throws {
        try db.execute(sql: "UPDATE keys SET body = ?, revision = ?, mac = ?, spec = ?, state = ? WHERE id = ? AND revision = ?",
                       arguments: [Data(key.body), key.revision, Data(key.mac), key.spec, key.state, Data(key.id.bytes), expectedRevision])
        if db.changesCount != 1 { throw StorageError.conflict("key \(key.id) changed meanwhile (expected revision \(expectedRevision))") }
        try saveTags(key, db)
    }

    private static func versionRow(_ row: Row) throws -> VersionRow {
        let number = try int(row, "version")
        guard let version = UInt32(exactly: number) else { throw StorageError.corrupted("version \(number) is out of range") }
        return VersionRow(keyID: try id(row, "key_id"), version: version, kekID: try id(row, "kek_id"), sealed: try blob(row, "sealed"),
                          body: try blob(row, "body"), revision: try int(row, "revision"), mac: try blob(row, "mac"))
    }

    private static func insert(_ version: VersionRow, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO key_versions (key_id, version, kek_id, sealed, body, revision, mac) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [Data(version.keyID.bytes), Int64(version.version), Data(version.kekID.bytes), Data(version.sealed),
                                   Data(version.body), version.revision, Data(version.mac)])
    }

    private static func aliasRow(_ row: Row) throws -> AliasRow {
        AliasRow(name: try text(row, "name"), keyID: try id(row, "key_id"), revision: try int(row, "revision"), mac: try blob(row, "mac"))
    }

    private static func insert(_ alias: AliasRow, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO aliases (name, key_id, revision, mac) VALUES (?, ?, ?, ?)",
                       arguments: [alias.name, Data(alias.keyID.bytes), alias.revision, Data(alias.mac)])
    }

    private static func anchorRow(_ row: Row) throws -> RevisionAnchorRow {
        let deleted: Int64 = try int(row, "deleted")
        guard deleted == 0 || deleted == 1 else { throw StorageError.corrupted("anchored_revisions.deleted is \(deleted), not 0 or 1") }
        return RevisionAnchorRow(record: try blob(row, "record"), revision: try int(row, "revision"), deleted: deleted != 0)
    }

    private static func auditRow(_ row: Row) throws -> AuditRow {
        let keyID: KeyID? = (row["key_id"] as Data?) == nil ? nil : try id(row, "key_id")
        return AuditRow(sequence: try int(row, "sequence"), body: try blob(row, "body"), previousHash: try blob(row, "previous_hash"),
                        hash: try blob(row, "hash"), mac: try blob(row, "mac"), keyID: keyID, time: try date(row, "time"))
    }
}

