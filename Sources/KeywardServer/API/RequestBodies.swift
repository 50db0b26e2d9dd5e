import Foundation
import Hummingbird
import Keyward
import KeywardCrypto
import NIOCore

/// Bytes carried in JSON as standard padded base64; anything else is a 400 naming the field.
struct Bytes: Decodable, Sendable {
    var value: [UInt8]

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

    /// The body decoded as `T`; 413 past the limit, 400 (naming the field) when malformed.
    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
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

struct EncryptBody: Decodable, Sendable {
    var plaintext: Bytes
    var context: [String: String]?
}

struct DecryptBody: Decodable, Sendable {
    var ciphertext: Bytes
    var context: [String: String]?
}

struct BatchBody<Item: Decodable>: Decodable {
    var items: [Item]
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

struct SignBody: Decodable, Sendable {
    var message: Bytes?
    var digest: Bytes?
    /// ML-DSA context string.
    var context: Bytes?

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

struct MACBody: Decodable {
    var message: Bytes
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
