import Foundation
import KeywardCrypto

/// A key as the service describes it (create, describe, update, rotate, transitions, import).
/// Schema `Key`. Times are ISO 8601 in whole seconds.
public struct KeyReply: WritableReply, Equatable {
    /// The key's id.
    public var id: KeyID
    /// Its spec, and so its one purpose.
    public var spec: KeySpec
    /// The spec's purpose.
    public var purpose: KeyPurpose
    /// Its lifecycle state (`active`, `disabled`, ...).
    public var state: String
    /// Free text.
    public var description: String
    /// Its aliases.
    public var aliases: [String]
    /// Its tags.
    public var tags: [String: String]
    /// When it was created.
    public var createdAt: Date
    /// When its state last changed.
    public var stateChangedAt: Date
    /// The version that encrypts and signs.
    public var currentVersion: UInt32
    /// The oldest version that may still decrypt and verify.
    public var minDecryptionVersion: UInt32
    /// Days between automatic rotations, if any.
    public var rotationPeriodDays: Int?
    /// When the next automatic rotation is due, if any.
    public var nextRotationAt: Date?
    /// When a scheduled destruction happens, if one is scheduled.
    public var destructionDate: Date?
    /// When the key stops working, if ever.
    public var expiresAt: Date?
    /// Whether its material may be exported.
    public var exportable: Bool
    /// Whether backups include it.
    public var backupAllowed: Bool
    /// `keyward` (generated) or `imported`.
    public var origin: String

    /// A reply of these fields.
    public init(id: KeyID, spec: KeySpec, state: String, description: String, aliases: [String], tags: [String: String],
                createdAt: Date, stateChangedAt: Date, currentVersion: UInt32, minDecryptionVersion: UInt32, rotationPeriodDays: Int?,
                nextRotationAt: Date?, destructionDate: Date?, expiresAt: Date?, exportable: Bool, backupAllowed: Bool, origin: String) {
        self.id = id
        self.spec = spec
        self.purpose = spec.purpose
        self.state = state
        self.description = description
        self.aliases = aliases
        self.tags = tags
        self.createdAt = createdAt
        self.stateChangedAt = stateChangedAt
        self.currentVersion = currentVersion
        self.minDecryptionVersion = minDecryptionVersion
        self.rotationPeriodDays = rotationPeriodDays
        self.nextRotationAt = nextRotationAt
        self.destructionDate = destructionDate
        self.expiresAt = expiresAt
        self.exportable = exportable
        self.backupAllowed = backupAllowed
        self.origin = origin
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("id", id.description)
        json.member("spec", spec.rawValue)
        json.member("purpose", purpose.rawValue)
        json.member("state", state)
        json.member("description", description)
        json.member("aliases", strings: aliases)
        json.member("tags", dictionary: tags)
        json.member("createdAt", createdAt)
        json.member("stateChangedAt", stateChangedAt)
        json.member("currentVersion", Int(currentVersion))
        json.member("minDecryptionVersion", Int(minDecryptionVersion))
        json.member("rotationPeriodDays", rotationPeriodDays)
        json.member("nextRotationAt", nextRotationAt)
        json.member("destructionDate", destructionDate)
        json.member("expiresAt", expiresAt)
        json.member("exportable", exportable)
        json.member("backupAllowed", backupAllowed)
        json.member("origin", origin)
    }
}

/// A page of keys and the cursor for the next page. Schema `KeyPage`.
public struct KeyPageReply: WritableReply, Equatable {
    /// The keys of this page.
    public var keys: [KeyReply]
    /// Pass as `after` for the next page; absent on the last page.
    public var nextCursor: KeyID?

    /// A reply of these fields.
    public init(keys: [KeyReply], nextCursor: KeyID?) {
        self.keys = keys
        self.nextCursor = nextCursor
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("keys") { json in
            json.array { json in
                for key in keys { json.object { key.writeMembers(to: &$0) } }
            }
        }
        json.member("nextCursor", nextCursor?.description)
    }
}

extension JSONDecoder {
    /// The reader of the API's replies: ISO 8601 times, as the server writes them.
    public static var keywardAPI: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
