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
    /// For changes to stored records: each changed record's new revision, which the audit log
    /// anchors (replay detection, decision 0005).
    public var anchors: [RevisionAnchor]
    /// Request id and peer address, for the service.
    public var requestID: String?
    /// The client's address, for the service.
    public var peer: String?
    /// The HTTP method and route template, for the service (`POST /v1/keys/{key}/encrypt`).
    public var route: String?
    /// For an entry a node writes to the audit intake (decision 0034): a random UUID, unique to
    /// the entry, by which the sequencer refuses a replayed copy of its row.
    public var entry: String?

    /// An event; `outcome` defaults to `ok`.
    public init(time: Date, actor: String, operation: String, keyID: KeyID? = nil, version: UInt32? = nil,
                outcome: String = "ok", detail: String? = nil, anchors: [RevisionAnchor] = [], requestID: String? = nil, peer: String? = nil, route: String? = nil) {
        self.time = time
        self.actor = actor
        self.operation = operation
        self.keyID = keyID
        self.version = version
        self.outcome = outcome
        self.detail = detail
        self.anchors = anchors
        self.requestID = requestID
        self.peer = peer
        self.route = route
    }
}

extension AuditEvent {
    private enum CodingKeys: String, CodingKey {
        case time, actor, operation, keyID, version, outcome, detail, anchors, requestID, peer, route, entry
    }

    /// Decodes an entry's body; members the body leaves out (every optional one, and `anchors`
    /// when nothing was anchored) take their empty values.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(time: try container.decode(Date.self, forKey: .time), actor: try container.decode(String.self, forKey: .actor),
                  operation: try container.decode(String.self, forKey: .operation),
                  keyID: try container.decodeIfPresent(KeyID.self, forKey: .keyID), version: try container.decodeIfPresent(UInt32.self, forKey: .version),
                  outcome: try container.decode(String.self, forKey: .outcome), detail: try container.decodeIfPresent(String.self, forKey: .detail),
                  anchors: try container.decodeIfPresent([RevisionAnchor].self, forKey: .anchors) ?? [],
                  requestID: try container.decodeIfPresent(String.self, forKey: .requestID), peer: try container.decodeIfPresent(String.self, forKey: .peer),
                  route: try container.decodeIfPresent(String.self, forKey: .route))
        entry = try container.decodeIfPresent(String.self, forKey: .entry)
    }

    /// Records that this event's change left `record` at `revision` (deleted by it when `deleted`).
    public mutating func anchor(_ record: AnchoredRecord, _ revision: Int64, deleted: Bool = false) {
        anchors.append(RevisionAnchor(record, revision, deleted: deleted))
    }
}
