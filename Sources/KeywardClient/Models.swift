import Foundation
import KeywardAPI

/// A key as the service describes it.
public struct KeyInfo: Sendable, Equatable {
    public var id: String
    public var spec: String
    public var purpose: String
    public var state: String
    public var description: String
    public var aliases: [String]
    public var tags: [String: String]
    public var currentVersion: Int
    public var minDecryptionVersion: Int
    public var rotationPeriodDays: Int?
    public var exportable: Bool
    public var origin: String
    /// The oldest version whose material is kept, when older ones were destroyed.
    public var minAvailableVersion: Int? = nil
    /// When it was created.
    public var createdAt: Date? = nil
    /// When a scheduled destruction happens, if one is scheduled.
    public var destructionDate: Date? = nil
    /// Whether backups include it.
    public var backupAllowed: Bool? = nil
    /// True when every use must carry a non-empty encryption context.
    public var contextRequired: Bool? = nil
}

/// A page of keys and the cursor for the next one.
public struct KeyList: Sendable, Equatable {
    public var keys: [KeyInfo]
    public var nextCursor: String?
}

extension KeyInfo {
    /// The model of a key reply.
    init(_ reply: KeyReply) {
        self.init(id: reply.id.description, spec: reply.spec.rawValue, purpose: reply.purpose.rawValue, state: reply.state,
                  description: reply.description, aliases: reply.aliases, tags: reply.tags, currentVersion: Int(reply.currentVersion),
                  minDecryptionVersion: Int(reply.minDecryptionVersion), rotationPeriodDays: reply.rotationPeriodDays,
                  exportable: reply.exportable, origin: reply.origin, minAvailableVersion: reply.minAvailableVersion.map(Int.init),
                  createdAt: reply.createdAt, destructionDate: reply.destructionDate, backupAllowed: reply.backupAllowed,
                  contextRequired: reply.contextRequired)
    }
}

extension KeyList {
    /// The model of a key page reply.
    init(_ reply: KeyPageReply) {
        self.init(keys: reply.keys.map(KeyInfo.init), nextCursor: reply.nextCursor?.description)
    }
}

/// A ciphertext and the key version that made it.
public struct Ciphertext: Sendable, Equatable {
    /// The Keyward ciphertext (names its key and version).
    public var bytes: [UInt8]
    public var keyID: String
    public var version: Int
}

/// A signature and the key version that made it.
public struct Signature: Sendable, Equatable {
    public var bytes: [UInt8]
    public var keyID: String
    public var version: Int
}

/// A MAC tag and the key version that made it.
public struct MACTag: Sendable, Equatable {
    public var bytes: [UInt8]
    public var keyID: String
    public var version: Int
}

/// One item's outcome in a batch.
public typealias BatchResult<T: Sendable> = Result<T, KeywardClientError>
