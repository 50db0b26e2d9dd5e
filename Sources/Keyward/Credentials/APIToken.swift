import Foundation
import KeywardCrypto

/// An API token's stored record: who it is for, what it may do, and when it stops working.
/// The token's secret is never stored, only its SHA-256.
public struct TokenRecord: Sendable, Hashable, Codable {
    /// The token's id (also the start of the token text, so lookups need no scan).
    public var id: KeyID
    /// The principal the token authenticates as (shown in audit entries).
    public var principal: String
    /// What the token may do.
    public var policy: AccessPolicy
    /// When it was issued.
    public var createdAt: Date
    /// When it stops working, if ever.
    public var expiresAt: Date?
    /// When it was revoked, if it was.
    public var revokedAt: Date?
    /// For an AWS access key (`KeyService.issueAWSCredential`): the version of the store's
    /// credential key its secret is derived from. Nil for a bearer token.
    public var awsSecretVersion: UInt32? = nil
    /// For an AWS access key: the credential key itself (by id, so moving its alias changes
    /// nothing).
    public var awsSecretKey: KeyID? = nil
    /// For a grant (`KeyService.createGrant`): its terms. A grant's row never authenticates:
    /// its hash is of random bytes no one holds, and `authenticate` refuses grant rows.
    public var grant: KeyGrant? = nil

    /// The AWS access key id of this credential, when it is one.
    public var awsAccessKeyID: String? { awsSecretVersion == nil ? nil : AWSAccessKey.id(for: id) }
}

/// A newly issued token: the text is shown once and never stored.
public struct IssuedToken: Sendable {
    /// `kw_<id hex>_<secret base64url>`: 256 random bits after the id.
    public let text: String
    /// The stored record (without the secret).
    public let record: TokenRecord
}

/// A token's id and the SHA-256 of its text: enough to check the token again
/// (`KeyService.authenticate(_:)`), never enough to present it. What a console session holds in
/// place of the token.
public struct TokenReference: Sendable, Hashable {
    /// The token's id.
    public let id: KeyID
    /// SHA-256 of the token's text (the store's lookup value).
    let hash: [UInt8]

    /// The reference of `text`, or nil when it is not token-shaped.
    public init?(_ text: String) {
        guard let (id, hash) = TokenText.parse(text) else { return nil }
        self.id = id
        self.hash = hash
    }
}

/// Token text: `kw_` + 32 hex digits of the id + `_` + 43 base64url characters of the secret.
enum TokenText {
    static func make(id: KeyID, secret: [UInt8]) -> String {
        "kw_" + id.bytes.map { String(format: "%02x", $0) }.joined() + "_" + Data(secret).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Caller-chosen token text (`--dev-root-token`, tokens carried over from another system):
    /// 32 to 256 printable ASCII characters without spaces. Its id is derived from the text.
    static func isCustom(_ text: String) -> Bool {
        (32...256).contains(text.utf8.count) && text.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// The id and the SHA-256 of the whole text, or nil when the text is not token-shaped.
    static func parse(_ text: String) -> (id: KeyID, hash: [UInt8])? {
        if !text.hasPrefix("kw_"), isCustom(text) {
            let derived = Array(SHA256Hash.hash(Array("keyward token id\u{0}\(text)".utf8)).prefix(16))
            guard let id = try? KeyID(bytes: derived) else { return nil }
            return (id, hash(text))
        }
        let parts = text.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "kw", parts[1].count == 32, parts[2].count == 43,
              parts[2].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
        var bytes: [UInt8] = []
        var index = parts[1].startIndex
        while index < parts[1].endIndex {
            let next = parts[1].index(index, offsetBy: 2)
            guard let byte = UInt8(parts[1][index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        guard let id = try? KeyID(bytes: bytes) else { return nil }
        return (id, hash(text))
    }

    static func hash(_ text: String) -> [UInt8] { SHA256Hash.hash(utf8: text) }
}
