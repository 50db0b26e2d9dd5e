import Foundation
import KeywardCrypto

// The administration API's bodies and replies (`/v1/admin`, openapi.yaml tag `admin`).

/// The JSON body of a token request (openapi.yaml, schema `CreateToken`): the principal, its
/// rules in the CLI's form (`OPERATIONS:SELECTOR`), and an optional lifetime.
public struct CreateTokenBody: Codable, Sendable {
    public var principal: String
    public var rules: [String]
    public var expiresInDays: Int?

    /// A body of these fields.
    public init(principal: String, rules: [String], expiresInDays: Int? = nil) {
        self.principal = principal
        self.rules = rules
        self.expiresInDays = expiresInDays
    }
}

/// The JSON body of a token policy change (openapi.yaml, schema `TokenPolicy`): the new rules
/// in the CLI's form (`OPERATIONS:SELECTOR`), replacing the old ones.
public struct TokenPolicyBody: Codable, Sendable {
    public var rules: [String]

    /// A body of these rules.
    public init(rules: [String]) { self.rules = rules }
}

/// A token just issued: the only time its text is shown. Schema `IssuedToken`.
public struct IssuedTokenReply: WritableReply, Equatable {
    public var id: KeyID
    public var principal: String
    /// The bearer token; never stored, never shown again.
    public var token: String
    public var expiresAt: Date?

    /// A reply of these fields.
    public init(id: KeyID, principal: String, token: String, expiresAt: Date?) {
        self.id = id
        self.principal = principal
        self.token = token
        self.expiresAt = expiresAt
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("id", id.description)
        json.member("principal", principal)
        json.member("token", token)
        json.member("expiresAt", expiresAt)
    }
}

/// A token's record, never its text. Schema `Token`.
public struct TokenReply: WritableReply, Equatable {
    public var id: KeyID
    public var principal: String
    /// Its rules in the CLI's form (`OPERATIONS:SELECTOR`).
    public var rules: [String]
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    /// For an AWS access key, its id (the secret is never shown again).
    public var accessKeyId: String?

    /// A reply of these fields.
    public init(id: KeyID, principal: String, rules: [String], createdAt: Date, expiresAt: Date?, revokedAt: Date?, accessKeyId: String? = nil) {
        self.accessKeyId = accessKeyId
        self.id = id
        self.principal = principal
        self.rules = rules
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("id", id.description)
        json.member("principal", principal)
        json.member("rules", strings: rules)
        json.member("createdAt", createdAt)
        json.member("expiresAt", expiresAt)
        json.member("revokedAt", revokedAt)
        json.member("accessKeyId", accessKeyId)
    }
}

/// An AWS access key just issued (`POST /v1/admin/credentials/aws`): the only time its secret
/// is shown. Schema `IssuedAWSCredential`.
public struct IssuedAWSCredentialReply: WritableReply, Equatable {
    /// The credential's record id (revoke it as a token: `/v1/admin/tokens/{id}/revoke`).
    public var id: KeyID
    public var principal: String
    public var accessKeyId: String
    public var secretAccessKey: String
    public var expiresAt: Date?

    /// A reply of these fields.
    public init(id: KeyID, principal: String, accessKeyId: String, secretAccessKey: String, expiresAt: Date?) {
        self.id = id
        self.principal = principal
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.expiresAt = expiresAt
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("id", id.description)
        json.member("principal", principal)
        json.member("accessKeyId", accessKeyId)
        json.member("secretAccessKey", secretAccessKey)
        json.member("expiresAt", expiresAt)
    }
}

/// A page of tokens. Schema `TokenPage`.
public struct TokenPageReply: WritableReply, Equatable {
    public var tokens: [TokenReply]
    public var nextCursor: KeyID?

    /// A page of these tokens.
    public init(tokens: [TokenReply], nextCursor: KeyID?) {
        self.tokens = tokens
        self.nextCursor = nextCursor
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("tokens") { json in json.array { json in for token in tokens { json.object { token.writeMembers(to: &$0) } } } }
        json.member("nextCursor", nextCursor?.description)
    }
}

/// What a verification found. Schema `Verification`.
public struct VerificationReply: WritableReply, Equatable {
    public var intact: Bool
    public var keys: Int
    public var versions: Int
    public var aliases: Int
    public var tokens: Int
    public var auditEntries: Int
    /// One line per problem, naming the record or entry.
    public var problems: [String]

    /// A reply of these fields.
    public init(intact: Bool, keys: Int, versions: Int, aliases: Int, tokens: Int, auditEntries: Int, problems: [String]) {
        self.intact = intact
        self.keys = keys
        self.versions = versions
        self.aliases = aliases
        self.tokens = tokens
        self.auditEntries = auditEntries
        self.problems = problems
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("intact", intact)
        json.member("keys", keys)
        json.member("versions", versions)
        json.member("aliases", aliases)
        json.member("tokens", tokens)
        json.member("auditEntries", auditEntries)
        json.member("problems", strings: problems)
    }
}

/// One audit entry as the API shows it. Schema `AuditEntry`.
public struct AuditEntryReply: WritableReply, Equatable {
    public var sequence: Int
    public var time: Date
    public var actor: String
    public var operation: String
    public var keyId: String?
    public var version: Int?
    public var outcome: String
    public var detail: String?
    public var requestId: String?
    public var peer: String?
    public var route: String?

    /// A reply of these fields.
    public init(sequence: Int, time: Date, actor: String, operation: String, keyId: String?, version: Int?, outcome: String,
                detail: String?, requestId: String?, peer: String?, route: String?) {
        self.sequence = sequence
        self.time = time
        self.actor = actor
        self.operation = operation
        self.keyId = keyId
        self.version = version
        self.outcome = outcome
        self.detail = detail
        self.requestId = requestId
        self.peer = peer
        self.route = route
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("sequence", sequence)
        json.member("time", time)
        json.member("actor", actor)
        json.member("operation", operation)
        json.member("keyId", keyId)
        json.member("version", version)
        json.member("outcome", outcome)
        json.member("detail", detail)
        json.member("requestId", requestId)
        json.member("peer", peer)
        json.member("route", route)
    }
}

/// A page of audit entries. Schema `AuditPage`.
public struct AuditPageReply: WritableReply, Equatable {
    public var entries: [AuditEntryReply]
    /// The sequence number to pass as `after` for the next page; absent at the log's end.
    public var nextAfter: Int?

    /// A page of these entries.
    public init(entries: [AuditEntryReply], nextAfter: Int?) {
        self.entries = entries
        self.nextAfter = nextAfter
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("entries") { json in json.array { json in for entry in entries { json.object { entry.writeMembers(to: &$0) } } } }
        json.member("nextAfter", nextAfter)
    }
}

/// The audit chain's verdict. Schema `AuditVerification`.
public struct AuditVerificationReply: WritableReply, Equatable {
    public var intact: Bool
    public var entries: Int
    public var problems: [String]
    /// Entries durable in the audit intake, checked, and not yet chained by the sequencer
    /// (PostgreSQL clusters, decision 0034).
    public var unchained: Int?

    /// A reply of these fields.
    public init(intact: Bool, entries: Int, problems: [String], unchained: Int? = nil) {
        self.intact = intact
        self.entries = entries
        self.problems = problems
        self.unchained = unchained
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("intact", intact)
        json.member("entries", entries)
        json.member("problems", strings: problems)
        json.member("unchained", unchained ?? 0)
    }
}

/// A maintenance sweep's result. Schema `Maintenance`.
public struct MaintenanceReply: WritableReply, Equatable {
    /// When the sweep ran; absent when none has run since the server started.
    public var ranAt: Date?
    public var keys: Int
    public var destroyed: Int
    public var rotated: Int
    public var failures: [String]
    /// Destroyed keys whose material the sweep deleted once every node had seen the destruction.
    public var purged = 0
    /// When this node last verified the whole store (periodic verification, on the node
    /// holding the maintenance lease); absent when it has not.
    public var verifiedAt: Date?
    /// Problems that verification found (0: the store was intact).
    public var verificationProblems = 0

    /// A reply of these fields.
    public init(ranAt: Date?, keys: Int, destroyed: Int, rotated: Int, failures: [String]) {
        self.ranAt = ranAt
        self.keys = keys
        self.destroyed = destroyed
        self.rotated = rotated
        self.failures = failures
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("ranAt", ranAt)
        json.member("keys", keys)
        json.member("destroyed", destroyed)
        json.member("rotated", rotated)
        json.member("purged", purged)
        json.member("failures", strings: failures)
        json.member("verifiedAt", verifiedAt)
        json.member("verificationProblems", verificationProblems)
    }
}

/// The nodes serving the store and the lease on its background work. Schema `Cluster`.
public struct ClusterReply: WritableReply, Equatable {
    /// A lease on background work. Schema `Lease`.
    public struct LeaseEntry: Sendable, Equatable, Codable {
        public var name: String
        public var holder: String
        public var token: Int64
        public var expiresAt: Date
        /// A lease entry of these fields.
        public init(name: String, holder: String, token: Int64, expiresAt: Date) {
            self.name = name
            self.holder = holder
            self.token = token
            self.expiresAt = expiresAt
        }
    }
    /// A node's last heartbeat. Schema `Node`.
    public struct NodeEntry: Sendable, Equatable, Codable {
        public var id: String
        public var seenGeneration: Int64
        public var heartbeatAt: Date
        /// How long ago, by the store's clock, the node last reported.
        public var ageMilliseconds: Int
        /// A node entry of these fields.
        public init(id: String, seenGeneration: Int64, heartbeatAt: Date, ageMilliseconds: Int) {
            self.id = id
            self.seenGeneration = seenGeneration
            self.heartbeatAt = heartbeatAt
            self.ageMilliseconds = ageMilliseconds
        }
    }
    /// The node that answered.
    public var node: String?
    public var leases: [LeaseEntry]
    public var nodes: [NodeEntry]

    /// A reply of these fields.
    public init(node: String?, leases: [LeaseEntry], nodes: [NodeEntry]) {
        self.node = node
        self.leases = leases
        self.nodes = nodes
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("node", node)
        json.member("leases") { json in
            json.array { json in
                for lease in leases {
                    json.object { json in
                        json.member("name", lease.name)
                        json.member("holder", lease.holder)
                        json.member("token", Int(lease.token))
                        json.member("expiresAt", lease.expiresAt)
                    }
                }
            }
        }
        json.member("nodes") { json in
            json.array { json in
                for node in nodes {
                    json.object { json in
                        json.member("id", node.id)
                        json.member("seenGeneration", Int(node.seenGeneration))
                        json.member("heartbeatAt", node.heartbeatAt)
                        json.member("ageMilliseconds", node.ageMilliseconds)
                    }
                }
            }
        }
    }
}

/// A KEK rotation's result. Schema `KEKRotation`.
public struct KEKRotationReply: WritableReply, Equatable {
    /// The new active KEK.
    public var activeKek: KeyID
    /// Records rewritten under it.
    public var records: Int

    /// A reply of these fields.
    public init(activeKek: KeyID, records: Int) {
        self.activeKek = activeKek
        self.records = records
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("activeKek", activeKek.description)
        json.member("records", records)
    }
}

/// `POST /v1/admin/audit/export`: the entries after `after` (0, or absent: from the first)
/// through `through` (absent: the newest, at most 100,000). Schema `AuditExportRequest`.
public struct AuditExportBody: Codable, Sendable {
    public var after: Int64?
    public var through: Int64?

    /// A body of these fields.
    public init(after: Int64? = nil, through: Int64? = nil) {
        self.after = after
        self.through = through
    }
}

/// A run of the audit log as a segment file (what `keyward audit export` writes), signed by
/// the store's audit signing key; `keyward audit verify --segment` checks it anywhere.
/// Schema `AuditSegment`.
public struct AuditSegmentReply: WritableReply, Equatable {
    /// The segment file's bytes.
    public var segment: [UInt8]
    /// The first and last entries' sequence numbers.
    public var first: Int64
    public var last: Int64
    /// Entries in the segment.
    public var entries: Int
    /// The audit signing key that signed it.
    public var signerKeyId: String

    /// A reply of these fields.
    public init(segment: [UInt8], first: Int64, last: Int64, entries: Int, signerKeyId: String) {
        self.segment = segment
        self.first = first
        self.last = last
        self.entries = entries
        self.signerKeyId = signerKeyId
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("segment", base64: segment)
        json.member("first", Int(first))
        json.member("last", Int(last))
        json.member("entries", entries)
        json.member("signerKeyId", signerKeyId)
    }

    private enum CodingKeys: String, CodingKey { case segment, first, last, entries, signerKeyId }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        segment = try container.decode(Base64Bytes.self, forKey: .segment).value
        first = try container.decode(Int64.self, forKey: .first)
        last = try container.decode(Int64.self, forKey: .last)
        entries = try container.decode(Int.self, forKey: .entries)
        signerKeyId = try container.decode(String.self, forKey: .signerKeyId)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Base64Bytes(segment), forKey: .segment)
        try container.encode(first, forKey: .first)
        try container.encode(last, forKey: .last)
        try container.encode(entries, forKey: .entries)
        try container.encode(signerKeyId, forKey: .signerKeyId)
    }
}

/// The public key that signs the store's audit segments (PEM). Schema `AuditSigner`.
public struct AuditSignerReply: WritableReply, Equatable {
    public var publicKeyPem: String

    /// A reply of this field.
    public init(publicKeyPem: String) { self.publicKeyPem = publicKeyPem }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("publicKeyPem", publicKeyPem)
    }
}

/// `POST /v1/admin/backup`: the recipient to seal the backup to, as the text of its public key
/// file (`keyward backup keygen`); it must be one the server pins (`backup.recipients`); with
/// `keys` (ids or aliases), only those keys. Schema `BackupRequest`.
public struct BackupBody: Codable, Sendable {
    public var recipient: String
    public var keys: [String]?

    /// A body of these fields.
    public init(recipient: String, keys: [String]? = nil) {
        self.recipient = recipient
        self.keys = keys
    }
}

/// A recipient backup: the bundle, signed by the store's backup signing key. Schema `Backup`.
public struct BackupReply: WritableReply, Equatable {
    /// The bundle's bytes (what `keyward backup create` writes to a file).
    public var bundle: [UInt8]
    /// Keys in the bundle.
    public var keys: Int

    /// A reply of these fields.
    public init(bundle: [UInt8], keys: Int) {
        self.bundle = bundle
        self.keys = keys
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("bundle", base64: bundle)
        json.member("keys", keys)
    }

    private enum CodingKeys: String, CodingKey { case bundle, keys }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        bundle = try container.decode(Base64Bytes.self, forKey: .bundle).value
        keys = try container.decode(Int.self, forKey: .keys)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Base64Bytes(bundle), forKey: .bundle)
        try container.encode(keys, forKey: .keys)
    }
}

/// `POST /v1/admin/restore`: a recipient bundle sealed to the server's own identity
/// (`backup.identity`) and signed by a store it trusts (`backup.signers`). With `addKeys`, the
/// bundle's keys are added to a store that may hold others (none of them, nor their aliases);
/// without, the store must hold no keys. Schema `RestoreRequest`.
public struct RestoreBody: Codable, Sendable {
    public var bundle: Base64Bytes
    public var addKeys: Bool?

    /// A body of these fields.
    public init(bundle: [UInt8], addKeys: Bool? = nil) {
        self.bundle = Base64Bytes(bundle)
        self.addKeys = addKeys
    }
}

/// A restore's result. Schema `Restore`.
public struct RestoreReply: WritableReply, Equatable {
    /// Keys restored.
    public var restored: Int

    /// A reply of these fields.
    public init(restored: Int) { self.restored = restored }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("restored", restored)
    }
}
