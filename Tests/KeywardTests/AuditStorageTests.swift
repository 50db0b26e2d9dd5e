import Foundation
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// The audit log's own SQLite path: `AuditAppender` (one connection, prepared statements) and
/// `WALCheckpointer` (the fsync for `AuditDurability.within`).
@Suite("Audit storage")
struct AuditStorageTests {
    static func rows(from first: Int64, count: Int, key: KeyID? = nil, revisions: [Int64]? = nil) -> [AuditRow] {
        (0..<count).map { index in
            AuditRow(sequence: first + Int64(index), body: Array("entry \(index)".utf8), previousHash: [UInt8](repeating: 1, count: 32),
                     hash: [UInt8](repeating: 2, count: 32), mac: index == count - 1 ? [3] : [], keyID: key,
                     anchors: revisions.map { [RevisionAnchorRow(record: [1] + (key?.bytes ?? []), revision: $0[index], deleted: false)] } ?? [], time: Date())
        }
    }

    /// How many audit rows the database file holds on its own, without its WAL: a copy of the
    /// main file alone, opened as a store of its own.
    static func rowsInMainFile(_ path: String, scratch: String) async throws -> Int {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: scratch + suffix) }
        try FileManager.default.copyItem(atPath: path, toPath: scratch)
        return try await SQLiteKeyStore(path: scratch).auditEntries(after: 0, limit: 1000).count
    }

    @Test("a batch whose first sequence does not follow the stored head is refused as a conflict and writes nothing")
    func gapRefused() async throws {
        let temporary = try TemporaryStore(label: "audit-gap")
        defer { temporary.remove() }
        let store = try SQLiteKeyStore(path: temporary.path("s.db"))
        #expect(throws: StorageError.self) { try store.appendAuditBlocking(Self.rows(from: 5, count: 3)) }
        #expect(try await store.auditHead() == nil)
        try store.appendAuditBlocking(Self.rows(from: 1, count: 3))
        #expect(throws: StorageError.self) { try store.appendAuditBlocking(Self.rows(from: 3, count: 1)) }
        #expect(try await store.auditHead()?.sequence == 3)
        #expect(try await store.auditEntries(after: 0, limit: 10).map(\.sequence) == [1, 2, 3])
    }

    @Test("a duplicate sequence inside one batch rolls the whole batch back")
    func duplicateInBatchRolledBack() async throws {
        let temporary = try TemporaryStore(label: "audit-dup")
        defer { temporary.remove() }
        let store = try SQLiteKeyStore(path: temporary.path("s.db"))
        var batch = Self.rows(from: 1, count: 3)
        batch[2].sequence = 2
        #expect(throws: StorageError.self) { try store.appendAuditBlocking(batch) }
        #expect(try await store.auditHead() == nil)
        // The connection is usable afterwards (no transaction left open).
        try store.appendAuditBlocking(Self.rows(from: 1, count: 2))
        #expect(try await store.auditHead()?.sequence == 2)
    }

    @Test("the revision index keeps the last revision any entry anchored, in entry order, and reads back with the head in one snapshot")
    func anchoredRevisions() async throws {
        let temporary = try TemporaryStore(label: "audit-rev")
        defer { temporary.remove() }
        let store = try SQLiteKeyStore(path: temporary.path("s.db"))
        let key = KeyID()
        try store.appendAuditBlocking(Self.rows(from: 1, count: 3, key: key, revisions: [3, 7, 5]))
        var snapshot = try await store.anchorSnapshot()
        #expect(snapshot.head?.sequence == 3)
        #expect(snapshot.anchors == [RevisionAnchorRow(record: [1] + key.bytes, revision: 5, deleted: false)])
        try await store.appendAudit(Self.rows(from: 4, count: 1, key: key, revisions: [9]))
        snapshot = try await store.anchorSnapshot()
        #expect(snapshot.head?.sequence == 4)
        #expect(snapshot.anchors.map(\.revision) == [9])
    }

    @Test("with audit durability within an interval, entries reach the database file itself (checkpointed, so fsync'ed) within it, and not before")
    func checkpointWithinInterval() async throws {
        let temporary = try TemporaryStore(label: "audit-ckpt")
        defer { temporary.remove() }
        // A long interval first: the entries stay in the WAL only.
        let slowPath = temporary.path("slow.db")
        let slow = try SQLiteKeyStore(path: slowPath, auditDurability: .within(.seconds(30)))
        try slow.appendAuditBlocking(Self.rows(from: 1, count: 50))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.rowsInMainFile(slowPath, scratch: temporary.path("slow-copy.db")) == 0)

        let path = temporary.path("s.db")
        let store = try SQLiteKeyStore(path: path, auditDurability: .within(.milliseconds(50)))
        try store.appendAuditBlocking(Self.rows(from: 1, count: 50))
        var inFile = 0
        for _ in 0..<100 where inFile < 50 {
            try await Task.sleep(for: .milliseconds(100))
            // A copy taken while a checkpoint writes may be torn; the next one is not.
            inFile = (try? await Self.rowsInMainFile(path, scratch: temporary.path("copy.db"))) ?? 0
        }
        #expect(inFile == 50)
    }

    @Test("under appends that never pause, the WAL restarts once it passes its limit instead of growing with the load, and every entry stays")
    func walStaysBounded() async throws {
        let temporary = try TemporaryStore(label: "audit-wal-limit")
        defer { temporary.remove() }
        let path = temporary.path("s.db")
        let limit = 1 << 20
        let store = try SQLiteKeyStore(path: path, auditDurability: .within(.milliseconds(5)), walLimitBytes: limit)
        // 8,000 one-entry transactions: at least one 4 KiB page each, about 32 MiB of WAL if it
        // never restarted. How far past the limit it gets before the checkpoint thread catches up
        // depends on scheduling (a loaded CI run saw 5 MiB), so the checks are that it restarts
        // (an unbounded WAL only grows) and stays well under the unbounded size.
        var largest = 0, previous = 0, restarts = 0
        for batch in 0..<8000 {
            try store.appendAuditBlocking(Self.rows(from: Int64(batch) + 1, count: 1))
            if batch % 50 == 0 {
                let size = ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
                if size < previous { restarts += 1 }
                previous = size
                largest = max(largest, size)
            }
        }
        #expect(restarts >= 1 || largest <= limit, "the WAL never restarted (largest \(largest) bytes)")
        #expect(largest > 0 && largest < 8 * limit, "the WAL reached \(largest) bytes with a limit of \(limit)")
        #expect(try await store.auditEntries(after: 0, limit: 10000).count == 8000)
    }
}
