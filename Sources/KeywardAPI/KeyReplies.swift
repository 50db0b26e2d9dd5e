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
    /// The oldest version whose material is kept, when older ones were destroyed.
    public var minAvailableVersion: UInt32?
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
    /// True when every use must carry a non-empty encryption context (absent otherwise).
    public var contextRequired: Bool?

    /// A reply of these fields.
    public init(id: KeyID, spec: KeySpec, state: String, description: String, aliases: [String], tags: [String: String],
                createdAt: Date, stateChangedAt: Date, currentVersion: UInt32, minDecryptionVersion: UInt32, rotationPeriodDays: Int?,
                nextRotationAt: Date?, destructionDate: Date?, expiresAt: Date?, exportable: Bool, backupAllowed: Bool, origin: String,
                minAvailableVersion: UInt32? = nil, contextRequired: Bool? = nil) {
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
        self.minAvailableVersion = minAvailableVersion
        self.contextRequired = contextRequired
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
        json.member("minAvailableVersion", minAvailableVersion.map(Int.init))
        json.member("rotationPeriodDays", rotationPeriodDays)
        json.member("nextRotationAt", nextRotationAt)
        json.member("destructionDate", destructionDate)
        json.member("expiresAt", expiresAt)
        json.member("exportable", exportable)
        json.member("backupAllowed", backupAllowed)
        json.member("origin", origin)
        if let contextRequired { json.member("contextRequired", contextRequired) }
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

/// A public key: its spec, its bytes (SubjectPublicKeyInfo DER, or the raw encoding for post-quantum
/// specs) and PEM where the spec has one. Schema `PublicKey`.
public struct PublicKeyReply: WritableReply, Equatable {
    /// The key reference the request named.
    public var keyReference: String
    /// The key's spec.
    public var spec: KeySpec
    /// The public key's bytes.
    public var publicKey: Base64Bytes
    /// The public key as PEM, where the spec has one.
    public var publicKeyPem: String?

    /// A reply of these fields.
    public init(keyReference: String, spec: KeySpec, publicKey: Base64Bytes, publicKeyPem: String?) {
        self.keyReference = keyReference
        self.spec = spec
        self.publicKey = publicKey
        self.publicKeyPem = publicKeyPem
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("keyReference", keyReference)
        json.member("spec", spec.rawValue)
        json.member("publicKey", base64: publicKey.value)
        json.member("publicKeyPem", publicKeyPem)
    }
}

/// A data key pair: the public key in the clear and the private key sealed under a Keyward key.
public struct DataKeyPairReply: WritableReply, Equatable {
    /// The pair's spec.
    public var spec: KeySpec
    /// The pair's public key.
    public var publicKey: Base64Bytes
    /// The public key as PEM, where the spec has one.
    public var publicKeyPem: String?
    /// The private key, sealed under the Keyward key.
    public var privateKeyCiphertext: Base64Bytes
    /// The Keyward key that sealed it.
    public var keyId: KeyID
    /// The key version that sealed it.
    public var version: UInt32

    /// A reply of these fields.
    public init(spec: KeySpec, publicKey: Base64Bytes, publicKeyPem: String?, privateKeyCiphertext: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.spec = spec
        self.publicKey = publicKey
        self.publicKeyPem = publicKeyPem
        self.privateKeyCiphertext = privateKeyCiphertext
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("spec", spec.rawValue)
        json.member("publicKey", base64: publicKey.value)
        json.member("publicKeyPem", publicKeyPem)
        json.member("privateKeyCiphertext", base64: privateKeyCiphertext.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// A wrapping key the store issued for one import. Schema `ImportWrappingKey`.
public struct ImportWrappingKeyReply: WritableReply, Equatable {
    /// The wrapping key's id, to name in the import.
    public var keyId: KeyID
    /// Its spec.
    public var spec: KeySpec
    /// Its public key.
    public var publicKey: Base64Bytes
    /// Its public key as PEM.
    public var publicKeyPem: String?
    /// When it stops working.
    public var expiresAt: Date
    /// How material is wrapped to it.
    public var wrapping: String

    /// A reply of these fields.
    public init(keyId: KeyID, spec: KeySpec, publicKey: Base64Bytes, publicKeyPem: String?, expiresAt: Date, wrapping: String) {
        self.keyId = keyId
        self.spec = spec
        self.publicKey = publicKey
        self.publicKeyPem = publicKeyPem
        self.expiresAt = expiresAt
        self.wrapping = wrapping
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("keyId", keyId.description)
        json.member("spec", spec.rawValue)
        json.member("publicKey", base64: publicKey.value)
        json.member("publicKeyPem", publicKeyPem)
        json.member("expiresAt", expiresAt)
        json.member("wrapping", wrapping)
    }
}

/// An alias and the key reference it was pointed at.
public struct AliasReply: WritableReply, Equatable {
    /// The alias.
    public var alias: String
    /// The key reference the request named.
    public var key: String

    /// A reply of these fields.
    public init(alias: String, key: String) {
        self.alias = alias
        self.key = key
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("alias", alias)
        json.member("key", key)
    }
}

/// A probe's answer (`ok`, `ready`, `shutting down`, `store unavailable`). Schema `Status`.
public struct StatusReply: WritableReply, Equatable {
    /// The status.
    public var status: String

    /// A reply of this status.
    public init(status: String) { self.status = status }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("status", status)
    }
}
