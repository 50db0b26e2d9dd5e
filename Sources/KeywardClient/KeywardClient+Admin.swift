import Foundation
import KeywardAPI

/// Administration over the API (`/v1/admin`): what `keyward --server` uses. Each call needs the
/// matching administrative grant (`manage-tokens`, `read-audit`, `verify-store`, `rotate-kek`,
/// `maintenance`, `backup`, `restore`) on every key.
extension KeywardClient {
    /// Issues a token with rules in the CLI's form (`OPERATIONS:SELECTOR`); its text is in the
    /// reply, once.
    public func issueToken(principal: String, rules: [String], expiresInDays: Int? = nil) async throws(KeywardClientError) -> IssuedTokenReply {
        try await call(.POST, "/v1/admin/tokens", CreateTokenBody(principal: principal, rules: rules, expiresInDays: expiresInDays), as: IssuedTokenReply.self,
                       repeatable: false)
    }

    /// Issues an AWS access key (SigV4, for AWS SDKs pointed at Keyward) with rules in the
    /// CLI's form; its secret is in the reply, once.
    public func issueAWSCredential(principal: String, rules: [String], expiresInDays: Int? = nil) async throws(KeywardClientError) -> IssuedAWSCredentialReply {
        try await call(.POST, "/v1/admin/credentials/aws", CreateTokenBody(principal: principal, rules: rules, expiresInDays: expiresInDays),
                       as: IssuedAWSCredentialReply.self, repeatable: false)
    }

    /// A page of token records (never their text).
    public func listTokens(after cursor: String? = nil, limit: Int = 100) async throws(KeywardClientError) -> TokenPageReply {
        var query = [URLQueryItem(name: "limit", value: String(limit))]
        if let cursor { query.append(URLQueryItem(name: "after", value: cursor)) }
        return try await call(.GET, "/v1/admin/tokens?" + Self.query(query), as: TokenPageReply.self)
    }

    /// Revokes a token.
    public func revokeToken(_ id: String) async throws(KeywardClientError) {
        _ = try await call(.POST, "/v1/admin/tokens/\(Self.pathComponent(id))/revoke", as: StatusReply.self)
    }

    /// Replaces a token's rules (CLI form); the reply is the token's record as it now is.
    public func changeTokenPolicy(_ id: String, rules: [String]) async throws(KeywardClientError) -> TokenReply {
        try await call(.PUT, "/v1/admin/tokens/\(Self.pathComponent(id))/policy", TokenPolicyBody(rules: rules), as: TokenReply.self)
    }

    /// Verifies every record and the audit chain.
    public func verifyStore() async throws(KeywardClientError) -> VerificationReply {
        try await call(.POST, "/v1/admin/verify", as: VerificationReply.self)
    }

    /// A page of audit entries after the sequence number `after`.
    public func auditEntries(after: Int = 0, limit: Int = 100, operation: String? = nil) async throws(KeywardClientError) -> AuditPageReply {
        var query = [URLQueryItem(name: "after", value: String(after)), URLQueryItem(name: "limit", value: String(limit))]
        if let operation { query.append(URLQueryItem(name: "operation", value: operation)) }
        return try await call(.GET, "/v1/admin/audit?" + Self.query(query), as: AuditPageReply.self)
    }

    /// The newest `count` audit entries (1 to 1,000), oldest first.
    public func auditTail(_ count: Int) async throws(KeywardClientError) -> [AuditEntryReply] {
        try await call(.GET, "/v1/admin/audit?tail=\(count)", as: AuditPageReply.self).entries
    }

    /// A signed segment of the audit log: the entries after `after` through `through` (nil:
    /// the newest, at most 100,000), as `keyward audit export` writes it.
    public func exportAuditSegment(after: Int64 = 0, through: Int64? = nil) async throws(KeywardClientError) -> AuditSegmentReply {
        try await call(.POST, "/v1/admin/audit/export", AuditExportBody(after: after, through: through), as: AuditSegmentReply.self)
    }

    /// The public key (PEM) that signs the store's audit segments.
    public func auditSigner() async throws(KeywardClientError) -> String {
        try await call(.GET, "/v1/admin/audit/signer", as: AuditSignerReply.self).publicKeyPem
    }

    /// Verifies the audit chain.
    public func verifyAudit() async throws(KeywardClientError) -> AuditVerificationReply {
        try await call(.POST, "/v1/admin/audit/verify", as: AuditVerificationReply.self)
    }

    /// Rotates the storage KEK on the server.
    public func rotateKEK() async throws(KeywardClientError) -> KEKRotationReply {
        try await call(.POST, "/v1/admin/kek/rotate", as: KEKRotationReply.self, repeatable: false)
    }

    /// Runs the maintenance sweep now.
    public func runMaintenance() async throws(KeywardClientError) -> MaintenanceReply {
        try await call(.POST, "/v1/admin/maintenance/run", as: MaintenanceReply.self)
    }

    /// A backup of every key, sealed to `recipient` (the text of its public key file), which
    /// the server must pin in its configuration (`backup.recipients`).
    public func createBackup(recipient: String) async throws(KeywardClientError) -> BackupReply {
        try await call(.POST, "/v1/admin/backup", BackupBody(recipient: recipient), as: BackupReply.self)
    }

    /// Restores `bundle` on the server, which opens it with its own identity and accepts it only
    /// from a store it trusts (`backup.identity`, `backup.signers`).
    public func restore(bundle: [UInt8]) async throws(KeywardClientError) -> RestoreReply {
        try await call(.POST, "/v1/admin/restore", RestoreBody(bundle: bundle), as: RestoreReply.self, repeatable: false)
    }

    /// The nodes serving the store and the lease on its background work.
    public func clusterStatus() async throws(KeywardClientError) -> ClusterReply {
        try await call(.GET, "/v1/admin/cluster", as: ClusterReply.self)
    }

    static func query(_ items: [URLQueryItem]) -> String {
        var components = URLComponents()
        components.queryItems = items
        return components.percentEncodedQuery ?? ""
    }

    static func pathComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}
