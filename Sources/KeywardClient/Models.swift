import Foundation

/// A key as the service describes it.
public struct KeyInfo: Sendable, Decodable, Equatable {
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
}

/// A page of keys and the cursor for the next one.
public struct KeyList: Sendable, Decodable, Equatable {
    public var keys: [KeyInfo]
    public var nextCursor: String?
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

struct WireCiphertext: Decodable {
    var ciphertext: String
    var keyId: String
    var version: Int
}

struct WirePlaintext: Decodable {
    var plaintext: String
    var keyId: String
    var version: Int
}

struct WireSignature: Decodable {
    var signature: String
    var keyId: String
    var version: Int
}

struct WireMAC: Decodable {
    var mac: String
    var keyId: String
    var version: Int
}

struct WireValid: Decodable {
    var valid: Bool
}

struct WireDataKey: Decodable {
    var plaintext: String?
    var ciphertext: String
    var keyId: String
    var version: Int
}

struct WireRandom: Decodable {
    var random: String
}

struct WireError: Decodable {
    struct Body: Decodable {
        var code: String
        var message: String
    }
    var error: Body
}

struct WireBatch<Item: Decodable>: Decodable {
    var results: [WireBatchItem<Item>]
}

struct WireBatchItem<Item: Decodable>: Decodable {
    var item: Item?
    var error: WireError.Body?

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        if container.contains(AnyKey(stringValue: "error")) {
            error = try container.decode(WireError.Body.self, forKey: AnyKey(stringValue: "error"))
            item = nil
        } else {
            item = try Item(from: decoder)
            error = nil
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
