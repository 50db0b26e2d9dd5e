import Foundation
import KeywardCrypto

/// A grant: a narrow, revocable permission for one grantee on one key (AWS KMS's grants, in
/// Keyward's policy model for every front end).
///
/// A grant adds to its grantee's policy: `KeyService` checks the caller's policy first and, when
/// it refuses, the live grants on the key. A grant names its grantee as a principal name (the
/// name a credential was issued for), a credential id (a token id or an AWS access key id), or a
/// caller's whole principal string; it never authenticates anyone. It is stored as a credential
/// row (MAC'd, revision-anchored, revocable like a token), so revoking it reaches every node
/// within the coherence bound.
public struct KeyGrant: Sendable, Hashable, Codable {
    /// The key the grant is on.
    public var key: KeyID
    /// Who may use it.
    public var grantee: String
    /// The operations it permits on the key (a subset of ``grantable``).
    public var operations: Set<ServiceOperation>
    /// Encryption-context conditions for the operations that take a context.
    public var constraints: GrantConstraints?
    /// Who may retire it (besides callers that may manage the key's grants).
    public var retiringPrincipal: String?
    /// Whether the grantee may retire it (AWS's `RetireGrant` operation in a grant).
    public var granteeMayRetire: Bool
    /// A name; creating a grant with the name and terms of a live one returns that one.
    public var name: String?
    /// The principal that created it.
    public var issuer: String

    /// What a grant can permit: using the key, describing it, and (`manage-grants`) granting
    /// the same or less on to others.
    public static let grantable: Set<ServiceOperation> = [
        .encrypt, .decrypt, .reEncrypt, .generateDataKey, .generateDataKeyPair, .sign, .verify, .mac, .verifyMAC,
        .deriveSharedSecret, .publicKey, .describe, .manageGrants,
    ]

    /// Whether a key of `spec` can perform `operation` at all: a grant of an operation the key's
    /// purpose rules out (`sign` on an encryption key, `public-key` on a symmetric one) would
    /// allow nothing, and is refused when the grant is made. Describing a key and managing its
    /// grants fit every key.
    public static func fits(_ operation: ServiceOperation, _ spec: KeySpec) -> Bool {
        let uses: KeyOperation
        switch operation {
        case .encrypt, .generateDataKey, .generateDataKeyPair: uses = .encrypt
        case .decrypt, .reEncrypt: uses = .decrypt
        case .sign: uses = .sign
        case .verify: uses = .verify
        case .mac: uses = .mac
        case .verifyMAC: uses = .verifyMAC
        case .deriveSharedSecret: uses = .deriveSharedSecret
        case .decapsulate: uses = .decapsulate
        case .publicKey: return !spec.isSymmetric
        default: return true
        }
        return uses.purpose == spec.purpose
    }

    /// The operations that take an encryption context, to which constraints apply.
    public static let contextual: Set<ServiceOperation> = [.encrypt, .decrypt, .reEncrypt, .generateDataKey, .generateDataKeyPair]

    /// Whether the grant lets `principal` do `operation`, for a request whose encryption context
    /// is `context` (nil when the request has none, or several, as a batch). Constraints bind the
    /// operations that take a context; such an operation without a known context is refused.
    public func permits(_ operation: ServiceOperation, principal: String, context: EncryptionContext?) -> Bool {
        guard operations.contains(operation), Self.principal(principal, is: grantee) else { return false }
        guard let constraints, Self.contextual.contains(operation) else { return true }
        guard let context else { return false }
        return constraints.admits(context)
    }

    /// Whether a caller's `principal` (`token:ID:NAME`, `aws:ACCESS_KEY_ID:NAME`, `mtls:...`, or
    /// a bare name) is `name`: the whole principal, its NAME, or its credential id.
    public static func principal(_ principal: String, is name: String) -> Bool {
        if principal == name { return true }
        let parts = principal.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "token" || parts[0] == "aws" else { return false }
        return parts[1] == name || parts[2] == name
    }
}

/// Encryption-context conditions on a grant (AWS's `EncryptionContextSubset` and
/// `EncryptionContextEquals`).
public struct GrantConstraints: Sendable, Hashable, Codable {
    /// Pairs the request's context must contain.
    public var contextSubset: [String: String]?
    /// The request's context must be exactly these pairs.
    public var contextEquals: [String: String]?

    /// Conditions on the request's encryption context.
    public init(contextSubset: [String: String]? = nil, contextEquals: [String: String]? = nil) {
        self.contextSubset = contextSubset
        self.contextEquals = contextEquals
    }

    /// Whether `context` meets both conditions.
    public func admits(_ context: EncryptionContext) -> Bool {
        if let contextEquals, context.pairs != contextEquals { return false }
        if let contextSubset, !contextSubset.allSatisfy({ context.pairs[$0.key] == $0.value }) { return false }
        return true
    }

    /// Whether every context these constraints admit, `other` admits too: a grant passed on may
    /// only narrow the constraints of the grant it came from.
    public func isAtLeastAsStrict(as other: GrantConstraints?) -> Bool {
        guard let other else { return true }
        if let equals = other.contextEquals, contextEquals != equals { return false }
        if let subset = other.contextSubset {
            let required = contextEquals ?? contextSubset ?? [:]
            if !subset.allSatisfy({ required[$0.key] == $0.value }) { return false }
        }
        return true
    }
}

/// A live grant as `KeyService` lists it: its id, terms and when it was made.
public struct GrantRecord: Sendable, Hashable {
    /// The grant's id.
    public var id: KeyID
    /// Its terms.
    public var grant: KeyGrant
    /// When it was created.
    public var createdAt: Date

    /// The token a caller presents to use the grant at once on a node that has not yet seen it
    /// (AWS's grant tokens). It names the grant and carries no authority of its own.
    public var token: String { GrantRecord.tokenPrefix + id.description }

    static let tokenPrefix = "kw-grant-v1:"

    /// The grant a grant token names, if it is one.
    public static func grantID(fromToken token: String) -> KeyID? {
        guard token.hasPrefix(tokenPrefix) else { return nil }
        return KeyID(parsing: String(token.dropFirst(tokenPrefix.count)))
    }
}
