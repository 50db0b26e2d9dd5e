import Foundation
import KeywardCrypto

/// A reply the server writes with `JSONWriter` (fast, no intermediate tree) and clients read with
/// `JSONDecoder` through the same type's `Codable` conformance. `KeywardAPITests` checks, for
/// every reply, that what the writer writes decodes to the value written, so the two cannot
/// drift; `OpenAPITests` checks each reply's fields against the document's schema.
public protocol WritableReply: Codable, Sendable {
    /// Writes the reply's members (inside the object the caller opens).
    func writeMembers(to json: inout JSONWriter)
}

extension WritableReply {
    /// The reply as a JSON object.
    public func json() -> [UInt8] {
        var writer = JSONWriter()
        writer.object { writeMembers(to: &$0) }
        return writer.bytes
    }
}

/// A ciphertext and the key version that made it (encrypt, re-encrypt, a data key without its
/// plaintext). Schema `Ciphertext`.
public struct CiphertextReply: WritableReply, Equatable {
    /// The Keyward ciphertext.
    public var ciphertext: Base64Bytes
    /// The key that made it.
    public var keyId: KeyID
    /// The key version that made it.
    public var version: UInt32

    /// A reply of these fields.
    public init(ciphertext: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.ciphertext = ciphertext
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("ciphertext", base64: ciphertext.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// A plaintext and the key version that opened it. Schema `Plaintext`.
public struct PlaintextReply: WritableReply, Equatable {
    /// The decrypted bytes.
    public var plaintext: Base64Bytes
    /// The key that made the ciphertext.
    public var keyId: KeyID
    /// The key version that made the ciphertext.
    public var version: UInt32

    /// A reply of these fields.
    public init(plaintext: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.plaintext = plaintext
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("plaintext", base64: plaintext.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// A signature and the key version that made it. Schema `Signature`.
public struct SignatureReply: WritableReply, Equatable {
    /// The signature (DER for ECDSA).
    public var signature: Base64Bytes
    /// The key that made it.
    public var keyId: KeyID
    /// The key version that made it.
    public var version: UInt32

    /// A reply of these fields.
    public init(signature: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.signature = signature
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("signature", base64: signature.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// An HMAC tag and the key version that made it. Schema `MAC`.
public struct MACReply: WritableReply, Equatable {
    /// The full-length tag.
    public var mac: Base64Bytes
    /// The key that made it.
    public var keyId: KeyID
    /// The key version that made it.
    public var version: UInt32

    /// A reply of these fields.
    public init(mac: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.mac = mac
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("mac", base64: mac.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// A data key: its plaintext (unless asked without) and the same key sealed under a Keyward key.
/// Schema `DataKey`.
public struct DataKeyReply: WritableReply, Equatable {
    /// The data key, for immediate use; absent when asked without it.
    public var plaintext: Base64Bytes?
    /// The data key sealed under the Keyward key.
    public var ciphertext: Base64Bytes
    /// The Keyward key that sealed it.
    public var keyId: KeyID
    /// The key version that sealed it.
    public var version: UInt32

    /// A reply of these fields.
    public init(plaintext: Base64Bytes?, ciphertext: Base64Bytes, keyId: KeyID, version: UInt32) {
        self.plaintext = plaintext
        self.ciphertext = ciphertext
        self.keyId = keyId
        self.version = version
    }

    public func writeMembers(to json: inout JSONWriter) {
        if let plaintext { json.member("plaintext", base64: plaintext.value) }
        json.member("ciphertext", base64: ciphertext.value)
        json.member("keyId", keyId.description)
        json.member("version", Int(version))
    }
}

/// Whether a signature or tag verified. Schema `Validity`.
public struct ValidityReply: WritableReply, Equatable {
    /// True when it verified.
    public var valid: Bool

    /// A reply of this field.
    public init(valid: Bool) { self.valid = valid }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("valid", valid)
    }
}

/// Random bytes from the service. Schema `Random`.
public struct RandomReply: WritableReply, Equatable {
    /// The bytes.
    public var random: Base64Bytes

    /// A reply of this field.
    public init(random: Base64Bytes) { self.random = random }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("random", base64: random.value)
    }
}

/// A shared secret (key agreement or decapsulation). Schema `SharedSecret`.
public struct SharedSecretReply: WritableReply, Equatable {
    /// The shared secret.
    public var sharedSecret: Base64Bytes

    /// A reply of this field.
    public init(sharedSecret: Base64Bytes) { self.sharedSecret = sharedSecret }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("sharedSecret", base64: sharedSecret.value)
    }
}

/// An error: a stable code and a message. Schema `Error`.
public struct ErrorReply: WritableReply, Equatable {
    /// The error's code and message.
    public struct Detail: Codable, Sendable, Equatable {
        /// A stable code (`key_not_found`, `access_denied`, ...).
        public var code: String
        /// What went wrong, for a person.
        public var message: String

        /// A detail of these fields.
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    /// The error.
    public var error: Detail

    /// A reply of this error.
    public init(code: String, message: String) { self.error = Detail(code: code, message: message) }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("error") { json in
            json.object { json in
                json.member("code", error.code)
                json.member("message", error.message)
            }
        }
    }
}

/// One item of a batch reply: the item's own reply, or its error.
public enum BatchItemReply<Item: WritableReply & Equatable>: Codable, Sendable, Equatable {
    /// The item succeeded.
    case success(Item)
    /// The item failed alone.
    case failure(ErrorReply.Detail)

    private enum Keys: String, CodingKey { case error }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        if let error = try container.decodeIfPresent(ErrorReply.Detail.self, forKey: .error) {
            self = .failure(error)
        } else {
            self = .success(try Item(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .success(let item): try item.encode(to: encoder)
        case .failure(let detail): try ErrorReply(code: detail.code, message: detail.message).encode(to: encoder)
        }
    }
}

/// A batch reply: one result per item, in order. Schema `BatchResults`.
public struct BatchReply<Item: WritableReply & Equatable>: WritableReply, Equatable {
    /// The items' results.
    public var results: [BatchItemReply<Item>]

    /// A reply of these results.
    public init(results: [BatchItemReply<Item>]) { self.results = results }

    public func writeMembers(to json: inout JSONWriter) {
        json.member("results") { json in
            json.array { json in
                for result in results {
                    json.object { json in
                        switch result {
                        case .success(let item): item.writeMembers(to: &json)
                        case .failure(let detail): ErrorReply(error: detail).writeMembers(to: &json)
                        }
                    }
                }
            }
        }
    }
}

extension ErrorReply {
    /// A reply of this detail.
    public init(error: Detail) { self.error = error }
}
