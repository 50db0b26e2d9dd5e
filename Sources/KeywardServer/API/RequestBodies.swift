import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// Bytes carried in JSON as standard padded base64; anything else is a 400 naming the field.
struct Bytes: Decodable, Sendable {
    var value: [UInt8]

    init(value: [UInt8]) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Base64.decode(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not standard padded base64")
        }
        self.value = value
    }
}

/// Reads and decodes request bodies within the configured size limit.
struct BodyReader: Sendable {
    let limit: Int

    /// A hot body: read by `JSONScanner` when it can, else as any other body.
    func decode<T: FastJSONBody>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
        let buffer = try await collect(request)
        if let value = buffer.withUnsafeReadableBytes({ raw in T.read(raw.assumingMemoryBound(to: UInt8.self)) }) {
            return value
        }
        return try decode(T.self, from: buffer)
    }

    /// The body decoded as `T`; 413 past the limit, 400 (naming the field) when malformed.
    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
        try decode(T.self, from: try await collect(request))
    }

    /// The whole body, within the limit.
    private func collect(_ request: Request) async throws(APIError) -> ByteBuffer {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge(limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit)
        } catch {
            throw APIError.invalidRequest("the request body could not be read")
        }
        if buffer.readableBytes == 0 { throw APIError.invalidRequest("the request needs a JSON body") }
        return buffer
    }

    private func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws(APIError) -> T {
        do {
            return try JSONDecoder.api.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError.invalidRequest(Self.describe(error))
        } catch {
            throw APIError.invalidRequest("the body is not valid JSON")
        }
    }

    /// A decoding error as a message naming the field, without echoing the input.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            return "missing field '\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)'"
        case .typeMismatch(let type, let context):
            return "field '\(path(context.codingPath))' should be \(Self.name(type))"
        case .valueNotFound(let type, let context):
            return "field '\(path(context.codingPath))' should be \(Self.name(type)), not null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "field '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "the body does not match the schema"
        }
    }

    private static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Bytes.Type: "a string"
        case is Int.Type, is UInt32.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}

extension JSONDecoder {
    /// ISO 8601 dates; everything else as declared. One shared instance: its options never
    /// change after this, and decoding keeps no state in it.
    static let api: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

// MARK: - The fast path for hot bodies

/// A body `JSONScanner` can read without `JSONDecoder`. `init?(json:in:)` answers only for a
/// body that `JSONDecoder` would decode to the same value, and returns nil for anything else
/// (which `JSONDecoder` then decodes or refuses with its message).
protocol FastJSONBody: Decodable {
    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>)
}

extension FastJSONBody {
    /// The body read from `bytes`, or nil to leave it to `JSONDecoder`.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> Self? {
        guard let node = JSONScanner.parse(bytes) else { return nil }
        return Self(json: node, in: bytes)
    }
}

/// Field access on a scanned object, as the Decodable bodies read it.
struct ScannedObject {
    let members: [JSONScanner.Member]
    let bytes: UnsafeBufferPointer<UInt8>

    init?(_ node: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard case .object(let members) = node else { return nil }
        self.members = members
        self.bytes = bytes
    }

    /// The member named `name`; a null member counts as absent, as for an optional field.
    func value(_ name: StaticString) -> JSONScanner.Node? {
        for member in members where JSONScanner.key(member.key, in: bytes, is: name) {
            if case .null = member.value { return nil }
            return member.value
        }
        return nil
    }

    /// An optional `Bytes` field: `.some(nil)` when absent, nil when present but not a plain
    /// canonical base64 string (left to JSONDecoder).
    func bytes(_ name: StaticString) -> Bytes?? {
        guard let node = value(name) else { return .some(nil) }
        guard case .string(let range) = node, let value = Base64.decode(bytes[range]) else { return nil }
        return .some(Bytes(value: value))
    }

    /// An optional `[String: String]` field, on the same terms.
    func stringMap(_ name: StaticString) -> [String: String]?? {
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

struct CreateKeyBody: Decodable {
    var spec: String?
    var aliases: [String]?
    var tags: [String: String]?
    var description: String?
    var exportable: Bool?
    var backupAllowed: Bool?
    var rotationPeriodDays: Int?
    var initialState: String?
    var expiresAt: Date?

    func request() throws(APIError) -> CreateKeyRequest {
        var spec = KeySpec.defaultSymmetric
        if let name = self.spec {
            do { spec = try KeySpec(named: name) } catch { throw APIError(KeywardError.crypto(error)) }
        }
        var state = KeyState.active
        if let name = initialState {
            guard let parsed = KeyState(rawValue: name), parsed == .active || parsed == .preActive else {
                throw APIError.invalidRequest("initialState '\(name.prefix(40))' must be 'active' or 'pre-active'")
            }
            state = parsed
        }
        return CreateKeyRequest(spec: spec, aliases: aliases ?? [], tags: tags ?? [:], description: description ?? "",
                                exportable: exportable ?? false, backupAllowed: backupAllowed, rotationPeriodDays: rotationPeriodDays,
                                initialState: state, expiresAt: expiresAt)
    }
}

struct ImportKeyBody: Decodable {
    var wrappingKeyId: String
    var wrappedMaterial: Bytes
    var key: CreateKeyBody
}

struct ImportWrappingKeyBody: Decodable {
    var hours: Int?
}

struct UpdateKeyBody: Decodable {
    var description: String?
    var tags: [String: String]?
    /// Days between automatic rotations; 0 turns automatic rotation off.
    var rotationPeriodDays: Int?
    var minDecryptionVersion: UInt32?
}

struct ScheduleDestructionBody: Decodable {
    var waitingDays: Int?
}

struct AliasBody: Decodable {
    var key: String
}

struct EncryptBody: FastJSONBody, Sendable {
    var plaintext: Bytes
    var context: [String: String]?

    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), let plaintext = object.bytes("plaintext"), let plaintext,
              let context = object.stringMap("context") else { return nil }
        self.plaintext = plaintext
        self.context = context
    }
}

struct DecryptBody: FastJSONBody, Sendable {
    var ciphertext: Bytes
    var context: [String: String]?

    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), let ciphertext = object.bytes("ciphertext"), let ciphertext,
              let context = object.stringMap("context") else { return nil }
        self.ciphertext = ciphertext
        self.context = context
    }
}

struct BatchBody<Item: Decodable>: Decodable {
    var items: [Item]
}

extension BatchBody: FastJSONBody where Item: FastJSONBody {
    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), case .array(let elements)? = object.value("items") else { return nil }
        var items: [Item] = []
        items.reserveCapacity(elements.count)
        for element in elements {
            guard let item = Item(json: element, in: bytes) else { return nil }
            items.append(item)
        }
        self.items = items
    }
}

struct ReEncryptBody: Decodable {
    var ciphertext: Bytes
    var sourceContext: [String: String]?
    var destinationContext: [String: String]?
}

struct DataKeyBody: Decodable {
    var spec: String?
    var context: [String: String]?
    /// False returns only the sealed data key.
    var includePlaintext: Bool?
}

struct DataKeyPairBody: Decodable {
    var pairSpec: String
    var context: [String: String]?
}

struct SignBody: FastJSONBody, Sendable {
    var message: Bytes?
    var digest: Bytes?
    /// ML-DSA context string.
    var context: Bytes?

    init(message: Bytes?, digest: Bytes?, context: Bytes?) {
        self.message = message
        self.digest = digest
        self.context = context
    }

    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), let message = object.bytes("message"), let digest = object.bytes("digest"),
              let context = object.bytes("context") else { return nil }
        self.init(message: message, digest: digest, context: context)
    }

    func input() throws(APIError) -> SigningInput {
        switch (message, digest) {
        case (let message?, nil): return .message(message.value)
        case (nil, let digest?): return .digest(digest.value)
        default: throw APIError.invalidRequest("give exactly one of 'message' and 'digest'")
        }
    }
}

struct VerifyBody: Decodable {
    var message: Bytes?
    var digest: Bytes?
    var signature: Bytes
    var version: UInt32?
    var context: Bytes?
    /// `der` (default) or `raw` (r||s) for ECDSA.
    var encoding: String?

    func input() throws(APIError) -> SigningInput {
        try SignBody(message: message, digest: digest, context: context).input()
    }

    func signatureEncoding() throws(APIError) -> ECDSASignatureEncoding {
        switch encoding {
        case nil, "der": return .der
        case "raw": return .raw
        default: throw APIError.invalidRequest("encoding must be 'der' or 'raw'")
        }
    }
}

struct MACBody: FastJSONBody {
    var message: Bytes

    init?(json: JSONScanner.Node, in bytes: UnsafeBufferPointer<UInt8>) {
        guard let object = ScannedObject(json, in: bytes), let message = object.bytes("message"), let message else { return nil }
        self.message = message
    }
}

struct VerifyMACBody: Decodable {
    var message: Bytes
    var mac: Bytes
    var version: UInt32?
}

struct DeriveSharedSecretBody: Decodable {
    /// The peer's public key, SPKI DER in base64.
    var peerPublicKey: Bytes
}

struct DecapsulateBody: Decodable {
    var encapsulated: Bytes
    var version: UInt32?
}

struct RandomBody: Decodable {
    var count: Int
}

extension Optional where Wrapped == [String: String] {
    /// The encryption context, checked by the library's rules.
    var encryptionContext: EncryptionContext {
        get throws(APIError) {
            guard let pairs = self, !pairs.isEmpty else { return .empty }
            guard pairs.count <= EncryptionContext.maximumPairs else {
                throw APIError.invalidRequest("an encryption context holds at most \(EncryptionContext.maximumPairs) pairs")
            }
            return EncryptionContext(pairs)
        }
    }
}
