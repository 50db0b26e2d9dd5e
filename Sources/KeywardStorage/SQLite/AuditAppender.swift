import Foundation
import GRDBSQLite
import Synchronization
import KeywardCrypto

/// The audit log's own SQLite connection: appends batches of entries synchronously, on the
/// calling thread, through statements prepared once.
///
/// Every audited request ends here, so this path has no executor hop and no query parsing:
/// the audit writer thread calls `append` and is blocked for the transaction, nothing else is.
/// The connection is separate from GRDB's pool; SQLite's locks (`BEGIN IMMEDIATE` with a busy
/// timeout) order it with the pool's writer.
///
/// Durability follows `AuditDurability`: `.eachBatch` commits with `synchronous = FULL` (the WAL
/// is fsync'ed before `append` returns); `.within` commits with `synchronous = NORMAL` and no
/// automatic checkpoint here, and `WALCheckpointer` fsyncs the WAL off this path.
final class AuditAppender: Sendable {
    private let connection: Mutex<Connection>
    /// The KEK appends are made under (`KEKFence`), checked in each append's transaction.
    private let fence: KEKFence

    /// The raw handle and its prepared statements; used under the mutex only.
    private struct Connection: ~Copyable {
        let handle: OpaquePointer
        let begin: OpaquePointer
        let head: OpaquePointer
        let activeKEK: OpaquePointer
        let insert: OpaquePointer
        let revision: OpaquePointer
        let commit: OpaquePointer
        let rollback: OpaquePointer

        deinit {
            for statement in [begin, head, activeKEK, insert, revision, commit, rollback] { sqlite3_finalize(statement) }
            sqlite3_close_v2(handle)
        }
    }

    /// Opens the store's file at `path` (already created and migrated by the pool).
    init(path: String, durability: AuditDurability, walLimitBytes: Int, fence: KEKFence) throws(StorageError) {
        self.fence = fence
        let handle = try SQLiteConnection.open(path)
        do {
            try SQLiteConnection.execute(handle, "PRAGMA secure_delete = ON")
            switch durability {
            case .eachBatch:
                try SQLiteConnection.execute(handle, "PRAGMA synchronous = FULL")
            case .within:
                try SQLiteConnection.execute(handle, "PRAGMA synchronous = NORMAL")
                try SQLiteConnection.execute(handle, "PRAGMA wal_autocheckpoint = 0")
                // When the WAL restarts, a file grown past this is cut back to it.
                try SQLiteConnection.execute(handle, "PRAGMA journal_size_limit = \(max(0, walLimitBytes))")
            }
            func prepare(_ sql: String) throws(StorageError) -> OpaquePointer { try SQLiteConnection.prepare(handle, sql) }
            connection = Mutex(Connection(
                handle: handle,
                begin: try prepare("BEGIN IMMEDIATE"),
                // After a pruning that left the log empty (a copy), it continues after the checkpoint.
                head: try prepare("SELECT coalesce((SELECT max(sequence) FROM audit), (SELECT sequence FROM audit_checkpoint))"),
                activeKEK: try prepare("SELECT active_kek FROM store_header"),
                insert: try prepare("""
                    INSERT INTO audit (sequence, body, previous_hash, hash, mac, key_id, time)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """),
                revision: try prepare("""
                    INSERT INTO anchored_revisions (record, revision, deleted) VALUES (?, ?, ?)
                    ON CONFLICT(record) DO UPDATE SET revision = excluded.revision, deleted = excluded.deleted
                    """),
                commit: try prepare("COMMIT"),
                rollback: try prepare("ROLLBACK")))
        } catch {
            sqlite3_close_v2(handle)
            throw error
        }
    }

    /// Runs `body` while no append can start (an append under way finishes first).
    func pausingAppends<T>(_ body: () -> T) -> T {
        connection.withLock { _ in body() }
    }

    /// Appends `entries` in one transaction. Throws `conflict` when the first sequence does not
    /// follow the stored head (another process appended), leaving nothing written.
    func append(_ entries: [AuditRow]) throws(StorageError) {
        guard let first = entries.first else { return }
        let expected = fence.current
        try connection.withLock { (connection: inout Connection) throws(StorageError) in
            let handle = connection.handle
            try SQLiteConnection.run(handle, connection.begin)
            do throws(StorageError) {
                if let expected, let active = try SQLiteConnection.blob(handle, connection.activeKEK), active != expected {
                    throw .staleKEK(KEKFence.describe(expected: expected, active: active))
                }
                let head = try SQLiteConnection.int64(handle, connection.head) ?? 0
                guard first.sequence == head + 1 else {
                    throw .conflict("audit sequence \(first.sequence) does not follow \(head)")
                }
                let insert = connection.insert
                for entry in entries {
                    sqlite3_clear_bindings(insert)
                    sqlite3_bind_int64(insert, 1, entry.sequence)
                    SQLiteConnection.bind(insert, 2, entry.body)
                    SQLiteConnection.bind(insert, 3, entry.previousHash)
                    SQLiteConnection.bind(insert, 4, entry.hash)
                    SQLiteConnection.bind(insert, 5, entry.mac)
                    if let keyID = entry.keyID { SQLiteConnection.bind(insert, 6, keyID.bytes) }
                    sqlite3_bind_double(insert, 7, entry.time.timeIntervalSince1970)
                    try SQLiteConnection.run(handle, insert)
                }
                // The revision index, in entry order, so the last word on a record is the newest.
                for entry in entries {
                    for anchor in entry.anchors {
                        SQLiteConnection.bind(connection.revision, 1, anchor.record)
                        sqlite3_bind_int64(connection.revision, 2, anchor.revision)
                        sqlite3_bind_int64(connection.revision, 3, anchor.deleted ? 1 : 0)
                        try SQLiteConnection.run(handle, connection.revision)
                    }
                }
                try SQLiteConnection.run(handle, connection.commit)
            } catch {
                _ = try? SQLiteConnection.run(handle, connection.rollback)
                throw error
            }
        }
    }
}

/// Thin, typed wrappers over the SQLite C API for the store's own connections.
enum SQLiteConnection {
    /// Opens `path` read-write (it must exist) with a 10-second busy timeout.
    static func open(_ path: String) throws(StorageError) -> OpaquePointer {
        var handle: OpaquePointer?
        let code = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "code \(code)"
            sqlite3_close_v2(handle)
            throw .unavailable("\(path): \(message)")
        }
        sqlite3_busy_timeout(handle, 10_000)
        return handle
    }

    static func prepare(_ handle: OpaquePointer, _ sql: String) throws(StorageError) -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw .database(String(cString: sqlite3_errmsg(handle)))
        }
        return statement
    }

    static func execute(_ handle: OpaquePointer, _ sql: String) throws(StorageError) {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw .database(String(cString: sqlite3_errmsg(handle)))
        }
    }

    /// Steps a statement that returns no rows, then resets it.
    static func run(_ handle: OpaquePointer, _ statement: OpaquePointer) throws(StorageError) {
        let code = sqlite3_step(statement)
        let failure = code == SQLITE_DONE || code == SQLITE_ROW ? nil : error(handle, code)
        sqlite3_reset(statement)
        if let failure { throw failure }
    }

    /// The first column of the first row as an integer (nil for NULL), then resets.
    static func int64(_ handle: OpaquePointer, _ statement: OpaquePointer) throws(StorageError) -> Int64? {
        let code = sqlite3_step(statement)
        defer { sqlite3_reset(statement) }
        guard code == SQLITE_ROW else {
            if code == SQLITE_DONE { return nil }
            throw error(handle, code)
        }
        return sqlite3_column_type(statement, 0) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, 0)
    }

    /// The first column of the first row as bytes (nil for no row or NULL), then resets.
    static func blob(_ handle: OpaquePointer, _ statement: OpaquePointer) throws(StorageError) -> [UInt8]? {
        let code = sqlite3_step(statement)
        defer { sqlite3_reset(statement) }
        guard code == SQLITE_ROW else {
            if code == SQLITE_DONE { return nil }
            throw error(handle, code)
        }
        guard sqlite3_column_type(statement, 0) != SQLITE_NULL else { return nil }
        let count = Int(sqlite3_column_bytes(statement, 0))
        guard count > 0, let pointer = sqlite3_column_blob(statement, 0) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The database's page size.
    static func pageSize(_ handle: OpaquePointer) throws(StorageError) -> Int64 {
        let statement = try prepare(handle, "PRAGMA page_size")
        defer { sqlite3_finalize(statement) }
        return try int64(handle, statement) ?? 4096
    }

    /// Binds bytes as a blob (an empty array as a zero-length blob, never NULL); SQLite copies them.
    static func bind(_ statement: OpaquePointer?, _ index: Int32, _ bytes: [UInt8]) {
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        bytes.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(statement, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), transient)
        }
    }

    private static func error(_ handle: OpaquePointer, _ code: Int32) -> StorageError {
        let message = String(cString: sqlite3_errmsg(handle))
        // SQLITE_CONSTRAINT's primary code (extended codes keep it in the low byte).
        if code & 0xff == SQLITE_CONSTRAINT { return .conflict(message) }
        return .database(message)
    }
}
