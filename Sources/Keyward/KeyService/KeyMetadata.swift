import Foundation
import KeywardCrypto

/// A key's metadata: what the `keys` row's body holds, MAC'd with its id and revision.
public struct KeyMetadata: Sendable, Codable, Hashable {
    /// The key's id.
    public var id: KeyID
    /// Its spec, fixed at creation (and so its purpose).
    public var spec: KeySpec
    /// Lifecycle state.
    public var state: KeyState
    /// When the key was created and when its state last changed.
    public var createdAt: Date
    /// When the state last changed.
    public var stateChangedAt: Date
    /// Free text, at most 1,024 characters.
    public var description: String
    /// Tags for selection and policy (at most 50, names and values at most 128 characters).
    public var tags: [String: String]
    /// Whether the key's material may ever leave the store (fixed at creation).
    public var exportable: Bool
    /// Whether backups may include this key (fixed at creation; signing keys default to no).
    public var backupAllowed: Bool
    /// Automatic rotation period, if any (1 to 2,560 days).
    public var rotationPeriodDays: Int?
    /// When the next automatic rotation is due.
    public var nextRotationAt: Date?
    /// The newest version: it encrypts, signs and MACs.
    public var currentVersion: UInt32
    /// The oldest version that may still decrypt or verify.
    public var minDecryptionVersion: UInt32
    /// The oldest version whose material is kept: the versions below it were destroyed by
    /// `KeyService.destroyVersions` (nil: none were). Never above `minDecryptionVersion`.
    public var minAvailableVersion: UInt32? = nil
    /// For `pendingDestruction`: when the key is destroyed.
    public var destructionDate: Date?
    /// Where the material came from: `keyward` (generated), `imported` (created from caller
    /// material) or `external` (created empty, its material imported into it later).
    public var origin: String
    /// After this time the key refuses every use (import wrapping keys expire after 24 hours).
    public var expiresAt: Date?
    /// For an import wrapping key: the principal it was issued to. Set only by
    /// `createImportWrappingKey`; no request can set it, and the MAC over the metadata keeps it.
    public var importWrappingFor: String?
    /// True when every encryption, decryption and data key under the key must carry a non-empty
    /// encryption context (what Transit's derived keys ask of their callers); fixed at creation.
    public var contextRequired: Bool? = nil
    /// True while the key holds no material: it was created to receive imported material
    /// (`KeyService.createKeyForImport`), or its imported material was deleted or expired. Such a
    /// key stays pre-active, and cannot be enabled, until `importMaterial` brings material in.
    public var awaitingMaterial: Bool? = nil
    /// For a key that receives imported material: a commitment to that material (base64 of SHA-256 over
    /// a domain label, the key's id and the material), so that a later import must bring back the
    /// same material. It is not the material, and key material is too random to search for.
    public var importedMaterialDigest: String? = nil
    /// For an import wrapping key issued for one key (`KeyService.importParameters`): that key.
    /// Set only there; no request can set it, and the MAC over the metadata keeps it.
    public var importTarget: KeyID? = nil
    /// The key's own policy, if one was set (`KeyService.setKeyPolicy`); nil leaves access to
    /// callers' policies and grants alone.
    public var keyPolicy: KeyPolicy? = nil

    /// Whether the key's material came from outside Keyward (`importKey`, or `importMaterial`
    /// into a key created for it): such a key is never rotated by Keyward.
    public var holdsImportedMaterial: Bool { origin == "imported" || origin == KeyMetadata.externalOrigin }

    /// The origin of a key created to receive imported material.
    public static let externalOrigin = "external"
}

/// A key version's own metadata: what the `key_versions` row's body holds.
public struct VersionMetadata: Sendable, Codable, Hashable {
    /// `active`, or `destroyed` (material removed, row kept as a tombstone).
    public var state: String
    public var createdAt: Date
    /// Random-nonce encryptions reserved (persisted in blocks before use), for the AES-GCM
    /// 2^32 limit: a version rotates long before it.
    public var encryptionsReserved: UInt64
    /// How a version after the first came to be: `scheduled` (the key's rotation period) or
    /// `requested` (a rotate call, or the version's encryption limit). Nil for the first
    /// version and for versions written before this was recorded.
    public var rotation: String? = nil
}

/// One version of a key as `KeyService.versions` describes it (no material).
public struct KeyVersionInfo: Sendable, Hashable {
    /// The version number (1 is the first).
    public var number: UInt32
    /// When it was created.
    public var createdAt: Date
    /// `active`, or `destroyed` (material removed).
    public var state: String
    /// How it came to be (`VersionMetadata.rotation`).
    public var rotation: String?
}

/// What `describe` and `list` return: metadata plus aliases.
public struct KeyDescription: Sendable, Hashable, Codable {
    /// The metadata.
    public var metadata: KeyMetadata
    /// The key's aliases.
    public var aliases: [String]
    /// The key's purpose (from its spec).
    public var purpose: KeyPurpose { metadata.spec.purpose }
}

/// One page of `list`.
public struct KeyPage: Sendable, Hashable {
    /// The keys on this page.
    public var keys: [KeyDescription]
    /// Pass to the next call to continue; nil on the last page.
    public var nextCursor: KeyID?
}

/// Deterministic JSON: sorted keys, dates as seconds since 1970, so that a body MACs the same
/// every time it is encoded.
enum CanonicalJSON {
    static func encode<T: Encodable>(_ value: T) throws(KeywardError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        do { return [UInt8](try encoder.encode(value)) } catch { throw .invalidArgument("cannot encode \(T.self): \(error)") }
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(KeywardError) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do { return try decoder.decode(type, from: Data(bytes)) } catch { throw .integrityFailure("\(what) does not decode") }
    }
}
