import Foundation

/// Bytes carried in JSON as standard padded base64; anything else is refused, naming the field.
public struct Base64Bytes: Codable, Sendable, Hashable {
    /// The bytes.
    public var value: [UInt8]

    /// Wraps `value`.
    public init(_ value: [UInt8]) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Base64.decode(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not standard padded base64")
        }
        self.value = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Base64.encode(value))
    }
}

// MARK: - The fast path for hot bodies

/// A body `JSONScanner` can read without `JSONDecoder`. `init?(json:in:)` answers only for a
/// body that `JSONDecoder` would decode to the same value, and returns nil for anything else
/// (which `JSONDecoder` then decodes or refuses with its message).
package protocol FastJSONBody: Decodable {
    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>)
}

extension FastJSONBody {
    /// The body read from `bytes`, or nil to leave it to `JSONDecoder`.
    package static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Self? {
        guard let node = JSONScanner.parse(bytes) else { return nil }
        return Self(json: node, in: bytes)
    }
}

/// Field access on a scanned object, as the Decodable bodies read it.
package struct ScannedObject {
    let members: [JSONScanner.Member]
    let bytes: UnsafeBufferPointer<UInt8>

    package init?(_ node: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard case .object(let members) = node else { return nil }
        self.members = members
        self.bytes = bytes
    }

    /// True when every member is one of `names` and none is null: a body with any other field,
    /// or a null one, is left to the slow path, which refuses it naming the field (`UnknownFields`).
    package func only(_ names: StaticString...) -> Bool {
        members.allSatisfy { member in
            if case .null = member.value { return false }
            return names.contains { JSONScanner.key(member.key, in: bytes, is: $0) }
        }
    }

    /// The member named `name`, or nil when absent.
    package func value(_ name: StaticString) -> JSONScanner.Node? {
        for member in members where JSONScanner.key(member.key, in: bytes, is: name) {
            return member.value
        }
        return nil
    }

    /// An optional `Base64Bytes` field: `.some(nil)` when absent, nil when present but not a plain
    /// canonical base64 string (left to JSONDecoder).
    package func bytes(_ name: StaticString) -> Base64Bytes?? {
        guard let node = value(name) else { return .some(nil) }
        guard case .string(let range) = node, let value = Base64.decode(bytes[range]) else { return nil }
        return .some(Base64Bytes(value))
    }

    /// An optional `[String: String]` field, on the same terms.
    package func stringMap(_ name: StaticString) -> [String: String]?? {
        guard let node = value(name) else { return .some(nil) }
        guard case .object(let members) = node else { return nil }
        var map: [String: String] = [:]
        for member in members {
            guard case .string(let range) = member.value else { return nil }
            map[String(decoding: UnsafeBufferPointer(rebasing: bytes[member.key]), as: UTF8.self)] =
                String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
        // Distinct bytes that are one String (canonically equivalent keys): left to JSONDecoder.
        guard map.count == members.count else { return nil }
        return .some(map)
    }
}

// MARK: - Request bodies

/// The JSON body of the native API's create key request (openapi.yaml, schema `CreateKey`).
public struct CreateKeyBody: Codable, Sendable {
    public var spec: String?
    public var aliases: [String]?
    public var tags: [String: String]?
    public var description: String?
    public var exportable: Bool?
    public var backupAllowed: Bool?
    public var rotationPeriodDays: Int?
    public var initialState: String?
    public var expiresAt: Date?
    public var contextRequired: Bool?

    /// A body of these fields.
    public init(spec: String? = nil, aliases: [String]? = nil, tags: [String: String]? = nil, description: String? = nil, exportable: Bool? = nil, backupAllowed: Bool? = nil, rotationPeriodDays: Int? = nil, initialState: String? = nil, expiresAt: Date? = nil,
                contextRequired: Bool? = nil) {
        self.spec = spec
        self.aliases = aliases
        self.tags = tags
        self.description = description
        self.exportable = exportable
        self.backupAllowed = backupAllowed
        self.rotationPeriodDays = rotationPeriodDays
        self.initialState = initialState
        self.expiresAt = expiresAt
        self.contextRequired = contextRequired
    }
}

/// The JSON body of the native API's import key request (openapi.yaml, schema `ImportKey`).
public struct ImportKeyBody: Codable, Sendable {
    public var wrappingKeyId: String
    public var wrappedMaterial: Base64Bytes
    public var key: CreateKeyBody

    /// A body of these fields.
    public init(wrappingKeyId: String, wrappedMaterial: Base64Bytes, key: CreateKeyBody) {
        self.wrappingKeyId = wrappingKeyId
        self.wrappedMaterial = wrappedMaterial
        self.key = key
    }
}

/// The JSON body of the native API's import wrapping key request (openapi.yaml, schema `ImportWrappingKey`).
public struct ImportWrappingKeyBody: Codable, Sendable {
    public var hours: Int?

    /// A body of these fields.
    public init(hours: Int? = nil) {
        self.hours = hours
    }
}

/// The JSON body of the native API's update key request (openapi.yaml, schema `UpdateKey`).
public struct UpdateKeyBody: Codable, Sendable {
    public var description: String?
    /// Every tag the key is to carry (the others removed).
    public var tags: [String: String]?
    /// Tags to add or change, applied to the tags as the update reads them (with
    /// `removeTags`; not with `tags`).
    public var setTags: [String: String]?
    /// Tag names to remove, applied as `setTags` is (a name the key lacks is ignored).
    public var removeTags: [String]?
    /// Days between automatic rotations; 0 turns automatic rotation off.
    public var rotationPeriodDays: Int?
    public var minDecryptionVersion: UInt32?

    /// A body of these fields.
    public init(description: String? = nil, tags: [String: String]? = nil, setTags: [String: String]? = nil, removeTags: [String]? = nil,
                rotationPeriodDays: Int? = nil, minDecryptionVersion: UInt32? = nil) {
        self.description = description
        self.tags = tags
        self.setTags = setTags
        self.removeTags = removeTags
        self.rotationPeriodDays = rotationPeriodDays
        self.minDecryptionVersion = minDecryptionVersion
    }
}

/// The JSON body of the native API's schedule destruction request (openapi.yaml, schema `ScheduleDestruction`).
public struct ScheduleDestructionBody: Codable, Sendable {
    public var waitingDays: Int?

    /// A body of these fields.
    public init(waitingDays: Int? = nil) {
        self.waitingDays = waitingDays
    }
}

/// The JSON body of the native API's destroy versions request (openapi.yaml, schema `DestroyVersions`).
public struct DestroyVersionsBody: Codable, Sendable {
    /// The oldest version to keep: every version below it is destroyed.
    public var below: UInt32

    /// A body of these fields.
    public init(below: UInt32) {
        self.below = below
    }
}

/// The JSON body of the native API's alias request (openapi.yaml, schema `Alias`).
public struct AliasBody: Codable, Sendable {
    public var key: String

    /// A body of these fields.
    public init(key: String) {
        self.key = key
    }
}

/// The JSON body of the native API's encrypt request (openapi.yaml, schema `Encrypt`).
public struct EncryptBody: Codable, Sendable, FastJSONBody {
    public var plaintext: Base64Bytes
    public var context: [String: String]?

    package init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), object.only("plaintext", "context"), let plaintext = object.bytes("plaintext"), let plaintext,
              let context = object.stringMap("context") else { return nil }
        self.plaintext = plaintext
        self.context = context
    }

    /// A body of these fields.
    public init(plaintext: Base64Bytes, context: [String: String]? = nil) {
        self.plaintext = plaintext
        self.context = context
    }
}

/// The JSON body of the native API's decrypt request (openapi.yaml, schema `Decrypt`).
public struct DecryptBody: Codable, Sendable, FastJSONBody {
    public var ciphertext: Base64Bytes
    public var context: [String: String]?

    package init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), object.only("ciphertext", "context"), let ciphertext = object.bytes("ciphertext"), let ciphertext,
              let context = object.stringMap("context") else { return nil }
        self.ciphertext = ciphertext
        self.context = context
    }

    /// A body of these fields.
    public init(ciphertext: Base64Bytes, context: [String: String]? = nil) {
        self.ciphertext = ciphertext
        self.context = context
    }
}

/// The JSON body of the native API's batch request (openapi.yaml, schema `Batch`).
public struct BatchBody<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]

    /// A body of these fields.
    public init(items: [Item]) {
        self.items = items
    }
}

extension BatchBody: FastJSONBody where Item: FastJSONBody {
    package init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), object.only("items"), case .array(let elements)? = object.value("items") else { return nil }
        var items: [Item] = []
        items.reserveCapacity(elements.count)
        for element in elements {
            guard let item = Item(json: element, in: bytes) else { return nil }
            items.append(item)
        }
        self.items = items
    }
}

/// The JSON body of the native API's re encrypt request (openapi.yaml, schema `ReEncrypt`).
public struct ReEncryptBody: Codable, Sendable {
    public var ciphertext: Base64Bytes
    public var sourceContext: [String: String]?
    public var destinationContext: [String: String]?

    /// A body of these fields.
    public init(ciphertext: Base64Bytes, sourceContext: [String: String]? = nil, destinationContext: [String: String]? = nil) {
        self.ciphertext = ciphertext
        self.sourceContext = sourceContext
        self.destinationContext = destinationContext
    }
}

/// The JSON body of the native API's data key request (openapi.yaml, schema `DataKey`).
public struct DataKeyBody: Codable, Sendable {
    public var spec: String?
    public var context: [String: String]?
    /// False returns only the sealed data key.
    public var includePlaintext: Bool?

    /// A body of these fields.
    public init(spec: String? = nil, context: [String: String]? = nil, includePlaintext: Bool? = nil) {
        self.spec = spec
        self.context = context
        self.includePlaintext = includePlaintext
    }
}

/// The JSON body of the native API's data key pair request (openapi.yaml, schema `DataKeyPair`).
public struct DataKeyPairBody: Codable, Sendable {
    public var pairSpec: String
    public var context: [String: String]?

    /// A body of these fields.
    public init(pairSpec: String, context: [String: String]? = nil) {
        self.pairSpec = pairSpec
        self.context = context
    }
}

/// The JSON body of the native API's sign request (openapi.yaml, schema `Sign`).
public struct SignBody: Codable, Sendable, FastJSONBody {
    public var message: Base64Bytes?
    public var digest: Base64Bytes?
    /// ML-DSA context string.
    public var context: Base64Bytes?

    public init(message: Base64Bytes?, digest: Base64Bytes?, context: Base64Bytes?) {
        self.message = message
        self.digest = digest
        self.context = context
    }

    package init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), object.only("message", "digest", "context"), let message = object.bytes("message"),
              let digest = object.bytes("digest"),
              let context = object.bytes("context") else { return nil }
        self.init(message: message, digest: digest, context: context)
    }

}

/// The JSON body of the native API's verify request (openapi.yaml, schema `Verify`).
public struct VerifyBody: Codable, Sendable {
    public var message: Base64Bytes?
    public var digest: Base64Bytes?
    public var signature: Base64Bytes
    public var version: UInt32?
    public var context: Base64Bytes?
    /// `der` (default) or `raw` (r||s) for ECDSA.
    public var encoding: String?



    /// A body of these fields.
    public init(message: Base64Bytes? = nil, digest: Base64Bytes? = nil, signature: Base64Bytes, version: UInt32? = nil, context: Base64Bytes? = nil, encoding: String? = nil) {
        self.message = message
        self.digest = digest
        self.signature = signature
        self.version = version
        self.context = context
        self.encoding = encoding
    }
}

/// The JSON body of the native API's m a c request (openapi.yaml, schema `MAC`).
public struct MACBody: Codable, Sendable, FastJSONBody {
    public var message: Base64Bytes

    package init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), object.only("message"), let message = object.bytes("message"), let message else { return nil }
        self.message = message
    }

    /// A body of these fields.
    public init(message: Base64Bytes) {
        self.message = message
    }
}

/// The JSON body of the native API's verify m a c request (openapi.yaml, schema `VerifyMAC`).
public struct VerifyMACBody: Codable, Sendable {
    public var message: Base64Bytes
    public var mac: Base64Bytes
    public var version: UInt32?

    /// A body of these fields.
    public init(message: Base64Bytes, mac: Base64Bytes, version: UInt32? = nil) {
        self.message = message
        self.mac = mac
        self.version = version
    }
}

/// The JSON body of the native API's derive shared secret request (openapi.yaml, schema `DeriveSharedSecret`).
public struct DeriveSharedSecretBody: Codable, Sendable {
    /// The peer's public key, SPKI DER in base64.
    public var peerPublicKey: Base64Bytes

    /// A body of these fields.
    public init(peerPublicKey: Base64Bytes) {
        self.peerPublicKey = peerPublicKey
    }
}

/// The JSON body of the native API's decapsulate request (openapi.yaml, schema `Decapsulate`).
public struct DecapsulateBody: Codable, Sendable {
    public var encapsulated: Base64Bytes
    public var version: UInt32?

    /// A body of these fields.
    public init(encapsulated: Base64Bytes, version: UInt32? = nil) {
        self.encapsulated = encapsulated
        self.version = version
    }
}

/// The JSON body of the native API's random request (openapi.yaml, schema `Random`).
public struct RandomBody: Codable, Sendable {
    public var count: Int

    /// A body of these fields.
    public init(count: Int) {
        self.count = count
    }
}

extension JSONDecoder {
    /// RFC 3339 dates, read strictly (`Timestamp`); everything else as declared. One shared
    /// instance: its options never change after this, and decoding keeps no state in it.
    package static let api: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 date-time such as 2027-01-31T12:00:00Z")
            }
            return date
        }
        return decoder
    }()
}
