import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage

/// A fresh store in a temporary directory, opened with a key-file root of trust (fast; the
/// passphrase root is tested on its own) and a manual clock.
struct StoreFixture {
    let directory: URL
    let path: String
    let keyFile: String
    let service: KeyService

    static func make(options: KeyService.Options = KeyService.Options()) async throws -> StoreFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
        let path = directory.appendingPathComponent("store.db").path
        let clock = ManualClock()
        let store = try SQLiteKeyStore(path: path)
        let service = try await KeyService.initialize(store: store, root: KeyFileRootOfTrust(path: keyFile), actor: .owner("test"), clock: clock, options: options)
        return StoreFixture(directory: directory, path: path, keyFile: keyFile, clock: clock, service: service)
    }

    init(directory: URL, path: String, keyFile: String, clock: ManualClock, service: KeyService) {
        self.directory = directory
        self.path = path
        self.keyFile = keyFile
        self.service = service
        self.clockStorage = clock
    }

    private let clockStorage: ManualClock
    var manualClock: ManualClock { clockStorage }

    /// Opens the same store again, as a new process would (nothing cached).
    func reopen(options: KeyService.Options = KeyService.Options()) async throws -> KeyService {
        let keyFile = self.keyFile
        return try await KeyService.open(store: try SQLiteKeyStore(path: path), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) },
                                         clock: clockStorage, options: options)
    }

    /// Runs raw SQL against the store file, as an attacker with the file would.
    func tamper(_ sql: String, _ arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql, arguments: arguments) }
    }

    /// `tamper` with foreign keys off, as a raw `sqlite3` session has them: rows can be deleted
    /// without their dependents and made to point at nothing.
    func tamperWithoutForeignKeys(_ sql: String, _ arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            try db.execute(sql: sql, arguments: arguments)
        }
    }

    func fetch(_ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments) }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// A service over a store that fails on demand (`InjectingStore`), in a temporary folder.
struct FailingStoreFixture {
    let directory: URL
    let store: InjectingStore
    let service: KeyService

    static func make() async throws -> FailingStoreFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-failing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
        let store = InjectingStore(try SQLiteKeyStore(path: directory.appendingPathComponent("s.db").path))
        let service = try await KeyService.initialize(store: store, root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        return FailingStoreFixture(directory: directory, store: store, service: service)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

