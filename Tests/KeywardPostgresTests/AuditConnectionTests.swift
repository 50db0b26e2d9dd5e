import Foundation
import Keyward
import KeywardCrypto
import KeywardPostgres
import KeywardStorage
import Testing

/// The audit writer's own libpq connection (`appendAuditBlocking`, decision 0035): it writes
/// what postgres-nio's append writes, refuses what that refuses, and survives the server ending
/// it or holding it past the deadline.
@Suite("The audit writer's blocking connection to PostgreSQL")
struct AuditConnectionTests {
    static var backends: [StoreBackend] { StoreBackend.available.filter { $0 == .postgres } }

    static func row(_ sequence: Int64, after previous: [UInt8], keyID: KeyID?, anchors: [RevisionAnchorRow] = [], mac: [UInt8] = []) -> AuditRow {
        let body = Array("entry \(sequence) \u{e9}".utf8)
        let hash = SHA256Hash.hash(concatenating: previous, body)
        return AuditRow(sequence: sequence, body: body, previousHash: previous, hash: hash, mac: mac, keyID: keyID,
                        anchors: anchors, time: Date(timeIntervalSince1970: 1_800_000_000.25 + Double(sequence)))
    }

    /// A store whose audit connection gives up after `timeout`. A short deadline can pass while
    /// the whole suite saturates the two cores, so opening is tried a few times.
    static func open(_ database: TestDatabase, timeout: Duration = .seconds(60)) async throws -> PostgresKeyStore {
        for _ in 0..<9 {
            if let store = try? await PostgresKeyStore.connect(try PostgresLocation(database.location), password: nil, operationTimeout: timeout) { return store }
        }
        return try await PostgresKeyStore.connect(try PostgresLocation(database.location), password: nil, operationTimeout: timeout)
    }

    /// `appendAuditBlocking`, tried again while a short deadline passes under the suite's load.
    static func append(_ rows: [AuditRow], to store: PostgresKeyStore) throws {
        for _ in 0..<9 {
            do {
                try store.appendAuditBlocking(rows)
                return
            } catch .unavailable {
                continue
            }
        }
        try store.appendAuditBlocking(rows)
    }

    /// A store whose audit connection gives up after 1 s, holding entry 1 (its connection open).
    static func startedStore(_ database: TestDatabase) async throws -> (store: PostgresKeyStore, first: AuditRow) {
        // The schema is made first with time to spare: under the whole suite's load, making it
        // can take longer than the short deadline the test is about.
        _ = try await open(database)
        let store = try await open(database, timeout: .seconds(1))
        let first = row(1, after: [UInt8](repeating: 0, count: 32), keyID: nil)
        try append([first], to: store)
        return (store, first)
    }

    /// Appends `rows`, expecting `unavailable` within `bound` (the 1 s deadline, with room for a
    /// loaded machine, but before the database would have let go).
    static func expectUnavailable(_ rows: [AuditRow], to store: PostgresKeyStore, within bound: Duration) {
        let started = ContinuousClock.now
        do {
            try store.appendAuditBlocking(rows)
            Issue.record("an append went through after \(started.duration(to: .now))")
        } catch {
            guard case .unavailable = error else { Issue.record("a held append gave \(error), not unavailable"); return }
        }
        let waited = started.duration(to: .now)
        #expect(waited < bound, "the writer was held \(waited)")
    }

    @Test("the blocking append stores entries, key ids, times, MACs and the revision index exactly as given, with and without anchors", arguments: backends)
    func writesWhatItIsGiven(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let store = try await Self.open(database)
        let key = KeyID()
        let first = [Self.row(1, after: [UInt8](repeating: 0, count: 32), keyID: key,
                              anchors: [RevisionAnchorRow(record: [1, 2], revision: 3, deleted: false), RevisionAnchorRow(record: [9], revision: 1, deleted: true)])]
        let second = [Self.row(2, after: first[0].hash, keyID: nil), Self.row(3, after: first[0].hash, keyID: key, mac: [7, 7, 7])]
        // The second batch has no anchors: its arrays are empty ones.
        try store.appendAuditBlocking(first)
        try store.appendAuditBlocking(second)
        let stored = try await store.auditEntries(after: 0, limit: 10)
        let expected = (first + second).map { row -> AuditRow in
            var row = row
            row.anchors = []
            return row
        }
        #expect(stored.map { row -> AuditRow in
            var row = row
            row.anchors = []
            return row
        } == expected)
        #expect(Set(try await store.anchorSnapshot().anchors) == Set(first[0].anchors))
        // A later anchor for the same record replaces the earlier one.
        try store.appendAuditBlocking([Self.row(4, after: second[1].hash, keyID: nil, anchors: [RevisionAnchorRow(record: [1, 2], revision: 4, deleted: true)])])
        #expect(Set(try await store.anchorSnapshot().anchors) == [RevisionAnchorRow(record: [1, 2], revision: 4, deleted: true), RevisionAnchorRow(record: [9], revision: 1, deleted: true)])
    }

    @Test("the blocking append refuses a gap, a duplicate and a rotated-away KEK as conflicts or staleKEK, and writes nothing", arguments: backends)
    func refusesWhatTheAsyncAppendRefuses(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let store = try await Self.open(database)
        let zero = [UInt8](repeating: 0, count: 32)
        #expect(throws: StorageError.self) { try store.appendAuditBlocking([Self.row(2, after: zero, keyID: nil)]) }
        let first = Self.row(1, after: zero, keyID: nil)
        do {
            try store.appendAuditBlocking([first, first])
            Issue.record("a batch with a duplicate sequence was written")
        } catch {
            guard case .conflict = error else { Issue.record("a duplicate gave \(error), not a conflict"); return }
        }
        #expect(try await store.auditHead() == nil, "a refused batch was partly written")
        try store.appendAuditBlocking([first])
        do {
            try store.appendAuditBlocking([first])
            Issue.record("the same sequence was written twice")
        } catch {
            guard case .conflict(let message) = error else { Issue.record("a repeat gave \(error), not a conflict"); return }
            #expect(message.contains("does not follow 1"), "\(message)")
        }
        // A writer fenced by a KEK the header no longer names: another process rotated it away.
        try await database.execute("INSERT INTO store_header (id, store_id, format_version, root_kind, root_parameters, active_kek, created_at, mac) VALUES (1, '\\x01', 1, 'file', '\\x', '\\x01', 0, '\\x00')")
        store.fenceWrites(activeKEK: KeyID())
        do {
            try store.appendAuditBlocking([Self.row(2, after: first.hash, keyID: nil)])
            Issue.record("a writer on a rotated-away KEK appended")
        } catch {
            guard case .staleKEK = error else { Issue.record("a stale writer got \(error), not staleKEK"); return }
        }
        #expect(try await store.auditHead()?.sequence == 1)
    }

    @Test("after the server ends the audit connection, the next append goes over a new one without failing", arguments: backends)
    func reconnectsAfterTheServerEndsIt(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let store = try await Self.open(database)
        let first = Self.row(1, after: [UInt8](repeating: 0, count: 32), keyID: nil)
        try store.appendAuditBlocking([first])
        let ended = try await database.scalar("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name = 'keyward-audit' AND datname = current_database()
            """)
        #expect(ended == "1", "\(ended) audit connections ended")
        // As after a restart: the server has closed the connection before the next batch.
        var waits = 0
        while try await database.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'keyward-audit'") != "0", waits < 100 {
            waits += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        try store.appendAuditBlocking([Self.row(2, after: first.hash, keyID: nil)])
        #expect(try await store.auditHead()?.sequence == 2)
    }

    @Test("an append the database holds past the deadline fails with unavailable before the database lets go, commits nothing, and the next one goes through",
          arguments: backends)
    func givesUpAtTheDeadline(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let (store, first) = try await Self.startedStore(database)
        // Another session holds the audit table until the test ends it. (A fixed hold of a few
        // seconds, counted from the holder's start, could end under the suite's load before the
        // server had cancelled the append, which then committed: the server, not this side,
        // decides once it has the statement. What this side guarantees is that the server gives
        // up on it soon after: statement_timeout, and the check for a client that has gone.)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        holder.arguments = [database.location, "-Xq", "-c", "BEGIN; LOCK TABLE audit IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;"]
        holder.environment = ProcessInfo.processInfo.environment.merging(["PGAPPNAME": "keyward-test-holder"]) { _, new in new }
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        var waits = 0
        while try await database.scalar("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'audit'::regclass") != "1", waits < 100 {
            waits += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        let second = Self.row(2, after: first.hash, keyID: nil)
        Self.expectUnavailable([second], to: store, within: .seconds(3.5))
        // The server ends the append's session on its own while the table is still held.
        waits = 0
        while try await database.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'keyward-audit' AND datname = current_database()") != "0",
              waits < 500 {
            waits += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(waits < 500, "the server kept the append given up on for 10 s")
        _ = try await database.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'keyward-test-holder'")
        holder.waitUntilExit()
        #expect(try await store.auditHead()?.sequence == 1, "the append given up on was committed after all")
        try Self.append([second], to: store)
        #expect(try await store.auditHead()?.sequence == 2)
    }

    @Test("a large batch sent to a server that stopped reading fails with unavailable at the deadline instead of blocking the writer, and the next append goes through",
          arguments: backends)
    func largeBatchToAStalledServer(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let (store, first) = try await Self.startedStore(database)
        let pid = try #require(Int32(try await database.scalar("""
            SELECT pid FROM pg_stat_activity WHERE application_name = 'keyward-audit' AND datname = current_database()
            """)))
        // The server process behind the writer's connection stops: nothing it is sent is read.
        #expect(kill(pid, SIGSTOP) == 0)
        defer { kill(pid, SIGCONT) }
        // 8 MiB of entries: far more than the socket buffers hold.
        var previous = first.hash
        var batch: [AuditRow] = []
        for sequence in Int64(2)...65 {
            var row = Self.row(sequence, after: previous, keyID: nil)
            row.body = [UInt8](repeating: UInt8(sequence), count: 128 * 1024)
            previous = row.hash
            batch.append(row)
        }
        Self.expectUnavailable(batch, to: store, within: .seconds(3))
        kill(pid, SIGCONT)
        try Self.append([Self.row(2, after: first.hash, keyID: nil)], to: store)
        #expect(try await store.auditHead()?.sequence == 2)
    }
}
