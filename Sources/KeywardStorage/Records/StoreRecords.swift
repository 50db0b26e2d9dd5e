import Foundation
import KeywardCrypto

/// The store's identity and root-of-trust descriptor: one row, written at `init`.
///
/// `rootOfTrust` is the kind (`passphrase`, `key-file`, `pkcs11`) and `rootParameters` its
/// public parameters (a KDF record, a key-file fingerprint, a token and key label); never a
/// secret.
public struct StoreHeader: Sendable, Hashable {
    /// Random id of this store, bound into every sealed record's AAD.
    public var storeID: KeyID
    /// Layout version of the schema this header was written with.
    public var formatVersion: Int
    /// Root-of-trust kind.
    public var rootOfTrust: String
    /// Root-of-trust public parameters (JSON).
    public var rootParameters: [UInt8]
    /// The KEK that seals new key versions.
    public var activeKEK: KeyID
    /// When the store was created.
    public var createdAt: Date
    /// MAC over the header under the active KEK's metadata key.
    public var mac: [UInt8]

    public init(storeID: KeyID, formatVersion: Int, rootOfTrust: String, rootParameters: [UInt8], activeKEK: KeyID, createdAt: Date, mac: [UInt8]) {
        self.storeID = storeID
        self.formatVersion = formatVersion
        self.rootOfTrust = rootOfTrust
        self.rootParameters = rootParameters
        self.activeKEK = activeKEK
        self.createdAt = createdAt
        self.mac = mac
    }
}

/// A storage KEK, wrapped by the root key (AES-KWP or inside a PKCS#11 token).
public struct KEKRecord: Sendable, Hashable {
    public var id: KeyID
    /// The KEK as the root of trust wrapped it.
    public var wrapped: [UInt8]
    public var createdAt: Date
    /// `active` (seals new versions), `retired` (still opens what it sealed until a rewrap ends).
    public var state: String

    public init(id: KeyID, wrapped: [UInt8], createdAt: Date, state: String) {
        self.id = id
        self.wrapped = wrapped
        self.createdAt = createdAt
        self.state = state
    }
}

/// A key's mutable metadata, as stored: an opaque canonical body the `Keyward` layer encodes and
/// MACs, plus the columns lists filter on (copies of body fields, checked against it on load).
public struct KeyRow: Sendable, Hashable {
    public var id: KeyID
    /// Canonical encoding of the key's metadata.
    public var body: [UInt8]
    /// Compare-and-swap counter; every update writes `revision + 1`.
    public var revision: Int64
    /// MAC over (id, revision, body).
    public var mac: [UInt8]
    /// Queryable copies: spec and lifecycle state names, creation time.
    public var spec: String
    public var state: String
    public var createdAt: Date
    /// Tags as key/value pairs, for filtering.
    public var tags: [String: String]

    public init(id: KeyID, body: [UInt8], revision: Int64, mac: [UInt8], spec: String, state: String, createdAt: Date, tags: [String: String]) {
        self.id = id
        self.body = body
        self.revision = revision
        self.mac = mac
        self.spec = spec
        self.state = state
        self.createdAt = createdAt
        self.tags = tags
    }
}

/// One version of a key: its sealed material and its own small metadata.
public struct VersionRow: Sendable, Hashable {
    public var keyID: KeyID
    public var version: UInt32
    /// The KEK that sealed `sealed`.
    public var kekID: KeyID
    /// Key material sealed under the KEK; empty once destroyed (the row stays as a tombstone).
    public var sealed: [UInt8]
    /// Canonical metadata body (state, encryption counter reservation, times).
    public var body: [UInt8]
    public var revision: Int64
    public var mac: [UInt8]

    public init(keyID: KeyID, version: UInt32, kekID: KeyID, sealed: [UInt8], body: [UInt8], revision: Int64, mac: [UInt8]) {
        self.keyID = keyID
        self.version = version
        self.kekID = kekID
        self.sealed = sealed
        self.body = body
        self.revision = revision
        self.mac = mac
    }
}

/// An alias: a name pointing at a key.
public struct AliasRow: Sendable, Hashable {
    public var name: String
    public var keyID: KeyID
    public var revision: Int64
    public var mac: [UInt8]

    public init(name: String, keyID: KeyID, revision: Int64, mac: [UInt8]) {
        self.name = name
        self.keyID = keyID
        self.revision = revision
        self.mac = mac
    }
}

/// An audit entry in the intake (decision 0034): durable, MAC'd by the node that wrote it, and
/// waiting for the cluster's sequencer to chain it into the log.
///
/// Invariant: `mac` is the writing node's MAC under the store's record MAC key over `node`, `body`, `keyID`
/// and `time`; the sequencer chains no row whose MAC fails.
public struct AuditIntakeRow: Sendable, Hashable {
    /// The store's number for the row (0 before it is inserted): the order the sequencer takes.
    public var id: Int64
    /// The node that wrote it.
    public var node: String
    /// The canonical entry body, as it will be chained.
    public var body: [UInt8]
    /// Queryable copy of the key the body names.
    public var keyID: KeyID?
    public var time: Date
    public var mac: [UInt8]

    public init(id: Int64 = 0, node: String, body: [UInt8], keyID: KeyID?, time: Date, mac: [UInt8]) {
        self.id = id
        self.node = node
        self.body = body
        self.keyID = keyID
        self.time = time
        self.mac = mac
    }
}

/// One audit entry, hash-chained to the one before it and MAC'd.
public struct AuditRow: Sendable, Hashable {
    /// Position in the chain, from 1, without gaps.
    public var sequence: Int64
    /// Canonical entry body (time, actor, operation, key, version, outcome, detail, anchors).
    public var body: [UInt8]
    /// Hash of the previous entry (32 zero bytes for the first).
    public var previousHash: [UInt8]
    /// SHA-256(previousHash || sequence || body).
    public var hash: [UInt8]
    /// For a batch's last entry, the MAC over `hash` and the revision index's digest; empty for
    /// the others.
    public var mac: [UInt8]
    /// Queryable copy of the key the body names.
    public var keyID: KeyID?
    /// The revisions this entry anchors (also named in `body`), which the store writes into the
    /// revision index in the same transaction as the entry.
    public var anchors: [RevisionAnchorRow]
    public var time: Date
    /// Queryable copy of the entry id the body names (entries that came through the audit
    /// intake, decision 0034): the sequencer refuses a second entry with the same id. Kept by
    /// stores with an intake; nil elsewhere.
    public var entry: String?

    public init(sequence: Int64, body: [UInt8], previousHash: [UInt8], hash: [UInt8], mac: [UInt8], keyID: KeyID?,
                anchors: [RevisionAnchorRow] = [], time: Date, entry: String? = nil) {
        self.entry = entry
        self.sequence = sequence
        self.body = body
        self.previousHash = previousHash
        self.hash = hash
        self.mac = mac
        self.keyID = keyID
        self.anchors = anchors
        self.time = time
    }
}

/// One row of the revision index: the newest revision the audit log records for a mutable
/// record (a key, version, token or alias, named by `record`, an opaque identity the `Keyward`
/// layer encodes), and whether that revision deleted it. The index carries no MAC of its own:
/// the audit log's newest batch MAC covers a digest of all of it.
public struct RevisionAnchorRow: Sendable, Hashable {
    /// The record's identity.
    public var record: [UInt8]
    /// Its newest audited revision.
    public var revision: Int64
    /// True when that revision removed the record (a deleted alias).
    public var deleted: Bool

    public init(record: [UInt8], revision: Int64, deleted: Bool) {
        self.record = record
        self.revision = revision
        self.deleted = deleted
    }
}

/// The audit head and the whole revision index, read in one transaction.
/// The signed statement that stands for the start of the audit log once it was pruned: the
/// `Keyward` layer's canonical body (the last pruned entry's sequence and chain hash, and the
/// revision index as of that entry) and the store's audit signer's signature over it. The
/// store keeps it opaque: one row, replaced by each pruning.
public struct AuditCheckpointRow: Sendable, Hashable {
    /// The last pruned entry; the log continues at `sequence + 1`.
    public var sequence: Int64
    /// The canonical body.
    public var body: [UInt8]
    /// The signature over `body`.
    public var signature: [UInt8]

    public init(sequence: Int64, body: [UInt8], signature: [UInt8]) {
        self.sequence = sequence
        self.body = body
        self.signature = signature
    }
}

public struct AnchorSnapshot: Sendable {
    /// The newest audit entry, if any.
    public var head: AuditRow?
    /// Every row of the revision index.
    public var anchors: [RevisionAnchorRow]

    public init(head: AuditRow?, anchors: [RevisionAnchorRow]) {
        self.head = head
        self.anchors = anchors
    }
}

/// What to list, and from where.
public struct KeyFilter: Sendable, Hashable {
    public var state: String?
    public var tag: (key: String, value: String)?
    public var alias: String?

    public init(state: String? = nil, tag: (key: String, value: String)? = nil, alias: String? = nil) {
        self.state = state
        self.tag = tag
        self.alias = alias
    }

    public static func == (lhs: KeyFilter, rhs: KeyFilter) -> Bool {
        lhs.state == rhs.state && lhs.alias == rhs.alias && lhs.tag?.key == rhs.tag?.key && lhs.tag?.value == rhs.tag?.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(state)
        hasher.combine(alias)
        hasher.combine(tag?.key)
        hasher.combine(tag?.value)
    }
}

/// An API token: the SHA-256 of its text (never the text), a MAC'd body with principal, policy
/// and expiry, and a revision.
public struct TokenRow: Sendable, Hashable {
    public var id: KeyID
    public var hash: [UInt8]
    public var body: [UInt8]
    public var revision: Int64
    public var mac: [UInt8]

    public init(id: KeyID, hash: [UInt8], body: [UInt8], revision: Int64, mac: [UInt8]) {
        self.id = id
        self.hash = hash
        self.body = body
        self.revision = revision
        self.mac = mac
    }
}
