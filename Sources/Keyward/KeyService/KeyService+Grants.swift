import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

/// This node's copy of the store's live grants, by key: what `authorize` consults when a
/// caller's policy refuses, and what listing and named creation read. Dropped when the store's
/// generation moves (a grant revoked or retired anywhere: `refreshFromStore`) and when this node
/// ends a grant, and read again after `ttl` in any case, so a grant created on another node
/// applies here within `ttl`, or at once when the caller presents its grant token.
///
/// Reading the book means reading and checking every token row, so one read serves every caller
/// that finds the book stale meanwhile: after an invalidation, a burst of requests authorised by
/// grants reads the tokens once, not once each.
final class GrantBook: Sendable {
    typealias Grants = [KeyID: [GrantRecord]]

    private struct Load {
        let number: Int
        let epoch: Int
        let startedAt: Date
        let task: Task<Grants, any Error>
    }

    private struct State {
        var byKey: Grants?
        var loadedAt = Date.distantPast
        var epoch = 0
        /// The read under way, if any.
        var loading: Load?
        var loads = 0
    }

    private let state = Mutex(State())
    let ttl: TimeInterval

    init(ttl: TimeInterval) { self.ttl = ttl }

    /// The grants by key, as read at most `maxAge` seconds ago (at most `ttl`); otherwise read
    /// with `read`, or taken from the read under way when it began within `maxAge` and no
    /// change of this node's came after it began.
    func grants(now: Date, maxAge: TimeInterval? = nil,
                read: @escaping @Sendable () async throws(KeywardError) -> Grants) async throws(KeywardError) -> Grants {
        let age = min(maxAge ?? ttl, ttl)
        let fresh = state.withLock { state -> Grants? in
            guard let grants = state.byKey, now.timeIntervalSince(state.loadedAt) < age else { return nil }
            return grants
        }
        if let fresh { return fresh }
        let load = state.withLock { state -> Load in
            if let loading = state.loading, loading.epoch == state.epoch, now.timeIntervalSince(loading.startedAt) < age { return loading }
            state.loads += 1
            let number = state.loads, epoch = state.epoch
            let task = Task { () async throws -> Grants in
                defer { self.finish(number) }
                let grants = try await read()
                self.install(grants, loadedAt: now, readIn: epoch)
                return grants
            }
            let load = Load(number: number, epoch: epoch, startedAt: now, task: task)
            state.loading = load
            return load
        }
        do {
            return try await load.task.value
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .storage(.database("\(error)"))
        }
    }

    /// Keeps `grants`, read from `loadedAt` on, unless the book was changed since `epoch`.
    private func install(_ grants: Grants, loadedAt: Date, readIn epoch: Int) {
        state.withLock { state in
            guard state.epoch == epoch else { return }
            state.byKey = grants
            state.loadedAt = loadedAt
        }
    }

    private func finish(_ number: Int) {
        state.withLock { state in
            if state.loading?.number == number { state.loading = nil }
        }
    }

    /// Adds a grant this node just created to a loaded book (an unloaded one reads it with the
    /// rest), and keeps a read already under way from installing a copy made before it.
    func add(_ grant: GrantRecord) {
        state.withLock { state in
            state.epoch += 1
            state.byKey?[grant.grant.key, default: []].append(grant)
        }
    }

    /// Forgets every grant; the next check reads them again.
    func invalidate() {
        state.withLock { state in
            state.byKey = nil
            state.epoch += 1
        }
    }
}

/// Grants (`KeyGrant`): narrow, revocable permissions for one grantee on one key, created and
/// revoked by callers that may manage the key's grants (`manage-grants`), and honoured by every
/// front end through `authorize`.
extension KeyService {
    /// Grants a grantee `operations` on `key`. The caller needs `manage-grants` on the key from
    /// its policy, or a grant of its own that includes `manage-grants` (AWS's CreateGrant in a
    /// grant); either way it may grant only operations it holds itself on the key, and a grant
    /// passed on keeps the constraints of the grant it came from, or narrower ones. Creating a
    /// grant with the name and terms of a live one returns that one.
    ///
    /// - Throws: `invalidArgument` for an empty or ungrantable operation set, a bad grantee,
    ///   retiring principal or name; `notPermitted` for operations beyond the caller's own;
    ///   `wrongState` for a key pending destruction, compromised or destroyed.
    public func createGrant(key reference: String, grantee: String, operations: Set<ServiceOperation>, constraints: GrantConstraints? = nil,
                            retiringPrincipal: String? = nil, granteeMayRetire: Bool = false, name: String? = nil,
                            actor: Caller) async throws(KeywardError) -> GrantRecord {
        try Self.checkGrantTerms(grantee: grantee, operations: operations, retiringPrincipal: retiringPrincipal, name: name, constraints: constraints)
        let (result, created) = try await withUsableKey(reference, .manageGrants, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> (GrantRecord, Bool) in
            guard ![.pendingDestruction, .compromised].contains(key.metadata.state) else {
                throw .wrongState(key: key.row.id, state: key.metadata.state, operation: .manageGrants)
            }
            let unfit = operations.filter { !KeyGrant.fits($0, key.metadata.spec) }.map(\.rawValue).sorted()
            guard unfit.isEmpty else {
                throw .invalidArgument("key \(key.row.id) is \(key.metadata.spec.rawValue), which cannot \(unfit.joined(separator: ", ")); a grant of that would allow nothing")
            }
            try await checkGrantable(operations, constraints: constraints, on: key, by: actor)
            let terms = KeyGrant(key: key.row.id, grantee: grantee, operations: operations, constraints: constraints,
                                 retiringPrincipal: retiringPrincipal, granteeMayRetire: granteeMayRetire, name: name, issuer: actor.principal)
            if name != nil, let existing = try await grantBookGrants(maxAge: Self.grantListingFreshness)[key.row.id]?.first(where: { $0.grant == terms }) {
                event.detail = "grant \(existing.id) exists with these terms"
                return (existing, false)
            }
            let held = try await grantBookGrants()[key.row.id]?.count ?? 0
            guard held < options.maximumGrantsPerKey else {
                throw .limitExceeded("key \(key.row.id) has \(held) live grants, the most a key may have; retire or revoke some first")
            }
            let id = KeyID()
            let now = clock.now
            var record = TokenRecord(id: id, principal: grantee, policy: AccessPolicy(rules: []), createdAt: now, expiresAt: nil, revokedAt: nil)
            record.grant = terms
            // The row's hash is of random bytes no one holds: no text presented can match it.
            let unmatchable: [UInt8]
            do throws(KeywardCryptoError) {
                unmatchable = try SecretBytes.random(count: 32).withSecretBytes(InsecureSecretAccess.token) { SHA256Hash.hash(concatenating: Array($0)) }
            } catch {
                throw .crypto(error)
            }
            let row = try records.tokenRow(record, hash: unmatchable, revision: 1)
            try await storing({ () async throws(StorageError) in try await store.insertToken(row) })
            event.anchor(.token(id), row.revision)
            event.detail = "grant \(id) to \(grantee): \(operations.map(\.rawValue).sorted().joined(separator: ","))"
                + (constraints == nil ? "" : " with encryption-context constraints")
            return (GrantRecord(id: id, grant: terms, createdAt: now), true)
        }
        if created { grantBook.add(result) }
        return result
    }

    /// The live grants on `key`, in id order, at most `limit` (1 to 1,000) after `cursor`,
    /// optionally only `grantID` or only those of `grantee`. Needs `manage-grants` on the key
    /// from the caller's policy (a grant cannot confer it).
    public func listGrants(key reference: String, grantID: KeyID? = nil, grantee: String? = nil, after cursor: KeyID? = nil, limit: Int = 50,
                           actor: Caller) async throws(KeywardError) -> (grants: [GrantRecord], nextCursor: KeyID?) {
        guard (1...1000).contains(limit) else { throw .invalidArgument("page size \(limit); choose 1 to 1000") }
        return try await withUsableKey(reference, .manageGrants, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> ([GrantRecord], KeyID?) in
            try requirePolicyGrantManagement(key, actor)
            event.detail = "list grants"
            let matching = (try await grantBookGrants(maxAge: Self.grantListingFreshness)[key.row.id] ?? []).filter { record in
                (grantID.map { record.id == $0 } ?? true) && (grantee.map { record.grant.grantee == $0 } ?? true)
                    && (cursor.map { record.id.description > $0.description } ?? true)
            }.sorted { $0.id.description < $1.id.description }
            let page = Array(matching.prefix(limit))
            return (page, matching.count > limit ? page.last?.id : nil)
        }
    }

    /// The live grants `retiringPrincipal` may retire, across keys the caller may manage grants
    /// on, in id order, paged as `listGrants`. Administrative: needs `manage-grants` on every key.
    public func listRetirableGrants(retiringPrincipal: String, after cursor: KeyID? = nil, limit: Int = 50,
                                    actor: Caller) async throws(KeywardError) -> (grants: [GrantRecord], nextCursor: KeyID?) {
        guard (1...1000).contains(limit) else { throw .invalidArgument("page size \(limit); choose 1 to 1000") }
        return try await auditor.audited(.key(.manageGrants), caller: actor, key: nil) { (event) throws(KeywardError) -> ([GrantRecord], KeyID?) in
            event.detail = "list grants retirable by \(retiringPrincipal.prefix(256))"
            if let policy = actor.policy, !policy.allowsEverywhere(.manageGrants) {
                throw .accessDenied(principal: actor.principal, operation: .manageGrants, key: nil)
            }
            let matching = try await grantBookGrants(maxAge: Self.grantListingFreshness).values.joined().filter { record in
                record.grant.retiringPrincipal == retiringPrincipal && (cursor.map { record.id.description > $0.description } ?? true)
            }.sorted { $0.id.description < $1.id.description }
            let page = Array(matching.prefix(limit))
            return (page, matching.count > limit ? page.last?.id : nil)
        }
    }

    /// Retires a grant: its retiring principal may, its grantee may when the grant allows it,
    /// and so may a caller whose policy grants `manage-grants` on the key. With `key`, the grant
    /// must be on that key.
    public func retireGrant(_ grantID: KeyID, key reference: String? = nil, actor: Caller) async throws(KeywardError) {
        try await endGrant(grantID, key: reference, retiring: true, actor: actor)
    }

    /// Revokes a grant on `key`; needs `manage-grants` on the key from the caller's policy.
    public func revokeGrant(_ grantID: KeyID, key reference: String, actor: Caller) async throws(KeywardError) {
        try await endGrant(grantID, key: reference, retiring: false, actor: actor)
    }

    /// The description of a key, for a caller about to do `operation` on it (a front end that
    /// needs the key's spec to shape that request): authorised for `operation`, audited as
    /// `describe`.
    public func describe(key reference: String, forUseIn operation: ServiceOperation, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let id = try await resolve(reference, for: operation, caller: actor)
        return try await auditor.audited(.key(.describe), caller: actor, key: id) { (_) throws(KeywardError) -> KeyDescription in
            let key: LoadedKey
            do throws(KeywardError) {
                key = try await naming(reference, id) { () async throws(KeywardError) -> LoadedKey in try await authorizedKey(id, for: operation, caller: actor) }
            } catch {
                throw concealed(error, operation, actor, reference)
            }
            return KeyDescription(metadata: key.metadata, aliases: try await records.authenticAliases(of: id))
        }
    }

    /// Whether a live grant to `caller` on `key` permits `operation`: from this node's grant
    /// book, or from the store for grants the caller presents.
    func grantPermits(_ operation: ServiceOperation, on key: KeyID, _ caller: Caller) async throws(KeywardError) -> Bool {
        guard KeyGrant.grantable.contains(operation) else { return false }
        let context = caller.requestContext
        if try await grantBookGrants()[key]?.contains(where: { $0.grant.permits(operation, principal: caller.principal, context: context) }) == true {
            return true
        }
        for id in caller.presentedGrants {
            guard let record = try await liveGrant(id), record.grant.key == key else { continue }
            if record.grant.permits(operation, principal: caller.principal, context: context) { return true }
        }
        return false
    }

    // MARK: Internals

    private func endGrant(_ grantID: KeyID, key reference: String?, retiring: Bool, actor: Caller) async throws(KeywardError) {
        let fence = records.fence()
        guard let row = try await storing({ () async throws(StorageError) in try await store.token(grantID) }) else {
            try records.checkAbsent(.token(grantID), fence)
            throw .invalidArgument("no grant \(grantID)")
        }
        var record = try records.verifiedToken(row, fence)
        guard let grant = record.grant, record.revokedAt == nil else { throw .invalidArgument("no grant \(grantID)") }
        if let reference, try await resolve(reference, for: .manageGrants, caller: actor) != grant.key {
            throw .invalidArgument("grant \(grantID) is not on key \(reference)")
        }
        try await auditor.audited(.key(.manageGrants), caller: actor, key: grant.key) { (event) throws(KeywardError) -> Void in
            event.detail = (retiring ? "retire" : "revoke") + " grant \(grantID)"
            let key = try await records.load(grant.key)
            let byPolicy = actor.policy.map { policyDecision(.manageGrants, on: KeyDescription(metadata: key.metadata, aliases: key.aliases), policy: $0, actor) == true } ?? true
            let byRole = retiring && (grant.retiringPrincipal.map { KeyGrant.principal(actor.principal, is: $0) } == true
                                      || (grant.granteeMayRetire && KeyGrant.principal(actor.principal, is: grant.grantee)))
            guard byPolicy || byRole else { throw .accessDenied(principal: actor.principal, operation: .manageGrants, key: grant.key.description) }
            record.revokedAt = clock.now
            let updated = try records.tokenRow(record, hash: row.hash, revision: row.revision + 1)
            try await storing({ () async throws(StorageError) in try await store.updateToken(updated, expectedRevision: row.revision) })
            event.anchor(.token(grantID), updated.revision)
        }
        grantBook.invalidate()
    }

    /// A credential takes, by its principal's name, the grants to that name and the key-policy
    /// statements that name it. So an issuer bound by a policy may name a principal only if it
    /// holds itself everything those give; otherwise a token manager could mint a credential
    /// under another principal's name and inherit its access, beyond the manager's own.
    func checkNamedAccess(_ principal: String, _ actor: Caller) async throws(KeywardError) {
        guard let policy = actor.policy else { return }
        func requireHeld(_ operations: Set<ServiceOperation>, on id: KeyID, by what: String) async throws(KeywardError) {
            let key = try await records.load(id)
            let description = KeyDescription(metadata: key.metadata, aliases: key.aliases)
            for operation in operations.sorted(by: { $0.rawValue < $1.rawValue }) where policyDecision(operation, on: description, policy: policy, actor) != true {
                throw .notPermitted("\(actor.principal) may not issue a credential named \(principal): \(what) gives that name \(operation.rawValue) "
                                    + "on key \(id), which \(actor.principal) does not hold itself")
            }
        }
        for record in try await liveGrants() where record.grant.grantee == principal || record.grant.retiringPrincipal == principal {
            // The grantee's operations; retiring it is ending someone's access, as manage-grants does.
            var required: Set<ServiceOperation> = []
            if record.grant.grantee == principal { required.formUnion(record.grant.operations) }
            if record.grant.retiringPrincipal == principal { required.insert(.manageGrants) }
            try await requireHeld(required, on: record.grant.key, by: "grant \(record.id)")
        }
        var cursor: KeyID? = nil
        repeat {
            let after = cursor
            let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: KeyFilter(), after: after, limit: 500) })
            for row in rows {
                guard let keyPolicy = try await records.load(row.id).metadata.keyPolicy else { continue }
                let named = keyPolicy.statements.filter { $0.effect == .allow && $0.principals.contains(principal) }
                if !named.isEmpty {
                    try await requireHeld(named.reduce(into: Set<ServiceOperation>()) { $0.formUnion($1.operations) }, on: row.id, by: "the key's policy")
                }
            }
            cursor = rows.count == 500 ? rows.last?.id : nil
        } while cursor != nil
    }

    /// Listing and revoking a key's grants need `manage-grants` from the policy itself.
    private func requirePolicyGrantManagement(_ key: LoadedKey, _ actor: Caller) throws(KeywardError) {
        guard let policy = actor.policy else { return }
        guard policyDecision(.manageGrants, on: KeyDescription(metadata: key.metadata, aliases: key.aliases), policy: policy, actor) == true else {
            throw .accessDenied(principal: actor.principal, operation: .manageGrants, key: key.row.id.description)
        }
    }

    /// The issuer may grant only what it holds on the key: by policy, or by a grant of its own
    /// that includes `manage-grants` and whose constraints the new ones are at least as strict as.
    private func checkGrantable(_ operations: Set<ServiceOperation>, constraints: GrantConstraints?, on key: LoadedKey, by actor: Caller) async throws(KeywardError) {
        guard let policy = actor.policy else { return }
        let description = KeyDescription(metadata: key.metadata, aliases: key.aliases)
        let own = try await grantBookGrants()[key.row.id, default: []].filter {
            KeyGrant.principal(actor.principal, is: $0.grant.grantee) && $0.grant.operations.contains(.manageGrants)
        }
        let holdsByPolicy = { (operation: ServiceOperation) -> Bool in self.policyDecision(operation, on: description, policy: policy, actor) == true }
        for operation in operations where !holdsByPolicy(operation) || !holdsByPolicy(.manageGrants) {
            let covered = own.contains { held in
                held.grant.operations.contains(operation) && (constraints ?? GrantConstraints()).isAtLeastAsStrict(as: held.grant.constraints)
            }
            guard covered else {
                throw .notPermitted("\(actor.principal) may grant only operations it holds on key \(key.row.id) itself; it does not hold \(operation.rawValue)")
            }
        }
    }

    static func checkGrantTerms(grantee: String, operations: Set<ServiceOperation>, retiringPrincipal: String?, name: String?,
                                constraints: GrantConstraints?) throws(KeywardError) {
        guard (1...256).contains(grantee.unicodeScalars.count) else { throw .invalidArgument("a grantee is 1 to 256 characters") }
        if let retiringPrincipal, !(1...256).contains(retiringPrincipal.unicodeScalars.count) { throw .invalidArgument("a retiring principal is 1 to 256 characters") }
        try PrintableText.check(grantee, "the grantee")
        if let retiringPrincipal { try PrintableText.check(retiringPrincipal, "the retiring principal") }
        if let name { try PrintableText.check(name, "the grant's name") }
        guard !operations.isEmpty else { throw .invalidArgument("a grant needs at least one operation") }
        let ungrantable = operations.subtracting(KeyGrant.grantable)
        guard ungrantable.isEmpty else {
            throw .invalidArgument("\(ungrantable.map(\.rawValue).sorted().joined(separator: ", ")) cannot be granted; a grant permits "
                                   + KeyGrant.grantable.map(\.rawValue).sorted().joined(separator: ", "))
        }
        if let name {
            guard (1...256).contains(name.utf8.count), name.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || ":/_-".utf8.contains($0)) }) else {
                throw .invalidArgument("a grant name is 1 to 256 letters, digits, ':', '/', '_' or '-'")
            }
        }
        if let constraints {
            let pairs = (constraints.contextSubset ?? [:]).count + (constraints.contextEquals ?? [:]).count
            guard pairs > 0, pairs <= EncryptionContext.maximumPairs * 2 else {
                throw .invalidArgument("grant constraints hold 1 to \(EncryptionContext.maximumPairs) pairs each")
            }
        }
    }

    /// Every live grant in the store, in id order, each row checked.
    func liveGrants() async throws(KeywardError) -> [GrantRecord] {
        var found: [GrantRecord] = []
        var cursor: KeyID? = nil
        repeat {
            let fence = records.fence()
            let after = cursor
            let rows = try await storing({ () async throws(StorageError) in try await store.tokens(after: after, limit: 1000) })
            for row in rows {
                let record = try records.verifiedToken(row, fence)
                if let grant = record.grant, record.revokedAt == nil {
                    found.append(GrantRecord(id: record.id, grant: grant, createdAt: record.createdAt))
                }
            }
            cursor = rows.count == 1000 ? rows.last?.id : nil
        } while cursor != nil
        return found
    }

    /// One live grant, read from the store (a grant token presented on a request).
    private func liveGrant(_ id: KeyID) async throws(KeywardError) -> GrantRecord? {
        let fence = records.fence()
        guard let row = try await storing({ () async throws(StorageError) in try await store.token(id) }) else { return nil }
        let record = try records.verifiedToken(row, fence)
        guard let grant = record.grant, record.revokedAt == nil else { return nil }
        return GrantRecord(id: id, grant: grant, createdAt: record.createdAt)
    }

    /// The grant book, read again from the store when older than `maxAge` (default: its TTL).
    private func grantBookGrants(maxAge: TimeInterval? = nil) async throws(KeywardError) -> GrantBook.Grants {
        try await grantBook.grants(now: clock.now, maxAge: maxAge) { () async throws(KeywardError) -> GrantBook.Grants in
            Dictionary(grouping: try await self.liveGrants(), by: \.grant.key)
        }
    }

    /// How old the grant book may be when a key's grants are listed or a named grant is looked
    /// for (the cluster's coherence bound): a grant made or ended on another node shows within
    /// it, while a caller paging through a key's grants reads the tokens at most once a second,
    /// not once a page.
    public static let grantListingFreshness: TimeInterval = 1
}
