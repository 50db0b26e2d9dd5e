import Foundation
import KeywardCrypto
import KeywardStorage

/// The one path every operation on an existing key takes:
///
/// 1. resolve the reference (a key id, or an alias whose row passes its MAC);
/// 2. open the audit entry (`Auditor.audited`): whatever happens below is recorded, and the
///    result is returned only once its entry is durable;
/// 3. load the key: from the cache, or from the store with its MAC and revision checked
///    (`load`); a cache hit costs no suspension, so this *is* the fast path;
/// 4. authorise the caller for the operation on this key (`authorize`): its policy, or else a
///    live grant to it on the key;
/// 5. run due maintenance: a passed destruction date destroys the key, a passed rotation date
///    rotates it (`maintain`; skipped for `rotate` itself, which would otherwise rotate twice);
/// 6. admit the key (`admit`): the lifecycle table, expiry (for operations that use key
///    material) and the spec's one purpose.
///
/// The operation's body then runs with the admitted key. There is no second path that repeats
/// or skips any of these checks.
extension KeyService {
    /// What an unknown key id means to the operation.
    enum UnknownKey {
        /// `keyNotFound`.
        case keyNotFound
        /// The id came from a ciphertext: the ciphertext is invalid for this store.
        case ciphertextNamesUnknownKey
    }

    /// Runs `body` with the key `reference` names, admitted for `operation` and `purpose`, inside
    /// one audit entry.
    func withUsableKey<T: ~Copyable>(
        _ reference: String, _ operation: ServiceOperation, purpose: KeyOperation?, caller: Caller,
        _ body: (LoadedKey, inout AuditEvent) async throws(KeywardError) -> T
    ) async throws(KeywardError) -> T {
        let id = try await resolve(reference, for: operation, caller: caller)
        return try await withUsableKey(id, operation, purpose: purpose, caller: caller, named: reference, body)
    }

    /// Runs `body` for the key `reference` resolved to (`id`); a refusal from it names the key
    /// as the caller did, not by the id an alias stands for. So a caller who may not use a key
    /// learns nothing of it from the refusal: an alias that names a key it may not use is
    /// refused word for word as one that names no key.
    func naming<T: ~Copyable>(_ reference: String, _ id: KeyID, _ body: () async throws(KeywardError) -> T) async throws(KeywardError) -> T {
        do {
            return try await body()
        } catch {
            throw error.naming(id, as: reference)
        }
    }

    /// Resolves `reference` for `caller`. A caller whose policy does not grant `operation` on
    /// every key gets `accessDenied` for a key that does not exist, exactly as for one it may not
    /// use, so it cannot learn which keys exist.
    func resolve(_ reference: String, for operation: ServiceOperation, caller: Caller) async throws(KeywardError) -> KeyID {
        do {
            return try await records.resolve(reference)
        } catch {
            throw concealed(error, operation, caller, reference)
        }
    }

    /// `error`, or `accessDenied` when it would tell `caller` that a key does not exist and
    /// its policy would not show it every key anyway.
    func concealed(_ error: KeywardError, _ operation: ServiceOperation, _ caller: Caller, _ reference: String) -> KeywardError {
        guard case .keyNotFound = error, let policy = caller.policy, !policy.allowsEverywhere(operation) else { return error }
        return .accessDenied(principal: caller.principal, operation: operation, key: reference)
    }

    /// `withUsableKey` for a key named by its id. With `admittedAs`, the caller is authorised
    /// for `operation` but the key's state is judged as for `admittedAs` (re-encryption reads
    /// its source as a decryption would). A refusal names the key as `named` (the reference the
    /// caller gave, resolved to `id`) does, as `naming` explains.
    func withUsableKey<T: ~Copyable>(
        _ id: KeyID, _ operation: ServiceOperation, admittedAs: ServiceOperation? = nil, purpose: KeyOperation?, caller: Caller,
        unknownKey: UnknownKey = .keyNotFound, named reference: String? = nil,
        _ body: (LoadedKey, inout AuditEvent) async throws(KeywardError) -> T
    ) async throws(KeywardError) -> T {
        try await auditor.audited(.key(operation), caller: caller, key: id) { (event) throws(KeywardError) -> T in
            let key: LoadedKey
            do throws(KeywardError) {
                key = try await usableKey(id, for: operation, admittedAs: admittedAs, purpose: purpose, caller: caller)
            } catch {
                let shown = concealed(error, operation, caller, id.description).naming(id, as: reference)
                if case .keyNotFound = shown, unknownKey == .ciphertextNamesUnknownKey {
                    throw .crypto(.invalidCiphertext(reason: "it names key \(id), which this store does not hold"))
                }
                throw shown
            }
            return try await body(key, &event)
        }
    }

    /// Steps 3 to 6 of the pipeline: the key, loaded, authorised, maintained and admitted.
    func usableKey(_ id: KeyID, for operation: ServiceOperation, admittedAs: ServiceOperation? = nil, purpose: KeyOperation?,
                   caller: Caller) async throws(KeywardError) -> LoadedKey {
        var key = try await authorizedKey(id, for: operation, caller: caller)
        if operation != .rotate, maintenanceDue(key) {
            key = try await maintain(key)
        }
        try admit(key, for: admittedAs ?? operation, purpose: purpose)
        return key
    }

    /// The key, loaded and checked against the caller's policy for `operation`.
    func authorizedKey(_ id: KeyID, for operation: ServiceOperation, caller: Caller) async throws(KeywardError) -> LoadedKey {
        let key = try await records.load(id)
        try await authorize(key, operation, caller)
        return key
    }

    /// Refuses, with `accessDenied`, an operation that neither the caller's policy nor a live
    /// grant to the caller on `key` permits.
    func authorize(_ key: LoadedKey, _ operation: ServiceOperation, _ caller: Caller) async throws(KeywardError) {
        guard let policy = caller.policy else { return }
        // Keyward's own keys (`AccessPolicy.reservedAliasPrefix`) serve a policy nothing but
        // their description.
        if operation != .describe, operation != .publicKey, key.aliases.contains(where: AccessPolicy.isReserved) {
            throw .accessDenied(principal: caller.principal, operation: operation, key: key.row.id.description)
        }
        switch policyDecision(operation, on: KeyDescription(metadata: key.metadata, aliases: key.aliases), policy: policy, caller) {
        case true?: return
        case false?: throw .accessDenied(principal: caller.principal, operation: operation, key: key.row.id.description)
        case nil:
            guard try await grantPermits(operation, on: key.row.id, caller) else {
                throw .accessDenied(principal: caller.principal, operation: operation, key: key.row.id.description)
            }
        }
    }

    /// What the caller's policy and the key's own policy (`KeyPolicy`) decide for `operation`:
    /// false when a key-policy statement denies it, true when the caller's policy (for the
    /// operations the key policy leaves to it) or a key-policy statement allows it, and nil when
    /// neither does, so that only a grant can still allow it.
    func policyDecision(_ operation: ServiceOperation, on key: KeyDescription, policy: AccessPolicy, _ caller: Caller) -> Bool? {
        guard let keyPolicy = key.metadata.keyPolicy else { return policy.allows(operation, on: key) ? true : nil }
        let context = caller.requestContext
        if keyPolicy.denies(operation, principal: caller.principal, context: context) { return false }
        if keyPolicy.principalPolicyOperations.contains(operation), policy.allows(operation, on: key) { return true }
        return keyPolicy.allows(operation, principal: caller.principal, context: context) ? true : nil
    }

    /// Refuses, with `accessDenied`, a keyless operation the caller's policy grants nowhere.
    func authorizeSomewhere(_ operation: ServiceOperation, _ caller: Caller) throws(KeywardError) {
        guard caller.permitsSomewhere(operation) else {
            throw .accessDenied(principal: caller.principal, operation: operation, key: nil)
        }
    }

    /// The rule for whether a loaded key may serve `operation` now: its lifecycle state allows
    /// it, it has not expired (for operations that use key material), and its spec's one
    /// purpose is `purpose`.
    func admit(_ key: LoadedKey, for operation: ServiceOperation, purpose: KeyOperation?) throws(KeywardError) {
        let metadata = key.metadata
        guard LifecycleTable.allows(operation, in: metadata.state) else {
            if metadata.state == .destroyed { throw .keyDestroyed(key: metadata.id, version: nil) }
            throw .wrongState(key: metadata.id, state: metadata.state, operation: operation)
        }
        if operation.usesKeyMaterial, let expiry = metadata.expiresAt, expiry <= clock.now {
            throw .notPermitted("key \(metadata.id) expired at \(ISO8601DateFormatter().string(from: expiry))")
        }
        if let purpose {
            do { try metadata.spec.check(purpose) } catch { throw .crypto(error) }
        }
    }

    /// Checks that `version` may decrypt or verify.
    func checkDecryptable(_ key: LoadedKey, _ version: UInt32) throws(KeywardError) {
        guard version >= key.metadata.minDecryptionVersion else {
            throw .versionUnavailable(key: key.row.id, version: version, reason: "below the key's minimum decryption version \(key.metadata.minDecryptionVersion)")
        }
    }
}

extension ServiceOperation {
    /// Operations that use a key's material (or its public half), which an expired key refuses.
    public var usesKeyMaterial: Bool {
        switch self {
        case .encrypt, .decrypt, .reEncrypt, .generateDataKey, .generateDataKeyPair, .sign, .verify, .mac, .verifyMAC,
             .deriveSharedSecret, .decapsulate, .publicKey, .export:
            true
        case .describe, .rotate, .enable, .disable, .deactivate, .scheduleDestruction, .cancelDestruction,
             .markCompromised, .destroy, .update, .importMaterial, .manageGrants, .setKeyPolicy, .create, .random, .manageTokens, .readAudit, .verifyStore, .rotateKEK, .maintenance, .backup, .restore:
            false
        }
    }
}
