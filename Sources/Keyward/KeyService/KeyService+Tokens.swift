import Foundation
import KeywardCrypto
import KeywardStorage

extension KeyService {
    /// Issues an API token for `principal` with `policy`: 256 random bits, returned once as
    /// text; the store keeps only its SHA-256, in a MAC'd row.
    ///
    /// - Parameters:
    ///   - lifetime: seconds until it expires (nil: never; at most 10 years); never past the
    ///     expiry of the credential `actor` presented.
    ///   - text: caller-chosen token text (32 to 256 printable ASCII characters, no spaces, and
    ///     not beginning with `kw_` unless it is a token Keyward generated, whose id it keeps),
    ///     for scripts and development; nil (the default) generates 256 random bits.
    public func issueToken(principal: String, policy: AccessPolicy, lifetime: TimeInterval?, text chosen: String? = nil,
                           actor: Caller) async throws(KeywardError) -> IssuedToken {
        try Self.checkCredential(principal: principal, lifetime: lifetime)
        return try await auditor.audited(.issueToken, caller: actor, key: nil) { (event) throws(KeywardError) -> IssuedToken in
            try authorizeIssuing(policy, actor)
            try await checkNamedAccess(principal, actor)
            var id = KeyID()
            if let chosen {
                guard TokenText.isCustom(chosen) else {
                    throw .invalidArgument("a chosen token is 32 to 256 printable ASCII characters without spaces")
                }
                guard let parsed = TokenText.parse(chosen) else {
                    // Only a generated token's text begins with kw_ (its id follows).
                    throw .invalidArgument("a chosen token that begins with kw_ must be one Keyward generated (kw_, 32 hex digits, _, "
                                           + "43 base64url characters); choose a text that does not begin with kw_")
                }
                id = parsed.id
            }
            var secret = [UInt8](repeating: 0, count: 32)
            defer { SecureZero.wipe(&secret) }
            do throws(KeywardCryptoError) {
                let random = try SecretBytes.random(count: 32)
                random.withSecretBytes(InsecureSecretAccess.token) { secret = Array($0) }
            } catch {
                throw .crypto(error)
            }
            let text = chosen ?? TokenText.make(id: id, secret: secret)
            let now = clock.now
            let record = TokenRecord(id: id, principal: principal, policy: policy, createdAt: now,
                                     expiresAt: Self.expiry(lifetime, from: now, issuer: actor), revokedAt: nil)
            let row = try records.tokenRow(record, hash: TokenText.hash(text), revision: 1)
            do throws(StorageError) { try await store.insertToken(row) } catch {
                if case .conflict = error { throw .invalidArgument("a token with this text already exists") }
                throw .storage(error)
            }
            event.anchor(.token(id), row.revision)
            event.detail = "token \(id) for \(principal)"
            return IssuedToken(text: text, record: record)
        }
    }

    /// Issues an AWS access key for `principal` with `policy` (`AWSAccessKey`): the access key
    /// id and the secret access key are returned once; the store keeps a MAC'd record whose
    /// secret is derived, when needed, from the store's credential key (created on first use).
    /// Authorised and audited as `issueToken` is: `manage-tokens`, and no wider than the issuer.
    public func issueAWSCredential(principal: String, policy: AccessPolicy, lifetime: TimeInterval?, actor: Caller) async throws(KeywardError) -> AWSCredential {
        try Self.checkCredential(principal: principal, lifetime: lifetime)
        return try await auditor.audited(.issueToken, caller: actor, key: nil) { (event) throws(KeywardError) -> AWSCredential in
            try authorizeIssuing(policy, actor)
            try await checkNamedAccess(principal, actor)
            let signer = try await awsCredentialKey(actor: actor.internalStep)
            let id = KeyID()
            let version = try await records.loadVersion(signer, signer.metadata.currentVersion)
            let secret = try AWSAccessKey.secret(version.material, id: id)
            let now = clock.now
            var record = TokenRecord(id: id, principal: principal, policy: policy, createdAt: now,
                                     expiresAt: Self.expiry(lifetime, from: now, issuer: actor), revokedAt: nil)
            record.awsSecretVersion = version.number
            record.awsSecretKey = signer.row.id
            let accessKeyID = AWSAccessKey.id(for: id)
            let row = try records.tokenRow(record, hash: AWSAccessKey.hash(accessKeyID), revision: 1)
            try await storing({ () async throws(StorageError) in try await store.insertToken(row) })
            event.anchor(.token(id), row.revision)
            event.detail = "AWS access key \(accessKeyID) for \(principal)"
            return AWSCredential(accessKeyID: accessKeyID, secretAccessKey: secret, record: record)
        }
    }

    /// Checks a presented AWS access key id: issued here, its row intact, not revoked, not
    /// expired; returns its record and its secret (for the caller to check the request's
    /// signature). Every failure is `unauthenticated`.
    public func authenticateAWS(_ accessKeyID: String) async throws(KeywardError) -> AWSSecret {
        guard let id = AWSAccessKey.credentialID(accessKeyID) else { throw .unauthenticated("unknown access key") }
        let fence = records.fence()
        guard let row = try await storing({ () async throws(StorageError) in try await store.token(id) }),
              ConstantTime.equals(row.hash, AWSAccessKey.hash(accessKeyID)) else {
            throw .unauthenticated("unknown access key")
        }
        let record: TokenRecord
        do { record = try records.verifiedToken(row, fence) } catch { throw await auditor.log.explainingRotation(error) }
        guard let number = record.awsSecretVersion, let keyID = record.awsSecretKey else { throw .unauthenticated("unknown access key") }
        if let revoked = record.revokedAt, revoked <= clock.now { throw .unauthenticated("access key \(accessKeyID) was revoked") }
        if let expiry = record.expiresAt, expiry <= clock.now { throw .unauthenticated("access key \(accessKeyID) expired") }
        let key = try await records.load(keyID)
        let version = try await records.loadVersion(key, number)
        let secret = try AWSAccessKey.secret(version.material, id: id)
        let bytes: SecretBytes
        do throws(KeywardCryptoError) { bytes = try SecretBytes(copying: Array(secret.utf8)) } catch { throw .crypto(error) }
        return AWSSecret(record: record, secret: bytes)
    }

    /// A credential's principal name (1 to 256 characters) and lifetime (a minute to ten
    /// years, or none).
    static func checkCredential(principal: String, lifetime: TimeInterval?) throws(KeywardError) {
        guard (1...256).contains(principal.unicodeScalars.count) else { throw .invalidArgument("a principal name is 1 to 256 characters") }
        try PrintableText.check(principal, "the principal name")
        if let lifetime, !(60...(10 * 365 * 86_400)).contains(lifetime) {
            throw .invalidArgument("credential lifetime \(Int(lifetime)) s; choose one minute to ten years")
        }
    }

    /// When a credential issued at `now` for `lifetime` expires: never later than the issuer's
    /// own credential, so a manager whose access ends cannot leave a credential that outlives it
    /// (as Vault caps a child token's TTL at its parent's).
    static func expiry(_ lifetime: TimeInterval?, from now: Date, issuer: Caller) -> Date? {
        let requested = lifetime.map { now.addingTimeInterval($0) }
        guard let limit = issuer.expiresAt else { return requested }
        return min(requested ?? limit, limit)
    }

    /// `actor` may issue a credential with `policy`: it holds `manage-tokens`, and issues only
    /// within its own grants (no minting a wider credential).
    func authorizeIssuing(_ policy: AccessPolicy, _ actor: Caller) throws(KeywardError) {
        try authorizeAdministration(.manageTokens, actor)
        if let held = actor.policy, !held.covers(policy) {
            throw .notPermitted("\(actor.principal) may issue credentials only with grants it holds itself; the requested policy goes beyond its own")
        }
    }

    /// The store's credential key (HMAC-SHA-256, alias `keyward/aws-credentials`, never backed
    /// up), created on first use.
    private func awsCredentialKey(actor: Caller) async throws(KeywardError) -> LoadedKey {
        do {
            return try await records.load(try await records.resolve(AWSAccessKey.keyAlias))
        } catch {
            guard case .keyNotFound = error else { throw error }
        }
        let created = try await createKey(CreateKeyRequest(spec: .hmacSHA256, aliases: [AWSAccessKey.keyAlias],
                                                           description: "derives the secrets of AWS access keys", backupAllowed: false), actor: actor)
        return try await records.load(created.metadata.id)
    }

    /// A page of token records (never their secrets): at most `limit` (1 to 1,000), in id
    /// order, after `cursor`; `nextCursor` continues, nil on the last page.
    public func listTokens(after cursor: KeyID? = nil, limit: Int = 100, actor: Caller) async throws(KeywardError) -> (tokens: [TokenRecord], nextCursor: KeyID?) {
        guard (1...1000).contains(limit) else { throw .invalidArgument("page size \(limit); choose 1 to 1000") }
        return try await auditor.audited(.key(.manageTokens), caller: actor, key: nil) { (event) throws(KeywardError) -> ([TokenRecord], KeyID?) in
            try authorizeAdministration(.manageTokens, actor)
            event.detail = "list tokens"
            let fence = records.fence()
            let rows = try await storing({ () async throws(StorageError) in try await store.tokens(after: cursor, limit: limit) })
            var tokens: [TokenRecord] = []
            for row in rows {
                let record = try records.verifiedToken(row, fence)
                if record.grant == nil { tokens.append(record) }
            }
            return (tokens, rows.count == limit ? rows.last?.id : nil)
        }
    }

    /// `actor` may revoke or rewrite the token `record`: it holds every grant the token holds, so
    /// a delegated token manager cannot lock out the operator's root token or another team's.
    private func authorizeManaging(_ record: TokenRecord, _ verb: String, _ actor: Caller) throws(KeywardError) {
        if let held = actor.policy, !held.covers(record.policy) {
            throw .notPermitted("\(actor.principal) may \(verb) only tokens whose grants it holds itself; token \(record.id) holds more")
        }
    }

    /// Revokes a token; it fails authentication from then on. `actor` needs `manage-tokens` and
    /// every grant the token holds (its own token always qualifies).
    public func revokeToken(_ id: KeyID, actor: Caller) async throws(KeywardError) {
        try await auditor.audited(.revokeToken, caller: actor, key: nil) { (event) throws(KeywardError) -> Void in
            event.detail = "token \(id)"
            try authorizeAdministration(.manageTokens, actor)
            let fence = records.fence()
            guard let row = try await storing({ () async throws(StorageError) in try await store.token(id) }) else {
                try records.checkAbsent(.token(id), fence)
                throw .invalidArgument("no token \(id)")
            }
            var record = try records.verifiedToken(row, fence)
            guard record.grant == nil else { throw .invalidArgument("\(id) is a grant; revoke it with revokeGrant") }
            try authorizeManaging(record, "revoke", actor)
            record.revokedAt = clock.now
            let updated = try records.tokenRow(record, hash: row.hash, revision: row.revision + 1)
            try await storing({ () async throws(StorageError) in try await store.updateToken(updated, expectedRevision: row.revision) })
            event.anchor(.token(id), updated.revision)
        }
    }

    /// Replaces a token's policy (its text, principal and expiry stay): authorised as issuing
    /// is, so `actor` needs `manage-tokens` and may grant only what it holds itself. Nodes
    /// honour the new policy within the coherence bound, as they honour a revocation.
    public func changeTokenPolicy(_ id: KeyID, to policy: AccessPolicy, actor: Caller) async throws(KeywardError) -> TokenRecord {
        try await auditor.audited(.changeTokenPolicy, caller: actor, key: nil) { (event) throws(KeywardError) -> TokenRecord in
            event.detail = "token \(id)"
            try authorizeIssuing(policy, actor)
            let fence = records.fence()
            guard let row = try await storing({ () async throws(StorageError) in try await store.token(id) }) else {
                try records.checkAbsent(.token(id), fence)
                throw .invalidArgument("no token \(id)")
            }
            var record = try records.verifiedToken(row, fence)
            guard record.grant == nil else { throw .invalidArgument("\(id) is a grant, not a token") }
            guard record.revokedAt == nil else { throw .invalidArgument("token \(id) is revoked; issue a new one") }
            try authorizeManaging(record, "change", actor)
            record.policy = policy
            let updated = try records.tokenRow(record, hash: row.hash, revision: row.revision + 1)
            try await storing({ () async throws(StorageError) in try await store.updateToken(updated, expectedRevision: row.revision) })
            event.anchor(.token(id), updated.revision)
            return record
        }
    }

    /// Checks a presented token: well-formed, known, its hash equal (constant time), its row
    /// intact, not revoked, not expired. Every failure is `unauthenticated`, with a reason for the
    /// log that never repeats the token.
    public func authenticate(_ text: String) async throws(KeywardError) -> TokenRecord {
        guard let reference = TokenReference(text) else { throw .unauthenticated("malformed token") }
        return try await authenticate(reference)
    }

    /// Checks a token known by its `TokenReference` (a console session keeps that, never the
    /// text) exactly as `authenticate(_:)` checks the text: known, hash equal, row intact, not
    /// revoked, not expired.
    public func authenticate(_ reference: TokenReference) async throws(KeywardError) -> TokenRecord {
        let (id, hash) = (reference.id, reference.hash)
        let fence = records.fence()
        guard let row = try await storing({ () async throws(StorageError) in try await store.token(id) }) else {
            throw .unauthenticated("unknown token")
        }
        guard ConstantTime.equals(row.hash, hash) else { throw .unauthenticated("unknown token") }
        let record: TokenRecord
        do { record = try records.verifiedToken(row, fence) } catch { throw await auditor.log.explainingRotation(error) }
        guard record.grant == nil else { throw .unauthenticated("unknown token") }
        if let revoked = record.revokedAt, revoked <= clock.now { throw .unauthenticated("token \(id) was revoked") }
        if let expiry = record.expiresAt, expiry <= clock.now { throw .unauthenticated("token \(id) expired") }
        return record
    }
}
