import Foundation
import KeywardAPI
import KeywardCrypto
import Testing

/// Every reply's two faces agree: what the server's writer writes, `JSONDecoder` (the client's
/// reader) decodes to the value written, field for field.
@Suite("Wire replies")
struct ReplyTests {
    static let key = KeyID()
    static let bytes = Base64Bytes([0, 1, 2, 250, 251, 252, 253, 254, 255])

    /// A key with every optional field set, times in whole seconds (the wire's precision).
    static let keyReply = KeyReply(
        id: key, spec: .ecdsaP256, state: "pending-destruction", description: "orders \"signing\" key", aliases: ["a/b", "c"],
        tags: ["team": "pay", "é": "🔑"], createdAt: Date(timeIntervalSince1970: 1_800_000_000), stateChangedAt: Date(timeIntervalSince1970: 1_800_000_100),
        currentVersion: 4, minDecryptionVersion: 2, rotationPeriodDays: 90, nextRotationAt: Date(timeIntervalSince1970: 1_807_776_000),
        destructionDate: Date(timeIntervalSince1970: 1_802_592_000), expiresAt: Date(timeIntervalSince1970: 1_900_000_000),
        exportable: false, backupAllowed: true, origin: "keyward")

    /// One sample of every reply type, as the type-erased check needs it.
    static let samples: [any WritableReply] = [
        CiphertextReply(ciphertext: bytes, keyId: key, version: 3),
        PlaintextReply(plaintext: Base64Bytes([]), keyId: key, version: 1),
        SignatureReply(signature: bytes, keyId: key, version: UInt32.max),
        MACReply(mac: bytes, keyId: key, version: 2),
        DataKeyReply(plaintext: bytes, ciphertext: bytes, keyId: key, version: 1),
        DataKeyReply(plaintext: nil, ciphertext: bytes, keyId: key, version: 1),
        ValidityReply(valid: false),
        RandomReply(random: bytes),
        SharedSecretReply(sharedSecret: bytes),
        ErrorReply(code: "invalid_request", message: "field \"plaintext\": not base64\n\u{1} é 🔑 \\"),
        keyReply,
        PublicKeyReply(keyReference: "signing/orders", spec: .ed25519, publicKey: bytes, publicKeyPem: "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"),
        PublicKeyReply(keyReference: "k", spec: .mlKEM768, publicKey: bytes, publicKeyPem: nil),
        DataKeyPairReply(spec: .x25519, publicKey: bytes, publicKeyPem: "pem", privateKeyCiphertext: bytes, keyId: key, version: 2),
        ImportWrappingKeyReply(keyId: key, spec: .rsa3072OAEPSHA256, publicKey: bytes, publicKeyPem: "pem",
                               expiresAt: Date(timeIntervalSince1970: 1_800_003_600), wrapping: "RSA-OAEP-SHA256 then AES-KWP"),
        AliasReply(alias: "a/b", key: "k"),
        StatusReply(status: "shutting down"),
        KeyPageReply(keys: [keyReply, keyReply], nextCursor: key),
        KeyPageReply(keys: [], nextCursor: nil),
        BatchReply<CiphertextReply>(results: [.success(CiphertextReply(ciphertext: bytes, keyId: key, version: 1)),
                                              .failure(.init(code: "invalid_ciphertext", message: "altered"))]),
    ]

    static func roundTrips<T: WritableReply & Equatable>(_ value: T) throws -> Bool {
        try JSONDecoder.keywardAPI.decode(T.self, from: Data(value.json())) == value
    }

    @Test("what the writer writes decodes to the value written, for every reply")
    func writerAndDecoderAgree() throws {
        for sample in Self.samples {
            func check<T: WritableReply>(_ value: T) throws -> Bool {
                guard let equatable = value as? any (WritableReply & Equatable) else { return false }
                return try Self.roundTrips(equatable)
            }
            #expect(try check(sample), "\(type(of: sample)) does not round-trip: \(String(decoding: sample.json(), as: UTF8.self))")
        }
    }

    @Test("the writer writes exactly the type's coding keys, no more and no fewer")
    func writerWritesTheCodingKeys() throws {
        for sample in Self.samples {
            let written = try #require(try JSONSerialization.jsonObject(with: Data(sample.json())) as? [String: Any])
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            let encoded = try #require(try JSONSerialization.jsonObject(with: encoder.encode(sample)) as? [String: Any])
            #expect(Set(written.keys) == Set(encoded.keys), "\(type(of: sample)): writer \(written.keys.sorted()), Codable \(encoded.keys.sorted())")
        }
    }

    @Test("a reply whose field is missing or mistyped is refused by the reader, not half-read")
    func malformedRepliesRefused() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CiphertextReply.self, from: Data(#"{"ciphertext":"AA==","version":1}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CiphertextReply.self, from: Data(#"{"ciphertext":"AA==","keyId":"nope","version":1}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CiphertextReply.self, from: Data(#"{"ciphertext":"%%","keyId":"\#(Self.key)","version":1}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CiphertextReply.self, from: Data(#"{"ciphertext":"AA==","keyId":"\#(Self.key)","version":-1}"#.utf8)) }
    }
}
