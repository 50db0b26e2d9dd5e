import Foundation
import KeywardCrypto

/// One audited event: who did what to which key and version, and how it ended. Never a secret:
/// no key bytes, plaintext, passphrase or token ever goes in here.
public struct AuditEvent: Sendable, Codable, Hashable {
    /// When it happened.
    public var time: Date
    /// Who asked (a user, a token id, an mTLS subject, `cli`).
    public var actor: String
    /// The operation, e.g. `encrypt`, `create`, `rotate`.
    public var operation: String
    /// The key, if any.
    public var keyID: KeyID?
    /// The key version used, if any.
    public var version: UInt32?
    /// `ok`, `denied` (state, policy, integrity) or `error`.
    public var outcome: String
    /// For failures: the error, as its user-facing message (which carries no secrets).
    public var detail: String?
    /// For metadata changes: the key row's new revision (rollback detection).
    public var keyRevision: Int64?
    /// Request id and peer address, for the service.
    public var requestID: String?
    /// The client's address, for the service.
    public var peer: String?
    /// The HTTP method and route template, for the service (`POST /v1/keys/{key}/encrypt`).
    public var route: String?

    /// An event; `outcome` defaults to `ok`.
    public init(time: Date, actor: String, operation: String, keyID: KeyID? = nil, version: UInt32? = nil,
                outcome: String = "ok", detail: String? = nil, keyRevision: Int64? = nil, requestID: String? = nil, peer: String? = nil, route: String? = nil) {
        self.time = time
        self.actor = actor
        self.operation = operation
        self.keyID = keyID
        self.version = version
        self.outcome = outcome
        self.detail = detail
        self.keyRevision = keyRevision
        self.requestID = requestID
        self.peer = peer
        self.route = route
    }
}
