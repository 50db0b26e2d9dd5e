import CLibPQ
import Foundation
import KeywardStorage

/// The audit writer's own connection to PostgreSQL, through libpq, used from the writer's
/// thread and blocking it (decision 0035).
///
/// The audit append is the one database round trip on the request path. Through postgres-nio
/// it crosses four threads (the writer, a task, the event loop, the task again), and on a busy
/// machine every crossing waits for a core; here the writer thread sends the statement and
/// waits on the socket itself, as it waits on SQLite's file.
///
/// Invariants:
/// - One libpq connection at most, opened on first use, used by one caller at a time (`lock`),
///   with the append prepared once on it (`AuditAppendStatement.sql`, the one copy of the SQL).
/// - Every call ends within `timeout`: the connection is made with libpq's `connect_timeout`,
///   then used in nonblocking mode, each send flushed and each result read with `poll`. Past it the call fails with `unavailable` and the
///   connection is closed; the next call opens a new one. A connection libpq reports broken is
///   closed the same way.
/// - TLS as the pool has it (`PostgresLocation.tls`): `verify-full` (certificate and host name
///   checked, against `sslrootcert` or the system roots) or `disable`.
/// - The password is held only inside libpq's connection object; it reaches no message.
final class PostgresAuditConnection: @unchecked Sendable {
    private let location: PostgresLocation
    private let password: String?
    private let timeout: Duration
    /// Guards `connection`: every use of it is under this lock.
    private let lock = NSLock()
    private var connection: OpaquePointer?

    /// The prepared statement's name on the connection.
    private static let statementName = "keyward_audit_append"
    /// How the connection names itself to the server (`pg_stat_activity.application_name`).
    static let applicationName = "keyward-audit"
    /// The system roots when `sslrootcert` is not given (libpq 15 has no `sslrootcert=system`).
    static let systemRoots = "/etc/ssl/certs/ca-certificates.crt"

    init(location: PostgresLocation, password: String?, timeout: Duration) {
        self.location = location
        self.password = password
        self.timeout = timeout
    }

    deinit { if let connection { PQfinish(connection) } }

    /// Closes the connection; the next append opens a new one.
    func close() {
        lock.lock()
        defer { lock.unlock() }
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// Runs `statement` and returns its one row.
    func append(_ statement: AuditAppendStatement) throws(StorageError) -> AuditAppendStatement.Row {
        lock.lock()
        defer { lock.unlock() }
        let deadline = ContinuousClock.now + timeout
        do throws(Failure) {
            let connection = try open(until: deadline)
            return try run(statement, on: connection, deadline: deadline)
        } catch {
            if let connection, PQstatus(connection) != CONNECTION_OK || error.closesConnection {
                PQfinish(connection)
                self.connection = nil
            }
            throw error.storage
        }
    }

    /// Why a connection cannot be opened now, in libpq's words (refused, no such host, the
    /// credentials or database refused, TLS), or nil when one opens (and is closed again).
    /// `PostgresKeyStore` asks first, so that a command fails at once with the cause rather
    /// than after its deadline.
    func connectionFailure() -> StorageError? {
        do throws(Failure) {
            PQfinish(try connect())
            return nil
        } catch {
            return error.storage
        }
    }

    /// Why a call failed, and whether the connection is still fit to use.
    private enum Failure: Error {
        /// The server answered with an error; the connection is fine.
        case server(StorageError)
        /// The connection failed or timed out; it is closed.
        case connection(StorageError)

        var storage: StorageError {
            switch self {
            case .server(let error), .connection(let error): error
            }
        }

        var closesConnection: Bool {
            if case .connection = self { return true }
            return false
        }
    }

    /// The open connection, connecting and preparing the statement first if there is none.
    private func open(until deadline: ContinuousClock.Instant) throws(Failure) -> OpaquePointer {
        if let connection {
            if Self.isAlive(connection) { return connection }
            PQfinish(connection)
            self.connection = nil
        }
        let made = try connect()
        // Server notices go nowhere (libpq would print them on standard error).
        PQsetNoticeProcessor(made, { _, _ in }, nil)
        // Nonblocking from here: a send that the server does not read (a large batch, a stalled
        // server) waits in `flush` up to the deadline rather than in the kernel for ever.
        guard PQsetnonblocking(made, 1) == 0, PQsendPrepare(made, Self.statementName, AuditAppendStatement.sql, 0, nil) == 1 else {
            let message = Self.message(made)
            PQfinish(made)
            throw .connection(.unavailable("PostgreSQL at \(location): the audit append could not be prepared: \(message)"))
        }
        do throws(Failure) {
            try flush(made, until: deadline)
            var failure: StorageError? = nil
            while let result = try nextResult(made, until: deadline) {
                if PQresultStatus(result) != PGRES_COMMAND_OK { failure = failure ?? Self.failure(result, location: location) }
                PQclear(result)
            }
            if let failure { throw Failure.connection(failure) }
        } catch {
            PQfinish(made)
            throw error
        }
        connection = made
        return made
    }

    /// A new libpq connection (blocking, within `timeout`), or why none opens.
    private func connect() throws(Failure) -> OpaquePointer {
        let seconds = max(1, Int(timeout.components.seconds))
        // Half a second past this side's deadline, so that this side's answer is the one given.
        let milliseconds = max(1, Int(timeout.components.seconds) * 1000 + Int(timeout.components.attoseconds / 1_000_000_000_000_000)) + 500
        var parameters: [(String, String)] = [
            ("host", location.host), ("port", String(location.port)), ("user", location.username),
            ("dbname", location.database), ("connect_timeout", String(seconds)), ("application_name", Self.applicationName),
            // The server gives up on a statement just after the deadline too, and notices within a second
            // that a connection given up on is gone, so a batch this side reported as failed is not
            // left to commit whenever the database lets it through. (If it is let through in that
            // second, it commits: the writer finds it as the head on its next append and chains
            // after it. The log may then hold entries of refused requests; never lack one.)
            ("options", "-c statement_timeout=\(milliseconds) -c client_connection_check_interval=1000"),
        ]
        switch location.tls {
        case .disable:
            parameters.append(("sslmode", "disable"))
        case .require:
            parameters.append(("sslmode", "verify-full"))
            parameters.append(("sslrootcert", location.rootCertificates ?? Self.systemRoots))
        }
        if let password { parameters.append(("password", password)) }
        let keys = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            for pointer in keys + values { free(pointer) }
        }
        let made: OpaquePointer? = (keys.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keyPointers in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keyPointers.baseAddress, valuePointers.baseAddress, 0)
            }
        }
        guard let made else { throw .connection(.unavailable("PostgreSQL at \(location): libpq could not allocate a connection")) }
        guard PQstatus(made) == CONNECTION_OK else {
            let message = Self.message(made)
            PQfinish(made)
            throw .connection(.unavailable("PostgreSQL at \(location): \(message)"))
        }
        return made
    }

    /// Sends the prepared append with `statement`'s parameters (binary) and waits for its row.
    private func run(_ statement: AuditAppendStatement, on connection: OpaquePointer, deadline: ContinuousClock.Instant) throws(Failure) -> AuditAppendStatement.Row {
        let parameters = statement.binaryParameters()
        // One buffer holds every parameter; each value points into it.
        var buffer: [UInt8] = []
        buffer.reserveCapacity(parameters.reduce(0) { $0 + ($1?.count ?? 0) })
        var offsets: [Int?] = []
        for parameter in parameters {
            if let parameter {
                offsets.append(buffer.count)
                buffer += parameter
            } else {
                offsets.append(nil)
            }
        }
        let lengths = parameters.map { Int32($0?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: parameters.count)
        let sent = buffer.withUnsafeBufferPointer { bytes -> Int32 in
            let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            let values: [UnsafePointer<CChar>?] = offsets.map { offset in
                offset.map { base.advanced(by: $0).assumingMemoryBound(to: CChar.self) }
            }
            return PQsendQueryPrepared(connection, Self.statementName, Int32(parameters.count), values, lengths, formats, 1)
        }
        guard sent == 1 else { throw .connection(.unavailable("PostgreSQL at \(location): \(Self.message(connection))")) }
        try flush(connection, until: deadline)
        var row: AuditAppendStatement.Row? = nil
        var failure: Failure? = nil
        while let result = try nextResult(connection, until: deadline) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK where PQntuples(result) == 1 && PQnfields(result) == 3:
                row = (Self.int64(result, column: 0), Self.bytes(result, column: 1), Self.int64(result, column: 2))
            case PGRES_TUPLES_OK:
                failure = failure ?? .server(.database("the audit append returned \(PQntuples(result)) rows"))
            default:
                failure = failure ?? .server(Self.failure(result, location: location))
            }
        }
        if let failure { throw failure }
        guard let row else { throw .server(.database("the audit append returned no row")) }
        return row
    }

    /// Sends what libpq still holds of the statement, up to `deadline`. Input is read meanwhile,
    /// as libpq asks, so that a server answering early cannot deadlock the two.
    private func flush(_ connection: OpaquePointer, until deadline: ContinuousClock.Instant) throws(Failure) {
        while true {
            let pending = PQflush(connection)
            if pending == 0 { return }
            guard pending > 0 else { throw .connection(.unavailable("PostgreSQL at \(location): \(Self.message(connection))")) }
            let ready = try readiness(connection, for: Int16(POLLOUT | POLLIN), until: deadline, what: "sending audit entries")
            if ready & Int16(POLLIN) != 0, PQconsumeInput(connection) == 0 {
                throw .connection(.unavailable("PostgreSQL at \(location): \(Self.message(connection))"))
            }
        }
    }

    /// The statement's next result (nil once all are in), read as it arrives, up to `deadline`.
    private func nextResult(_ connection: OpaquePointer, until deadline: ContinuousClock.Instant) throws(Failure) -> OpaquePointer? {
        while PQisBusy(connection) != 0 {
            _ = try readiness(connection, for: Int16(POLLIN), until: deadline, what: "appending audit entries")
            if PQconsumeInput(connection) == 0 {
                throw .connection(.unavailable("PostgreSQL at \(location): \(Self.message(connection))"))
            }
        }
        return PQgetResult(connection)
    }

    /// Waits until the socket is ready for `events`, or fails at `deadline`; returns what it is ready for.
    private func readiness(_ connection: OpaquePointer, for events: Int16, until deadline: ContinuousClock.Instant, what: String) throws(Failure) -> Int16 {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            guard milliseconds > 0 else {
                throw .connection(.unavailable("PostgreSQL at \(location) did not answer within \(timeout) (\(what))"))
            }
            var descriptor = pollfd(fd: PQsocket(connection), events: events, revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0, errno == EINTR { continue }
            guard ready >= 0 else { throw .connection(.unavailable("PostgreSQL at \(location): poll failed (errno \(errno))")) }
            if ready > 0 { return descriptor.revents }
        }
    }

    /// Whether an idle connection is still open: a server that restarted or ended it has sent
    /// its farewell, which is waiting to be read. Found before the statement is sent, so the
    /// batch goes over a new connection rather than failing.
    private static func isAlive(_ connection: OpaquePointer) -> Bool {
        // The farewell (an error message) and the end of the stream may take two reads.
        for _ in 0..<4 {
            var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            guard PQconsumeInput(connection) == 1, PQstatus(connection) == CONNECTION_OK else { return false }
        }
        return PQstatus(connection) == CONNECTION_OK
    }

    private static func message(_ connection: OpaquePointer) -> String {
        guard let text = PQerrorMessage(connection) else { return "connection failed" }
        // libpq puts its hint on a line of its own: one line, for a log line or a terminal.
        let message = String(cString: text).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
        return message.isEmpty ? "connection failed" : message
    }

    /// The storage error for a failed result, by its SQLSTATE.
    private static func failure(_ result: OpaquePointer, location: PostgresLocation) -> StorageError {
        let field = { (code: Int32) -> String? in PQresultErrorField(result, code).map { String(cString: $0) } }
        let message = field(Int32(UInt8(ascii: "M"))) ?? "the statement failed"
        guard let state = field(Int32(UInt8(ascii: "C"))) else { return .unavailable("PostgreSQL at \(location): \(message)") }
        return PostgresKeyStore.storageError(sqlState: state, message: message, location: location)
    }

    private static func bytes(_ result: OpaquePointer, column: Int32) -> [UInt8]? {
        guard PQgetisnull(result, 0, column) == 0, let value = PQgetvalue(result, 0, column) else { return nil }
        let count = Int(PQgetlength(result, 0, column))
        return value.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    private static func int64(_ result: OpaquePointer, column: Int32) -> Int64 {
        guard let bytes = bytes(result, column: column), bytes.count == 8 else { return -1 }
        return bytes.reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }
}

extension AuditAppendStatement {
    /// The statement's parameters in PostgreSQL's binary format, in order ($1 to $13); nil is NULL.
    func binaryParameters() -> [[UInt8]?] {
        let anchors = newestAnchors()
        return [
            fence,
            BinaryFormat.int64((entries.first?.sequence ?? 1) - 1),
            BinaryFormat.array(of: BinaryFormat.int8OID, entries.map { BinaryFormat.int64($0.sequence) }),
            BinaryFormat.array(of: BinaryFormat.byteaOID, entries.map(\.body)),
            BinaryFormat.array(of: BinaryFormat.byteaOID, entries.map(\.previousHash)),
            BinaryFormat.array(of: BinaryFormat.byteaOID, entries.map(\.hash)),
            BinaryFormat.array(of: BinaryFormat.byteaOID, entries.map(\.mac)),
            // An empty id stands for none (a key id is 16 bytes); NULLIF turns it back into NULL.
            BinaryFormat.array(of: BinaryFormat.byteaOID, entries.map { $0.keyID?.bytes ?? [] }),
            BinaryFormat.array(of: BinaryFormat.float8OID, entries.map { BinaryFormat.float64($0.time.timeIntervalSince1970) }),
            BinaryFormat.array(of: BinaryFormat.byteaOID, anchors.map(\.record)),
            BinaryFormat.array(of: BinaryFormat.int8OID, anchors.map { BinaryFormat.int64($0.revision) }),
            BinaryFormat.array(of: BinaryFormat.boolOID, anchors.map { [$0.deleted ? 1 : 0] }),
            // An empty id stands for none; NULLIF turns it back into NULL.
            BinaryFormat.array(of: BinaryFormat.textOID, entries.map { Array(($0.entry ?? "").utf8) }),
        ]
    }
}

/// PostgreSQL's binary wire format for the few types the audit append sends.
enum BinaryFormat {
    static let boolOID: UInt32 = 16
    static let byteaOID: UInt32 = 17
    static let int8OID: UInt32 = 20
    static let textOID: UInt32 = 25
    static let float8OID: UInt32 = 701

    static func int64(_ value: Int64) -> [UInt8] { bigEndian(UInt64(bitPattern: value)) }

    static func float64(_ value: Double) -> [UInt8] { bigEndian(value.bitPattern) }

    /// A one-dimensional array with no NULLs: dimensions, flags, element type, length and lower
    /// bound, then each element's length and bytes.
    static func array(of element: UInt32, _ items: [[UInt8]]) -> [UInt8] {
        // An empty array has no dimensions.
        guard !items.isEmpty else { return bigEndian(UInt32(0)) + bigEndian(UInt32(0)) + bigEndian(element) }
        var out: [UInt8] = []
        out.reserveCapacity(20 + items.reduce(0) { $0 + 4 + $1.count })
        out += bigEndian(UInt32(1)) + bigEndian(UInt32(0)) + bigEndian(element)
        out += bigEndian(UInt32(items.count)) + bigEndian(UInt32(1))
        for item in items {
            out += bigEndian(UInt32(item.count))
            out += item
        }
        return out
    }

    private static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
