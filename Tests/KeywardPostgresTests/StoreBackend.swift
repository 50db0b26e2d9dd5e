import Foundation
import Keyward
import KeywardCrypto
import KeywardPostgres
import KeywardStorage
import Testing

/// The store backends the contract tests run against: the embedded SQLite file and a real
/// PostgreSQL 15 (`KEYWARD_TEST_POSTGRES_URL`, started by `scripts/test.sh` through
/// `scripts/postgres.sh`). With `KEYWARD_REQUIRE_POSTGRES=1` (the test script sets it) a missing
/// database fails the PostgreSQL cases instead of leaving them out.
enum StoreBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var serverURL: String? { ProcessInfo.processInfo.environment["KEYWARD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var postgresRequired: Bool { ProcessInfo.processInfo.environment["KEYWARD_REQUIRE_POSTGRES"] == "1" }

    /// The backends to test on this machine.
    static var available: [StoreBackend] { serverURL != nil || postgresRequired ? [.sqlite, .postgres] : [.sqlite] }

    /// A new, empty store on this backend (a fresh database for PostgreSQL).
    func makeDatabase() async throws -> TestDatabase {
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-backend-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return TestDatabase(backend: self, location: directory.appendingPathComponent("store.db").path, directory: directory)
        case .postgres:
            guard let url = Self.serverURL else {
                throw TestDatabaseError("KEYWARD_TEST_POSTGRES_URL is not set: run scripts/test.sh, or start a cluster with scripts/postgres.sh start")
            }
            let name = "kw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try await TestDatabase.offPool { try TestDatabase.psql(url, "CREATE DATABASE \(name)") }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-backend-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let base = url[..<(url.range(of: "/", options: .backwards)?.lowerBound ?? url.endIndex)]
            return TestDatabase(backend: self, location: base + "/" + name, directory: directory, adminURL: url, databaseName: name)
        }
    }
}

struct TestDatabaseError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One empty store location, a root key beside it, and raw SQL access to it (as an attacker
/// with the file, or a database administrator, has).
struct TestDatabase: Sendable {
    let backend: StoreBackend
    /// A SQLite path or a postgres:// URL.
    let location: String
    let directory: URL
    var adminURL: String? = nil
    var databaseName: String? = nil

    var keyFile: String { directory.appendingPathComponent("root.key").path }

    /// Opens a new instance of the store (a new process, or another node).
    func open() async throws -> any KeyStore {
        switch backend {
        case .sqlite: return try SQLiteKeyStore(path: location)
        // A long deadline: under the whole suite's load the two cores are saturated for
        // seconds at a time, which is not the database failing to answer.
        case .postgres: return try await PostgresKeyStore.connect(try PostgresLocation(location), password: nil, operationTimeout: .seconds(60))
        }
    }

    /// A new store with a key service initialised on it.
    func initialize() async throws -> KeyService {
        try KeyFileRootOfTrust.generate(at: keyFile)
        return try await KeyService.initialize(store: try await open(), root: KeyFileRootOfTrust(path: keyFile), actor: .owner("test"))
    }

    /// Another service over the same store, as a second node would open it.
    func node(options: KeyService.Options = KeyService.Options()) async throws -> KeyService {
        let keyFile = self.keyFile
        return try await KeyService.open(store: try await open(), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) }, options: options)
    }

    /// Runs SQL against the store directly, from a thread of its own (`offPool`): the tool
    /// runs as a separate process, and waiting for it must not hold one of the cooperative
    /// pool's two threads while the tests' servers need them.
    func execute(_ sql: String) async throws {
        let (backend, location) = (self.backend, self.location)
        try await Self.offPool {
            switch backend {
            case .sqlite: try Self.run("/usr/bin/sqlite3", [location, sql])
            case .postgres: try Self.psql(location, sql)
            }
        }
    }

    /// Makes `node`'s last heartbeat a minute in the future, so the node counts as live (not
    /// silent past `DestructionBarrier.silence`) for that minute. A test that needs a live node
    /// which has not caught up uses this instead of a heartbeat loop: on a loaded 2-core test
    /// run a loop's task can go unscheduled for longer than the silence, and the node then
    /// rightly counts as gone.
    func keepAlive(node: String) async throws {
        try await execute("UPDATE nodes SET heartbeat_at = \(Date().timeIntervalSince1970 + 60) WHERE id = '\(node)'")
    }

    /// The first column of the first row `sql` returns, as text (from a thread of its own, as
    /// `execute`).
    func scalar(_ sql: String) async throws -> String {
        let (backend, location) = (self.backend, self.location)
        return try await Self.offPool {
            switch backend {
            case .sqlite: return try Self.run("/usr/bin/sqlite3", [location, sql]).trimmingCharacters(in: .whitespacesAndNewlines)
            case .postgres: return try Self.run("/usr/bin/psql", [location, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
    }

    /// Binary literal syntax for `bytes` in this backend's SQL.
    func literal(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        return backend == .sqlite ? "X'\(hex)'" : "'\\x\(hex)'::bytea"
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
        if let adminURL, let databaseName { try? Self.psql(adminURL, "DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)") }
    }

    /// Runs `body`, which blocks its thread (a `psql` call), on a thread of its own, so that
    /// the cooperative pool's few threads go on running the tests' servers meanwhile.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    static func psql(_ url: String, _ sql: String) throws {
        try run("/usr/bin/psql", [url, "-Xq", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let failure = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestDatabaseError("\(tool) failed: \(String(decoding: failure, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
