import Foundation
import KeywardAPI

/// Administration over the API (`/v1/admin`): what `keyward --server` uses. Each call needs the
/// matching administrative grant (`manage-tokens`, `read-audit`, `verify-store`, `rotate-kek`,
/// `maintenance`) on every key.
extension KeywardClient {
    /// Issues a token with rules in the CLI's form (`OPERATIONS:SELECTOR`); its text is in the
    /// reply, once.
    public func issueToken(principal: String, rules: [String], expiresInDays: Int? = nil) async throws(KeywardClientError) -> IssuedTokenReply {
        try await call(.POST, "/v1/admin/tokens", CreateTokenBody(principal: principal, rules: rules, expiresInDays: expiresInDays), as: IssuedTokenReply.self)
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

    /// Verifies the audit chain.
    public func verifyAudit() async throws(KeywardClientError) -> AuditVerificationReply {
        try await call(.POST, "/v1/admin/audit/verify", as: AuditVerificationReply.self)
    }

    /// Rotates the storage KEK on the server.
    public func rotateKEK() async throws(KeywardClientError) -> KEKRotationReply {
        try await call(.POST, "/v1/admin/kek/rotate", as: KEKRotationReply.self)
    }

    /// Runs the maintenance sweep now.
    public func runMaintenance() async throws(KeywardClientError) -> MaintenanceReply {
        try await call(.POST, "/v1/admin/maintenance/run", as: MaintenanceReply.self)
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
