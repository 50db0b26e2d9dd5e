import Foundation
import KeywardCrypto
import KeywardStorage

/// What to create.
public struct CreateKeyRequest: Sendable, Hashable {
    /// The key's spec (and so its one purpose).
    public var spec: KeySpec
    /// Aliases to create with the key.
    public var aliases: [String]
    /// Tags for selection and policy.
    public var tags: [String: String]
    public var description: String
    /// Whether the material may ever be exported (never for signing keys in plaintext).
    public var exportable: Bool
    /// Whether backups include the key; nil means "yes, except for signing keys".
    public var backupAllowed: Bool?
    /// Automatic rotation period in days (1 to 2,560), or nil for none.
    public var rotationPeriodDays: Int?
    /// `active` (default) or `preActive`.
    public var initialState: KeyState
    /// When the key stops working, if ever.
    public var expiresAt: Date?
    /// Whether every use of the key must carry a non-empty encryption context (symmetric
    /// encryption keys only).
    public var contextRequired: Bool
    /// The key's own policy from the start, if any (`KeyService.setKeyPolicy`).
    public var keyPolicy: KeyPolicy? = nil
    /// Skips the check that `keyPolicy` leaves the creator able to set the key's policy again.
    public var bypassKeyPolicyLockoutCheck = false

    public init(spec: KeySpec = .defaultSymmetric, aliases: [String] = [], tags: [String: String] = [:], description: String = "",
                exportable: Bool = false, backupAllowed: Bool? = nil, rotationPeriodDays: Int? = nil, initialState: KeyState = .active, expiresAt: Date? = nil,
                contextRequired: Bool = false) {
        self.spec = spec
        self.aliases = aliases
        self.tags = tags
        self.description = description
        self.exportable = exportable
        self.backupAllowed = backupAllowed
        self.rotationPeriodDays = rotationPeriodDays
        self.initialState = initialState
        self.expiresAt = expiresAt
        self.contextRequired = contextRequired
    }
}

extension KeyService {
    /// Destruction waits at least 7 and at most 30 days; 30 by default.
    public static let destructionWaitingDays = 7...30

    // MARK: Create

    /// Creates a key with freshly generated material (version 1).
    public func createKey(_ request: CreateKeyRequest, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let generated = try await MaterialGeneration.generate(request.spec)
        return try await insertKey(request, material: generated.material, origin: "keyward", actor: actor)
    }

    /// Creates a key from caller-supplied material (bring your own key).
    public func importKey(_ request: CreateKeyRequest, material: consuming KeyMaterial, actor: Caller) async throws(KeywardError) -> KeyDescription {
        guard material.spec == request.spec else {
            throw .invalidArgument("the material is \(material.spec.rawValue) but the request asks for \(request.spec.rawValue)")
        }
        return try await insertKey(request, material: material, origin: "imported", actor: actor)
    }

    private func insertKey(_ request: CreateKeyRequest, material: borrowing KeyMaterial, origin: String, importWrappingFor: String? = nil,
                           importTarget: KeyID? = nil, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let id = KeyID()
        let sealed = try protection.seal(material, keyID: id, version: 1)
        return try await insertKey(request, id: id, sealed: sealed, origin: origin, importWrappingFor: importWrappingFor, importTarget: importTarget, actor: actor)
    }

    /// Inserts a key whose version 1 holds `sealed` material, or, with nil, no material yet
    /// (a key created for imported material: version 1 is an empty tombstone until the import).
    func insertKey(_ request: CreateKeyRequest, id: KeyID, sealed: [UInt8]?, origin: String, importWrappingFor: String? = nil,
                   importTarget: KeyID? = nil, actor: Caller) async throws(KeywardError) -> KeyDescription {
        try Self.validate(request)
        return try await auditor.audited(.key(.create), caller: actor, key: id) { (event) throws(KeywardError) -> KeyDescription in
            let now = clock.now
            if let expiry = request.expiresAt, expiry <= now {
                throw .invalidArgument("expiresAt \(expiry.formatted(.iso8601)) is not in the future; a key must be usable when created")
            }
            var metadata = KeyMetadata(
                id: id, spec: request.spec, state: request.initialState, createdAt: now, stateChangedAt: now,
                description: request.description, tags: request.tags, exportable: request.exportable,
                backupAllowed: request.backupAllowed ?? (request.spec.purpose != .sign),
                rotationPeriodDays: request.rotationPeriodDays,
                nextRotationAt: request.rotationPeriodDays.map { now.addingTimeInterval(Double($0) * 86_400) },
                currentVersion: 1, minDecryptionVersion: 1, destructionDate: nil, origin: origin,
                expiresAt: request.expiresAt, importWrappingFor: importWrappingFor,
                contextRequired: request.contextRequired ? true : nil, awaitingMaterial: sealed == nil ? true : nil, importTarget: importTarget)
            if let keyPolicy = request.keyPolicy {
                try Self.check(keyPolicy)
                metadata.keyPolicy = keyPolicy
                if !request.bypassKeyPolicyLockoutCheck, let policy = actor.policy,
                   policyDecision(.setKeyPolicy, on: KeyDescription(metadata: metadata, aliases: request.aliases), policy: policy, actor) != true {
                    throw .notPermitted("the key policy would leave \(actor.principal) unable to change it; allow it set-key-policy, or bypass the lockout check on purpose")
                }
            }
            if let policy = actor.policy, !policy.allows(.create, on: KeyDescription(metadata: metadata, aliases: request.aliases))
                || !request.aliases.allSatisfy({ policy.allowsNaming($0, for: .create) }) {
                throw .accessDenied(principal: actor.principal, operation: .create, key: nil)
            }
            let row = try records.keyRow(metadata, revision: 1)
            let version = try records.versionRow(keyID: id, version: 1, sealed: sealed ?? [],
                                             metadata: VersionMetadata(state: sealed == nil ? "destroyed" : "active", createdAt: now, encryptionsReserved: 0), revision: 1)
            var aliases: [AliasRow] = []
            for name in request.aliases {
                aliases.append(try records.aliasRow(name: try Self.newAliasName(name), keyID: id, revision: records.firstAliasRevision(name)))
            }
            do throws(StorageError) {
                try await store.insertKey(row, firstVersion: version, aliases: aliases)
            } catch {
                if case .conflict = error { throw .invalidArgument("an alias in \(request.aliases) is already taken") }
                throw .storage(error)
            }
            event.version = 1
            event.anchor(.key(id), row.revision)
            event.anchor(.version(id, 1), version.revision)
            for alias in aliases { event.anchor(.alias(alias.name), alias.revision) }
            event.detail = "spec \(request.spec.rawValue), origin \(origin)\(aliases.isEmpty ? "" : ", aliases \(request.aliases.joined(separator: ","))")"
            return KeyDescription(metadata: metadata, aliases: request.aliases.sorted())
        }
    }

    /// A tag a key may carry (and a rule's `tag=NAME=VALUE` may name): a name of 1 to 128
    /// printable characters, a value of up to 256.
    static func validTag(_ name: String, _ value: String) throws(KeywardError) {
        guard (1...128).contains(name.unicodeScalars.count), value.unicodeScalars.count <= 256 else {
            throw .invalidArgument("a tag has a name of 1 to 128 characters and a value of up to 256")
        }
        try PrintableText.check(name, "a tag name")
        try PrintableText.check(value, "the value of a tag")
    }

    static func validate(_ request: CreateKeyRequest) throws(KeywardError) {
        guard request.initialState == .active || request.initialState == .preActive else {
            throw .invalidArgument("a key starts active or pre-active, not \(request.initialState.rawValue)")
        }
        guard request.description.unicodeScalars.count <= 1024 else { throw .invalidArgument("description longer than 1,024 characters") }
        guard request.tags.count <= 50 else { throw .invalidArgument("at most 50 tags") }
        try PrintableText.check(request.description, "the description", lineBreaks: true)
        for (name, value) in request.tags { try validTag(name, value) }
        if let days = request.rotationPeriodDays, !(1...2560).contains(days) {
            throw .invalidArgument("rotation period \(days) days; choose 1 to 2560")
        }
        if request.contextRequired && !(request.spec.isSymmetric && request.spec.purpose == .encrypt) {
            throw .invalidArgument("contextRequired is for symmetric encryption keys, not \(request.spec.rawValue)")
        }
        if request.exportable && request.spec.purpose == .sign {
            throw .notPermitted("signing keys are never exportable in plaintext")
        }
        for alias in request.aliases { _ = try newAliasName(alias) }
        guard Set(request.aliases).count == request.aliases.count else { throw .invalidArgument("an alias is listed twice") }
        guard request.aliases.count <= maximumAliasesPerKey else {
            throw .invalidArgument("\(request.aliases.count) aliases; a key has at most \(maximumAliasesPerKey)")
        }
    }

    // MARK: Describe / list

    /// The key's metadata and aliases.
    public func describe(key reference: String, actor: Caller) async throws(KeywardError) -> KeyDescription {
        try await withUsableKey(reference, .describe, purpose: nil, caller: actor) { (key, _) throws(KeywardError) -> KeyDescription in
            KeyDescription(metadata: key.metadata, aliases: try await records.authenticAliases(of: key.row.id))
        }
    }

    /// A page of keys (at most `limit`, 1 to 1,000), filtered by state, tag or alias, after
    /// `cursor`, and by `matching` when given (applied, like the policy, before paging). Audited
    /// as one `list` entry per page.
    public func listKeys(state: KeyState? = nil, tag: (key: String, value: String)? = nil, alias: String? = nil,
                         matching: (@Sendable (KeyDescription) -> Bool)? = nil,
                         after cursor: KeyID? = nil, limit: Int = 100, actor: Caller) async throws(KeywardError) -> KeyPage {
        guard (1...1000).contains(limit) else { throw .invalidArgument("page size \(limit); choose 1 to 1000") }
        let filter = KeyFilter(state: state?.rawValue, tag: tag, alias: try alias.map(Self.validAlias))
        return try await auditor.audited(.listKeys, caller: actor, key: nil) { (event) throws(KeywardError) -> KeyPage in
            // The policy filters before paging: pages are read until `limit` keys the caller may
            // describe are found or the store ends, and the cursor is the last key returned, so
            // neither the page boundaries nor the cursor tell the caller of keys it cannot see.
            var keys: [KeyDescription] = []
            var position = cursor
            var exhausted = false
            while keys.count < limit, !exhausted {
                let after = position
                let fence = records.fence()
                let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: filter, after: after, limit: limit) })
                exhausted = rows.count < limit
                for row in rows {
                    position = row.id
                    let description = KeyDescription(metadata: try records.verifiedMetadata(row, fence), aliases: try await records.authenticAliases(of: row.id))
                    if actor.policy.map({ policyDecision(.describe, on: description, policy: $0, actor) == true }) ?? true, matching?(description) ?? true {
                        keys.append(description)
                        if keys.count == limit { break }
                    }
                }
            }
            event.detail = "\(keys.count) keys"
            let more = keys.count == limit && !(exhausted && position == keys.last?.metadata.id)
            return KeyPage(keys: keys, nextCursor: more ? keys.last?.metadata.id : nil)
        }
    }

    // MARK: Metadata changes

    /// Writes new metadata for a key (CAS on its revision), records the new revision in the
    /// audit entry, and returns the key as it now is.
    func commit(_ key: LoadedKey, _ metadata: KeyMetadata, event: inout AuditEvent) async throws(KeywardError) -> KeyDescription {
        let row = try await records.commit(key, metadata)
        event.anchor(.key(row.id), row.revision)
        return KeyDescription(metadata: metadata, aliases: try await records.authenticAliases(of: key.row.id))
    }

    /// Moves a key through its lifecycle: `enable`, `disable`, `deactivate`, `markCompromised`,
    /// `scheduleDestruction` (with `waitingDays`), `cancelDestruction`. With `requirement`, only
    /// when the key, as this transition reads it, carries the tag it names.
    public func transition(key reference: String, _ operation: ServiceOperation, waitingDays: Int? = nil, requiring requirement: TagRequirement? = nil,
                           actor: Caller) async throws(KeywardError) -> KeyDescription {
        guard LifecycleTable.target(of: operation, from: .active) != nil, operation != .destroy else {
            throw .invalidArgument("\(operation.rawValue) is not a lifecycle transition")
        }
        return try await withUsableKey(reference, operation, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> KeyDescription in
            let id = key.row.id
            guard let target = LifecycleTable.target(of: operation, from: key.metadata.state) else {
                throw .wrongState(key: id, state: key.metadata.state, operation: operation)
            }
            if target == .active, key.metadata.awaitingMaterial == true {
                throw .notPermitted("key \(id) holds no material yet; import its material first")
            }
            if let requirement, !requirement.isMet(by: key.metadata.tags) { throw .invalidArgument(requirement.refusal) }
            var metadata = key.metadata
            metadata.state = target
            metadata.stateChangedAt = clock.now
            metadata.destructionDate = nil
            if operation == .scheduleDestruction {
                let days = waitingDays ?? Self.destructionWaitingDays.upperBound
                guard Self.destructionWaitingDays.contains(days) else {
                    throw .invalidArgument("waiting period \(days) days; choose \(Self.destructionWaitingDays.lowerBound) to \(Self.destructionWaitingDays.upperBound)")
                }
                metadata.destructionDate = clock.now.addingTimeInterval(Double(days) * 86_400)
                event.detail = "destruction on \(ISO8601DateFormatter().string(from: metadata.destructionDate!))"
            }
            return try await commit(key, metadata, event: &event)
        }
    }

    /// Changes the description, tags (all of them with `tags`, or some with `tagChanges`,
    /// applied to the tags as this update reads them), rotation period or minimum decryption
    /// version.
    ///
    /// Each of these says what the key should hold, not what it held, so when another change to
    /// the key commits between this update's read and its write (the store's compare-and-swap
    /// refuses the write), the update reads the key again and reapplies itself, checks included,
    /// instead of telling the caller to retry: callers tagging one key at once all succeed. Every
    /// attempt is audited. Each round of colliding updates commits at least one of them, so
    /// `updateAttempts` bounds the retries only against a store that keeps refusing.
    ///
    /// - Parameter validating: a rule the key must satisfy as updated (a front end's own rule
    ///   across fields, such as Transit's min_encryption_version against the versions), checked
    ///   on each attempt against the key as that attempt read it: what it refuses is not written.
    public func update(key reference: String, description: String? = nil, tags: [String: String]? = nil, tagChanges: TagChanges? = nil,
                       rotationPeriodDays: Int?? = nil, minDecryptionVersion: UInt32? = nil,
                       validating: (@Sendable (_ updated: KeyMetadata) throws(KeywardError) -> Void)? = nil,
                       actor: Caller) async throws(KeywardError) -> KeyDescription {
        var attempt = 1
        while true {
            do {
                return try await updateOnce(key: reference, description: description, tags: tags, tagChanges: tagChanges, rotationPeriodDays: rotationPeriodDays,
                                            minDecryptionVersion: minDecryptionVersion, validating: validating, actor: actor)
            } catch {
                guard case .storage(.conflict) = error, attempt < Self.updateAttempts else { throw error }
                attempt += 1
            }
        }
    }

    /// How many times `update` tries before it reports a conflict.
    static let updateAttempts = 64

    private func updateOnce(key reference: String, description: String?, tags: [String: String]?, tagChanges: TagChanges?,
                            rotationPeriodDays: Int??, minDecryptionVersion: UInt32?,
                            validating: (@Sendable (KeyMetadata) throws(KeywardError) -> Void)?, actor: Caller) async throws(KeywardError) -> KeyDescription {
        try await withUsableKey(reference, .update, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> KeyDescription in
            var metadata = key.metadata
            if let description { metadata.description = description }
            if let tags { metadata.tags = tags }
            if let tagChanges { metadata.tags = tagChanges.applied(to: metadata.tags) }
            if let rotationPeriodDays {
                // Scheduled rotation skips such a key (new material would not be the material
                // its owner holds): a period would promise rotations that never happen.
                if rotationPeriodDays != nil, key.metadata.holdsImportedMaterial {
                    throw .notPermitted("key \(key.row.id) holds imported material, which is never rotated: import new material instead of setting a rotation period")
                }
                metadata.rotationPeriodDays = rotationPeriodDays
                metadata.nextRotationAt = rotationPeriodDays.map { clock.now.addingTimeInterval(Double($0) * 86_400) }
            }
            if let minDecryptionVersion {
                let oldest = metadata.minAvailableVersion ?? 1
                guard (oldest...metadata.currentVersion).contains(minDecryptionVersion) else {
                    throw .invalidArgument("minimum decryption version \(minDecryptionVersion); the key has versions \(oldest) to \(metadata.currentVersion)"
                                           + (oldest > 1 ? " (the versions below \(oldest) were destroyed)" : ""))
                }
                metadata.minDecryptionVersion = minDecryptionVersion
            }
            try Self.validate(CreateKeyRequest(spec: metadata.spec, tags: metadata.tags, description: metadata.description,
                                               rotationPeriodDays: metadata.rotationPeriodDays))
            try validating?(metadata)
            // New tags must leave the key inside the caller's scope: retagging cannot carry a key
            // into another principal's tag scope, nor grant the caller operations it lacked.
            if metadata.tags != key.metadata.tags { try authorizeResult(KeyDescription(metadata: metadata, aliases: key.aliases), actor) }
            return try await commit(key, metadata, event: &event)
        }
    }

    /// Adds a new version with fresh material; it becomes the one that encrypts and signs.
    public func rotate(key reference: String, actor: Caller) async throws(KeywardError) -> KeyDescription {
        try await withUsableKey(reference, .rotate, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> KeyDescription in
            let id = key.row.id
            guard !key.metadata.holdsImportedMaterial else {
                throw .notPermitted("key \(id) holds imported material; import new material instead of rotating")
            }
            return try await addVersion(key, event: &event)
        }
    }

    func addVersion(_ key: LoadedKey, rotation: String = "requested", event: inout AuditEvent) async throws(KeywardError) -> KeyDescription {
        let id = key.row.id
        let now = clock.now
        var metadata = key.metadata
        metadata.currentVersion += 1
        if let days = metadata.rotationPeriodDays { metadata.nextRotationAt = now.addingTimeInterval(Double(days) * 86_400) }
        let generated = try await MaterialGeneration.generate(metadata.spec)
        let sealed = try protection.seal(generated.material, keyID: id, version: metadata.currentVersion)
        let version = try records.versionRow(keyID: id, version: metadata.currentVersion, sealed: sealed,
                                         metadata: VersionMetadata(state: "active", createdAt: now, encryptionsReserved: 0, rotation: rotation), revision: 1)
        let row = try records.keyRow(metadata, revision: key.row.revision + 1)
        try await records.commit(key, row, adding: version)
        event.version = metadata.currentVersion
        event.anchor(.key(id), row.revision)
        event.anchor(.version(id, version.version), version.revision)
        return KeyDescription(metadata: metadata, aliases: try await records.authenticAliases(of: id))
    }

    /// The key's versions, oldest first (numbers, creation times, states; never material), for
    /// a caller granted `describe`.
    public func versions(key reference: String, actor: Caller) async throws(KeywardError) -> [KeyVersionInfo] {
        try await withUsableKey(reference, .describe, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> [KeyVersionInfo] in
            let id = key.row.id
            let fence = records.fence()
            var found: [KeyVersionInfo] = []
            for row in try await storing({ () async throws(StorageError) in try await store.versions(id) }) {
                let metadata = try records.verifiedVersion(row, of: id, row.version, fence)
                found.append(KeyVersionInfo(number: row.version, createdAt: metadata.createdAt, state: metadata.state, rotation: metadata.rotation))
            }
            event.detail = "versions"
            return found.sorted { $0.number < $1.number }
        }
    }

    // MARK: Aliases

    /// The most aliases a key may have (AWS KMS's quota): each is a row every load of the key
    /// reads, so a caller allowed to name keys cannot make one arbitrarily expensive.
    public static let maximumAliasesPerKey = 50

    /// What `setAlias` may do with an alias name.
    public enum AliasChange: Sendable {
        /// Create the alias, or move it if it exists.
        case createOrMove
        /// Create the alias; `aliasTaken` if it exists.
        case create
        /// Move the alias; `keyNotFound` if it does not exist.
        case move
    }

    /// Points `name` at `key`, creating the alias or moving it (`change` can require one).
    ///
    /// Whether the alias exists is told only to a caller that may update `key` and name the
    /// alias: the refusals for those come first.
    public func setAlias(_ name: String, key reference: String, as change: AliasChange = .createOrMove, actor: Caller) async throws(KeywardError) {
        let alias = try Self.newAliasName(name)
        let id = try await resolve(reference, for: .update, caller: actor)
        try await auditor.audited(.setAlias, caller: actor, key: id) { (event) throws(KeywardError) -> Void in
            let target = try await naming(reference, id) { () async throws(KeywardError) -> LoadedKey in try await authorizedKey(id, for: .update, caller: actor) }
            // The new name must fall in an alias scope the caller may update, so no one plants a
            // key inside another principal's alias scope.
            if let policy = actor.policy, !policy.allowsNaming(alias, for: .update) {
                throw .accessDenied(principal: actor.principal, operation: .update, key: alias)
            }
            let fence = records.fence()
            let existing = try await storing({ () async throws(StorageError) in try await store.alias(alias) })
            switch (change, existing) {
            case (.create, _?): throw .aliasTaken(alias)
            case (.move, nil): throw .keyNotFound(alias)
            default: break
            }
            if existing?.keyID != id {
                let held = try await records.authenticAliases(of: target.row.id)
                guard held.count < Self.maximumAliasesPerKey else {
                    throw .limitExceeded("key \(id) has \(held.count) aliases, the most a key may have; delete one first")
                }
            }
            if let existing {
                _ = try records.verifiedAlias(existing, fence)
                // Moving an alias changes what both keys answer to.
                _ = try await naming(alias, existing.keyID) { () async throws(KeywardError) -> LoadedKey in
                    try await authorizedKey(existing.keyID, for: .update, caller: actor)
                }
                cache.invalidate(existing.keyID)
            }
            defer {
                cache.invalidate(id)
                cache.invalidateAlias(alias)
            }
            let row = try records.aliasRow(name: alias, keyID: id, revision: max((existing?.revision ?? 0) + 1, records.firstAliasRevision(alias)))
            try await storing({ () async throws(StorageError) in try await store.putAlias(row, expectedRevision: existing?.revision) })
            event.anchor(.alias(alias), row.revision)
            event.detail = "alias \(alias) revision \(row.revision)"
        }
    }

    /// Refuses, with `accessDenied`, a change whose resulting key the caller could not update.
    private func authorizeResult(_ result: KeyDescription, _ caller: Caller) throws(KeywardError) {
        guard let policy = caller.policy, !policy.allows(.update, on: result) else { return }
        throw .accessDenied(principal: caller.principal, operation: .update, key: result.metadata.id.description)
    }

    /// Removes an alias.
    public func deleteAlias(_ name: String, actor: Caller) async throws(KeywardError) {
        let alias = try Self.validAlias(name)
        let id = try await resolve(alias, for: .update, caller: actor)
        try await auditor.audited(.deleteAlias, caller: actor, key: id) { (event) throws(KeywardError) -> Void in
            event.detail = "alias \(alias)"
            _ = try await naming(alias, id) { () async throws(KeywardError) -> LoadedKey in try await authorizedKey(id, for: .update, caller: actor) }
            defer { cache.invalidate(id) }
            let fence = records.fence()
            guard let existing = try await storing({ () async throws(StorageError) in try await store.alias(alias) }) else {
                throw .storage(.conflict("alias \(alias) was removed meanwhile"))
            }
            let row = try records.verifiedAlias(existing, fence)
            guard row.keyID == id else { throw .storage(.conflict("alias \(alias) was moved meanwhile")) }
            try await storing({ () async throws(StorageError) in try await store.deleteAlias(alias, expectedRevision: row.revision) })
            event.anchor(.alias(alias), row.revision + 1, deleted: true)
        }
    }
}

/// Key material leaving the store: only for keys created exportable, never for signing keys.
public struct ExportedKey: ~Copyable, Sendable {
    /// The exported key's spec.
    public let spec: KeySpec
    /// The exported version.
    public let version: UInt32
    /// The private representation (docs/formats.md).
    public let material: SecretBytes
}

extension KeyService {
    /// Exports `version` (default: the newest) of a key created exportable.
    ///
    /// - Throws: `notPermitted` for keys not created exportable and for every signing key
    ///   (signing keys are never exported in plaintext).
    public func exportKey(key reference: String, version: UInt32? = nil, actor: Caller) async throws(KeywardError) -> ExportedKey {
        try await withUsableKey(reference, .export, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> ExportedKey in
            let id = key.row.id
            guard key.metadata.spec.purpose != .sign else { throw .notPermitted("signing keys are never exported in plaintext; export the public key instead") }
            guard key.metadata.exportable else { throw .notPermitted("key \(id) was not created exportable") }
            let loaded = try await records.loadVersion(key, version ?? key.metadata.currentVersion)
            event.version = loaded.number
            do throws(KeywardCryptoError) {
                let copy = try loaded.material.secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in try SecretBytes(copying: raw) }
                return ExportedKey(spec: key.metadata.spec, version: loaded.number, material: copy)
            } catch {
                throw .crypto(error)
            }
        }
    }
}

/// A wrapping key the store issued for one import: its id, public key and expiry.
public struct ImportWrappingKey: Sendable, Hashable {
    /// The wrapping key's id, to name in the import.
    public var keyID: KeyID
    public var publicKey: PublicKey
    /// When the wrapping key stops working.
    public var expiresAt: Date
}

extension KeyService {
    /// Issues an RSA-3072-OAEP-SHA256 wrapping key for bringing key material in, bound to the
    /// caller's principal. It expires after `hours` (1 to 24), when maintenance destroys it, and
    /// it is destroyed by the one import it serves.
    public func createImportWrappingKey(hours: Int = 24, actor: Caller) async throws(KeywardError) -> ImportWrappingKey {
        guard (1...24).contains(hours) else { throw .invalidArgument("wrapping keys live 1 to 24 hours, not \(hours)") }
        try authorizeSomewhere(.create, actor)
        return try await issueWrappingKey(.rsa3072OAEPSHA256, hours: hours, target: nil, actor: actor)
    }

    /// Generates and stores an import wrapping key of `spec` for `actor`'s principal, bound to
    /// `target` when given (an import into that key) or to the creation of a new key.
    func issueWrappingKey(_ spec: KeySpec, hours: Int, target: KeyID?, actor: Caller) async throws(KeywardError) -> ImportWrappingKey {
        let expiry = clock.now.addingTimeInterval(Double(hours) * 3600)
        let generated = try await MaterialGeneration.generate(spec)
        let created = try await insertKey(CreateKeyRequest(spec: spec, description: "import wrapping key", backupAllowed: false, expiresAt: expiry),
                                          material: generated.material, origin: "keyward", importWrappingFor: actor.principal, importTarget: target,
                                          actor: actor.internalStep)
        return ImportWrappingKey(keyID: created.metadata.id, publicKey: try await publicKey(key: created.metadata.id.description, actor: actor.internalStep), expiresAt: expiry)
    }

    /// Creates a key from material wrapped (RSA-OAEP-SHA-256 + AES-KWP) to a store-issued
    /// wrapping key.
    ///
    /// The wrapping key must have been issued by `createImportWrappingKey` (a field no request
    /// can set, not a tag) to this caller's principal (the store's owner may use any), must not
    /// have expired, and serves one import: it is destroyed, by compare-and-swap, before the
    /// imported key is stored, so two imports racing on it cannot both succeed.
    ///
    /// - Throws: `notPermitted` when `wrappingKey` is not an unexpired import wrapping key or was
    ///   used already; `accessDenied` when it was issued to another principal;
    ///   `crypto(.invalidCiphertext)` when the blob does not unwrap; `crypto(.invalidKeyMaterial)`
    ///   when the material is not a valid key of `request.spec`.
    public func importWrappedKey(_ wrapped: [UInt8], wrappingKey: String, request: CreateKeyRequest, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let wrappingID = try await resolve(wrappingKey, for: .create, caller: actor)
        try authorizeSomewhere(.create, actor)
        let material = try await unwrapImport(wrapped, wrappingID: wrappingID, for: nil, scheme: .rsaAESKeyWrapSHA256, spec: request.spec,
                                              operation: .create, actor: actor)
        return try await importKey(request, material: material, actor: actor)
    }
}
