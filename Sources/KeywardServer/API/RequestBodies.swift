import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// Reads and decodes request bodies within the configured size limit.
struct BodyReader: Sendable {
    let limit: Int

    /// A hot body: read by `JSONScanner` when it can, else as any other body.
    func decode<T: FastJSONBody & Encodable>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
        let buffer = try await collectJSON(request)
        if let value = buffer.withUnsafeReadableBytes({ raw in T.read(raw.assumingMemoryBound(to: UInt8.self)) }) {
            return value
        }
        return try decode(T.self, from: buffer)
    }

    /// The body decoded as `T`; 413 past the limit, 400 (naming the field) when malformed,
    /// when it names a field twice (`DuplicateMembers`) or when it holds a field `T` does not
    /// have (`UnknownFields`).
    func decode<T: Codable>(_ type: T.Type, from request: Request) async throws(APIError) -> T {
        try decode(T.self, from: try await collectJSON(request))
    }

    /// The whole body (perhaps empty), within the limit: 413 past it (`APIError.bodyTooLarge`).
    func collect(_ request: Request) async throws(APIError) -> ByteBuffer {
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
        return buffer
    }

    /// The whole body, within the limit, which must not be empty.
    private func collectJSON(_ request: Request) async throws(APIError) -> ByteBuffer {
        let buffer = try await collect(request)
        if buffer.readableBytes == 0 { throw APIError.invalidRequest("the request needs a JSON body") }
        return buffer
    }

    private func decode<T: Codable>(_ type: T.Type, from buffer: ByteBuffer) throws(APIError) -> T {
        let data = Data(buffer.readableBytesView)
        let value: T
        do {
            value = try JSONDecoder.api.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError.invalidRequest(Self.describe(error))
        } catch {
            throw APIError.invalidRequest("the body is not valid JSON")
        }
        if let repeated = DuplicateMembers.find(in: data) {
            throw APIError.invalidRequest(DuplicateMembers.message(repeated))
        }
        if let finding = UnknownFields.find(in: data, decoded: value) {
            throw APIError.invalidRequest(finding.message)
        }
        return value
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
        case is String.Type, is Base64Bytes.Type: "a string"
        case is Int.Type, is UInt32.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}



// MARK: - From wire bodies to KeyService's arguments

extension CreateKeyBody {

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
                                initialState: state, expiresAt: expiresAt, contextRequired: contextRequired ?? false)
    }
}

extension SignBody {

    func input() throws(APIError) -> SigningInput {
        switch (message, digest) {
        case (let message?, nil): return .message(message.value)
        case (nil, let digest?): return .digest(digest.value)
        default: throw APIError.invalidRequest("give exactly one of 'message' and 'digest'")
        }
    }
}

extension VerifyBody {

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
