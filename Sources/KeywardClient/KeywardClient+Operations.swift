import Foundation
import KeywardAPI
import KeywardCrypto

extension KeywardClient {
    /// Encrypts up to 4 MiB under the key's newest version, bound to `context`.
    public func encrypt(_ plaintext: [UInt8], key: String, context: [String: String] = [:]) async throws(KeywardClientError) -> Ciphertext {
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/encrypt",
                                  EncryptBody(plaintext: Base64Bytes(plaintext), context: context), as: CiphertextReply.self)
        return Ciphertext(wire)
    }

    /// Decrypts a Keyward ciphertext; with `key`, one made under any other key is refused.
    public func decrypt(_ ciphertext: [UInt8], key: String? = nil, context: [String: String] = [:]) async throws(KeywardClientError) -> [UInt8] {
        let path = key.map { "/v1/keys/\(Self.path($0))/decrypt" } ?? "/v1/decrypt"
        let wire = try await call(.POST, path, DecryptBody(ciphertext: Base64Bytes(ciphertext), context: context), as: PlaintextReply.self)
        return wire.plaintext.value
    }

    /// Encrypts up to 1,000 plaintexts in one request; each item succeeds or fails on its own.
    public func encryptBatch(_ plaintexts: [[UInt8]], key: String, context: [String: String] = [:]) async throws(KeywardClientError) -> [BatchResult<Ciphertext>] {
        let items = plaintexts.map { EncryptBody(plaintext: Base64Bytes($0), context: context) }
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/encrypt/batch", BatchBody(items: items), as: BatchReply<CiphertextReply>.self)
        return wire.results.map { item in
            switch item {
            case .success(let value): .success(Ciphertext(value))
            case .failure(let error): .failure(.api(code: error.code, status: 200, message: error.message))
            }
        }
    }

    /// Decrypts up to 1,000 ciphertexts made under `key` in one request.
    public func decryptBatch(_ ciphertexts: [[UInt8]], key: String, context: [String: String] = [:]) async throws(KeywardClientError) -> [BatchResult<[UInt8]>] {
        let items = ciphertexts.map { DecryptBody(ciphertext: Base64Bytes($0), context: context) }
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/decrypt/batch", BatchBody(items: items), as: BatchReply<PlaintextReply>.self)
        return wire.results.map { item in
            switch item {
            case .success(let value): .success(value.plaintext.value)
            case .failure(let error): .failure(.api(code: error.code, status: 200, message: error.message))
            }
        }
    }

    /// Moves a ciphertext to `key` (its newest version) without the plaintext leaving the service.
    public func reEncrypt(_ ciphertext: [UInt8], to key: String, sourceContext: [String: String] = [:],
                          destinationContext: [String: String] = [:]) async throws(KeywardClientError) -> Ciphertext {
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/re-encrypt",
                                  ReEncryptBody(ciphertext: Base64Bytes(ciphertext), sourceContext: sourceContext,
                                                destinationContext: destinationContext), as: CiphertextReply.self)
        return Ciphertext(wire)
    }

    /// A fresh data key (`spec`: AES-256-GCM, the default, or CHACHA20-POLY1305): in plaintext
    /// (in locked memory) and sealed under `key`.
    public func generateDataKey(key: String, context: [String: String] = [:], spec: String? = nil) async throws(KeywardClientError) -> ClientDataKey {
        var wire = try await call(.POST, "/v1/keys/\(Self.path(key))/data-key", DataKeyBody(spec: spec, context: context), as: DataKeyReply.self)
        guard var plaintext = wire.plaintext else { throw .invalidResponse("the data key came without its plaintext") }
        // Drop every other reference first, so `bytes` owns the key's only copy and the wipe
        // clears it, not a copy made on write.
        wire.plaintext = nil
        var bytes = plaintext.value
        plaintext.value = []
        defer { SecureZero.wipe(&bytes) }
        let secret: SecretBytes
        do { secret = try SecretBytes(copying: bytes) } catch { throw .configuration("locked memory: \(error)") }
        return ClientDataKey(plaintext: secret, ciphertext: wire.ciphertext.value, keyID: wire.keyId.description, version: Int(wire.version))
    }

    /// A fresh data key sealed under `key`, its plaintext never sent: for a party that will
    /// have it decrypted later.
    public func generateSealedDataKey(key: String, context: [String: String] = [:], spec: String? = nil) async throws(KeywardClientError) -> Ciphertext {
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/data-key", DataKeyBody(spec: spec, context: context, includePlaintext: false),
                                  as: DataKeyReply.self)
        return Ciphertext(bytes: wire.ciphertext.value, keyID: wire.keyId.description, version: Int(wire.version))
    }

    /// Signs a message (or, with `isDigest`, a precomputed digest) with the key's newest version.
    public func sign(_ input: [UInt8], key: String, isDigest: Bool = false) async throws(KeywardClientError) -> Signature {
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/sign", SignBody(message: isDigest ? nil : Base64Bytes(input), digest: isDigest ? Base64Bytes(input) : nil, context: nil),
                                  as: SignatureReply.self)
        return Signature(bytes: wire.signature.value, keyID: wire.keyId.description, version: Int(wire.version))
    }

    /// Whether `signature` is valid for the message (or digest).
    public func verify(_ signature: [UInt8], for input: [UInt8], key: String, isDigest: Bool = false) async throws(KeywardClientError) -> Bool {
        try await call(.POST, "/v1/keys/\(Self.path(key))/verify",
                       VerifyBody(message: isDigest ? nil : Base64Bytes(input), digest: isDigest ? Base64Bytes(input) : nil,
                                  signature: Base64Bytes(signature)),
                       as: ValidityReply.self).valid
    }

    /// An HMAC tag of `message`.
    public func mac(_ message: [UInt8], key: String) async throws(KeywardClientError) -> MACTag {
        let wire = try await call(.POST, "/v1/keys/\(Self.path(key))/mac", MACBody(message: Base64Bytes(message)), as: MACReply.self)
        return MACTag(bytes: wire.mac.value, keyID: wire.keyId.description, version: Int(wire.version))
    }

    /// Whether `tag` is the HMAC of `message` (checked in constant time by the service).
    public func verifyMAC(_ tag: [UInt8], for message: [UInt8], key: String) async throws(KeywardClientError) -> Bool {
        try await call(.POST, "/v1/keys/\(Self.path(key))/verify-mac",
                       VerifyMACBody(message: Base64Bytes(message), mac: Base64Bytes(tag)), as: ValidityReply.self).valid
    }

    /// `count` (1 to 1,024) random bytes from the service.
    public func random(count: Int) async throws(KeywardClientError) -> [UInt8] {
        try await call(.POST, "/v1/random", RandomBody(count: count), as: RandomReply.self).random.value
    }
}

/// A data key from the service: the plaintext (in locked memory, wiped when dropped) and the
/// same key sealed under a Keyward key, to store beside the data.
public struct ClientDataKey: ~Copyable, Sendable {
    /// The 32-byte data key.
    public let plaintext: SecretBytes
    /// The data key sealed under the Keyward key (a Keyward ciphertext).
    public let ciphertext: [UInt8]
    /// The Keyward key that sealed it.
    public let keyID: String
    /// The key version that sealed it.
    public let version: Int
}

extension Ciphertext {
    /// The model of a ciphertext reply.
    init(_ reply: CiphertextReply) {
        self.init(bytes: reply.ciphertext.value, keyID: reply.keyId.description, version: Int(reply.version))
    }
}
