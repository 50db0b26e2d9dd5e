import Foundation

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
    /// Rewrites an audit intake row (its MAC, under the new KEK's record MAC key).
    public var intake: @Sendable (AuditIntakeRow) throws -> AuditIntakeRow

    /// A rewriter of these closures.
    public init(key: @escaping @Sendable (KeyRow) throws -> KeyRow, version: @escaping @Sendable (VersionRow, KeyRow) throws -> VersionRow,
                alias: @escaping @Sendable (AliasRow) throws -> AliasRow, token: @escaping @Sendable (TokenRow) throws -> TokenRow,
                audit: @escaping @Sendable (AuditRow) throws -> AuditRow, intake: @escaping @Sendable (AuditIntakeRow) throws -> AuditIntakeRow) {
        self.key = key
        self.version = version
        self.alias = alias
        self.audit = audit
        self.token = token
        self.intake = intake
    }
}
