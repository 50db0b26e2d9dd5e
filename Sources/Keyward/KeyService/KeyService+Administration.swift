import Foundation
import KeywardCrypto
import KeywardStorage

/// Administration with authority: the store-wide operations a front end offers its clients
/// (tokens, store and audit verification, audit reading, maintenance, KEK rotation). Each checks
/// that the caller's policy grants the administrative operation on every key (`*`) and audits
/// the request, granted or denied. The owner (the CLI on its own store) passes every check.
extension KeyService {
    /// Throws `accessDenied` unless `caller` may perform the administrative `operation`.
    func authorizeAdministration(_ operation: ServiceOperation, _ caller: Caller) throws(KeywardError) {
        guard caller.policy?.allowsEverywhere(operation) ?? true else {
            throw .accessDenied(principal: caller.principal, operation: operation, key: nil)
        }
    }

    /// Checks, and audits, that `caller` may perform the administrative `operation`, for work a
    /// front end does itself (the maintenance status it keeps).
    public func checkAdministration(_ operation: ServiceOperation, actor: Caller) async throws(KeywardError) {
        guard ServiceOperation.administrative.contains(operation) else { throw .invalidArgument("\(operation.rawValue) is not an administrative operation") }
        try await auditor.audited(.key(operation), caller: actor, key: nil) { (event) throws(KeywardError) -> Void in
            try authorizeAdministration(operation, actor)
        }
    }

    /// Verifies every record and the audit chain (`verifyStore()`), for a caller granted
    /// `verify-store`.
    public func verifyStore(actor: Caller) async throws(KeywardError) -> StoreVerification {
        try await auditor.audited(.key(.verifyStore), caller: actor, key: nil) { (event) throws(KeywardError) -> StoreVerification in
            try authorizeAdministration(.verifyStore, actor)
            let report = try await verifyStore()
            event.detail = report.isIntact ? "intact" : "\(report.allProblems.count) problem(s)"
            return report
        }
    }

    /// Verifies the audit chain (`verifyAudit()`), for a caller granted `read-audit`.
    public func verifyAudit(actor: Caller) async throws(KeywardError) -> AuditVerification {
        try await auditor.audited(.key(.readAudit), caller: actor, key: nil) { (event) throws(KeywardError) -> AuditVerification in
            try authorizeAdministration(.readAudit, actor)
            let result = try await verifyAudit()
            event.detail = "verify: \(result.entries) entries, \(result.problems.count) problems"
            return result
        }
    }

    /// The newest `count` audit entries (1 to 1,000), oldest first, for a caller granted
    /// `read-audit`: `auditTail` over the API, read from the log's end rather than through it.
    public func auditTail(_ count: Int, actor: Caller) async throws(KeywardError) -> [(sequence: Int64, event: AuditEvent)] {
        guard (1...1000).contains(count) else { throw .invalidArgument("tail length \(count); choose 1 to 1000") }
        return try await auditor.audited(.key(.readAudit), caller: actor, key: nil) { (event) throws(KeywardError) -> [(sequence: Int64, event: AuditEvent)] in
            try authorizeAdministration(.readAudit, actor)
            event.detail = "read the newest \(count)"
            return try await auditTail(count)
        }
    }

    /// A page of audit entries matching `query`, oldest first, for a caller granted
    /// `read-audit`. At most `query.limit` entries are returned and at most 10,000 rows are
    /// read per call; `nextAfter` continues the scan (nil once the log's end is reached).
    public func auditEntries(_ query: AuditQuery, actor: Caller) async throws(KeywardError) -> (entries: [(sequence: Int64, event: AuditEvent)], nextAfter: Int64?) {
        guard (1...1000).contains(query.limit) else { throw .invalidArgument("page size \(query.limit); choose 1 to 1000") }
        guard query.after >= 0 else { throw .invalidArgument("'after' is a sequence number, 0 or more") }
        return try await auditor.audited(.key(.readAudit), caller: actor, key: query.keyID) { (event) throws(KeywardError) -> ([(sequence: Int64, event: AuditEvent)], Int64?) in
            try authorizeAdministration(.readAudit, actor)
            event.detail = "read after #\(query.after)"
            var found: [(sequence: Int64, event: AuditEvent)] = []
            var after = query.after
            var scanned = 0
            while found.count < query.limit && scanned < 10_000 {
                let rows = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: after, limit: 1000) })
                guard let last = rows.last else { return (found, nil) }
                for row in rows {
                    scanned += 1
                    after = row.sequence
                    let entry = try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)")
                    if query.matches(entry) {
                        found.append((row.sequence, entry))
                        if found.count == query.limit { return (found, row.sequence) }
                    }
                }
                after = last.sequence
            }
            return (found, after)
        }
    }

    /// The newest audit entries matching `query` (its `after` is ignored), newest first, for a
    /// caller granted `read-audit`: at most `query.limit`, from sequence numbers below `before`
    /// (nil: from the head). At most 10,000 rows are read per call; `nextBefore` continues
    /// towards the start of the log (nil once it is reached).
    public func latestAuditEntries(_ query: AuditQuery, before: Int64? = nil, actor: Caller) async throws(KeywardError) -> (entries: [(sequence: Int64, event: AuditEvent)], nextBefore: Int64?) {
        guard (1...1000).contains(query.limit) else { throw .invalidArgument("page size \(query.limit); choose 1 to 1000") }
        return try await auditor.audited(.key(.readAudit), caller: actor, key: query.keyID) { (event) throws(KeywardError) -> ([(sequence: Int64, event: AuditEvent)], Int64?) in
            try authorizeAdministration(.readAudit, actor)
            event.detail = "read newest" + (before.map { " before #\($0)" } ?? "")
            guard let head = try await storing({ () async throws(StorageError) in try await store.auditHead() }) else { return ([], nil) }
            // `end` is the first sequence number not to read.
            var end = min(head.sequence + 1, before ?? Int64.max)
            var found: [(sequence: Int64, event: AuditEvent)] = []
            var scanned = 0
            while end > 1, found.count < query.limit, scanned < 10_000 {
                let start = max(0, end - 1 - 1000)
                let rows = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: start, limit: 1000) })
                for row in rows.reversed() where row.sequence < end {
                    scanned += 1
                    let entry = try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)")
                    if query.matches(entry) {
                        found.append((row.sequence, entry))
                        if found.count == query.limit { return (found, row.sequence) }
                    }
                }
                end = start + 1
            }
            return (found, end > 1 ? end : nil)
        }
    }

    /// Runs the maintenance sweep now (`runMaintenance()`), for a caller granted `maintenance`.
    public func runMaintenance(actor: Caller) async throws(KeywardError) -> MaintenanceReport {
        try await auditor.audited(.key(.maintenance), caller: actor, key: nil) { (event) throws(KeywardError) -> MaintenanceReport in
            try authorizeAdministration(.maintenance, actor)
            let report = try await runMaintenance()
            event.detail = "\(report.keys) keys, \(report.destroyed) destroyed, \(report.rotated) rotated, \(report.failures.count) failures"
            return report
        }
    }
}

/// Which audit entries to read: those after a sequence number, optionally only for one key, one
/// principal, one operation, or a time range.
public struct AuditQuery: Sendable, Hashable {
    /// Entries with a greater sequence number (0: from the start).
    public var after: Int64
    /// At most this many entries (1 to 1,000).
    public var limit: Int
    /// Only entries naming this key.
    public var keyID: KeyID?
    /// Only entries by this principal (exact).
    public var actor: String?
    /// Only entries of this operation (as entries name it: `encrypt`, `token-issue`, ...).
    public var operation: String?
    /// Only entries at or after this time.
    public var since: Date?
    /// Only entries before this time.
    public var until: Date?

    /// A query; with no filters, every entry after `after`.
    public init(after: Int64 = 0, limit: Int = 100, keyID: KeyID? = nil, actor: String? = nil, operation: String? = nil, since: Date? = nil, until: Date? = nil) {
        self.after = after
        self.limit = limit
        self.keyID = keyID
        self.actor = actor
        self.operation = operation
        self.since = since
        self.until = until
    }

    /// Whether `entry` passes every filter.
    func matches(_ entry: AuditEvent) -> Bool {
        if let keyID, entry.keyID != keyID { return false }
        if let actor, entry.actor != actor { return false }
        if let operation, entry.operation != operation { return false }
        if let since, entry.time < since { return false }
        if let until, entry.time >= until { return false }
        return true
    }
}

/// When a key was last used for a cryptographic operation, as the audit log records it.
public struct KeyLastUse: Sendable, Equatable {
    /// The operation (`encrypt`, `sign`, ...), when one was found.
    public var operation: String?
    /// When it happened.
    public var time: Date?
    /// The request that used it, and the sequence of its audit entry.
    public var requestID: String?
    /// The audit entry's sequence number.
    public var sequence: Int64?
    /// The time of the oldest entry searched: uses before it are not known.
    public var trackedSince: Date?
}

extension KeyService {
    /// Most audit entries `lastUse` reads, newest first.
    public static let lastUseScanLimit = 100_000

    /// The key's last successful use that touched its material (encrypt, decrypt, sign, verify,
    /// MAC, ...), found by reading the audit log from its newest entry (at most
    /// `lastUseScanLimit` entries; `trackedSince` says how far back that reached). Needs
    /// `describe` on the key. Administrative changes (rotation, state, aliases) are not uses;
    /// `operations` narrows what counts (nil: every operation that uses key material).
    public func lastUse(key reference: String, operations: Set<ServiceOperation>? = nil, actor: Caller) async throws(KeywardError) -> KeyLastUse {
        try await withUsableKey(reference, .describe, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> KeyLastUse in
            let id = key.row.id
            var use = KeyLastUse()
            guard let head = try await storing({ () async throws(StorageError) in try await store.auditHead() }) else { return use }
            let uses = Set((operations ?? Set(ServiceOperation.allCases.filter(\.usesKeyMaterial))).map { AuditOperation.key($0).description })
            var end = head.sequence + 1
            var scanned = 0
            while end > 1, scanned < Self.lastUseScanLimit {
                let start = max(0, end - 1 - 1000)
                let rows = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: start, limit: 1000) })
                for row in rows.reversed() where row.sequence < end {
                    scanned += 1
                    use.trackedSince = row.time
                    guard row.keyID == id else { continue }
                    let entry = try CanonicalJSON.decode(AuditEvent.self, from: row.body, what: "audit entry #\(row.sequence)")
                    if entry.outcome == "ok", uses.contains(entry.operation) {
                        use.operation = entry.operation
                        use.time = entry.time
                        use.requestID = entry.requestID
                        use.sequence = row.sequence
                        // The oldest entry read is this one: its own time (the row's column is
                        // stamped when the entry is appended, a little after).
                        use.trackedSince = entry.time
                        event.detail = "last use: audit #\(row.sequence)"
                        return use
                    }
                }
                if rows.isEmpty { break }
                end = start + 1
            }
            event.detail = "no use in the newest \(scanned) audit entries"
            return use
        }
    }
}
