import Foundation
import KeywardCrypto
import KeywardStorage

/// Keys whose material is brought in after they are created (AWS KMS's `Origin: EXTERNAL`).
///
/// Such a key is created empty and pre-active (`awaitingMaterial`). The caller asks for import
/// parameters: a single-use RSA wrapping key, bound to the caller's principal and to this key,
/// that expires after 24 hours. It wraps the material to it and imports it; the key becomes
/// active. The key remembers a commitment to its material, so it only ever takes the same
/// material back: after `deleteImportedMaterial`, or after the material's expiry (`validTo`),
/// the key is empty and pre-active again, its old ciphertexts wait for the same material, and
/// nothing else can take its place. Keyward never rotates such a key.
///
/// Deleting the material is a destruction: the version row keeps its metadata (and its
/// encryption budget, which the same material continues) but loses its sealed bytes, once every
/// live node has seen the key go empty (the destruction barrier); until then, and after a crash,
/// the maintenance sweep finishes it.
extension KeyService {
    /// The specs a key created for imported material may have: symmetric encryption, HMAC and RSA.
    public static func acceptsImportedMaterial(_ spec: KeySpec) -> Bool {
        switch spec {
        case .aes256GCM, .aes128GCM, .chaCha20Poly1305, .hmacSHA256, .hmacSHA384, .hmacSHA512: true
        default: spec.rsaBits != nil
        }
    }

    /// The RSA specs an import wrapping key may have.
    public static let importWrappingSpecs: [KeySpec] = [.rsa2048OAEPSHA256, .rsa3072OAEPSHA256, .rsa4096OAEPSHA256]

    /// The domain label of the commitment a key keeps to its imported material.
    static let importedMaterialLabel = "keyward/v1/imported-material"

    /// Creates a key with no material, pre-active until `importMaterial` brings it in. Needs
    /// `create`, as any new key.
    ///
    /// - Throws: `invalidArgument` for a spec that cannot take imported material, a rotation
    ///   period (Keyward never rotates imported material), an expiry, or an initial state.
    public func createKeyForImport(_ request: CreateKeyRequest, actor: Caller) async throws(KeywardError) -> KeyDescription {
        guard Self.acceptsImportedMaterial(request.spec) else {
            throw .invalidArgument("a key of spec \(request.spec.rawValue) cannot take imported material; symmetric, HMAC and RSA keys can")
        }
        guard request.rotationPeriodDays == nil else {
            throw .invalidArgument("a key for imported material has no rotation period: Keyward never generates its material")
        }
        guard request.expiresAt == nil, request.initialState == .active else {
            throw .invalidArgument("a key for imported material starts empty and pre-active; its material's expiry is set on import")
        }
        var request = request
        request.initialState = .preActive
        return try await insertKey(request, id: KeyID(), sealed: nil, origin: KeyMetadata.externalOrigin, actor: actor)
    }

    /// Issues a wrapping key of `wrappingSpec` (RSA-2048/3072/4096 OAEP-SHA-256) for one import
    /// into `key`: bound to the caller's principal and to that key, single use, valid 24 hours.
    /// Needs `import-material` on the key.
    ///
    /// - Throws: `invalidArgument` for another wrapping spec; `notPermitted` for a key that was
    ///   not created for imported material; `wrongState` outside pre-active, active and disabled.
    public func importParameters(key reference: String, wrappingSpec: KeySpec, actor: Caller) async throws(KeywardError) -> ImportWrappingKey {
        guard Self.importWrappingSpecs.contains(wrappingSpec) else {
            throw .invalidArgument("wrapping keys are \(Self.importWrappingSpecs.map(\.rawValue).joined(separator: ", ")), not \(wrappingSpec.rawValue)")
        }
        return try await withUsableKey(reference, .importMaterial, purpose: nil, caller: actor) { (key, event) throws(KeywardError) -> ImportWrappingKey in
            try Self.requireExternal(key)
            let wrapping = try await issueWrappingKey(wrappingSpec, hours: 24, target: key.row.id, actor: actor)
            event.detail = "import parameters: wrapping key \(wrapping.keyID) (\(wrappingSpec.rawValue))"
            return wrapping
        }
    }

    /// Imports material, wrapped under `scheme` to a wrapping key from `importParameters`, into
    /// `key`, which becomes active if it was pre-active. A key that held material before takes
    /// only the same material back; importing it again into a key that holds it changes only
    /// its expiry. `validTo`, if given, is when the material expires: then it is deleted and the
    /// key waits for it again. Needs `import-material` on the key.
    ///
    /// - Throws: `notPermitted` when the wrapping key was not issued for this key and this
    ///   caller, has expired or was used already, or the key was not created for imported
    ///   material; `crypto(.invalidCiphertext)` when the blob does not unwrap;
    ///   `crypto(.invalidKeyMaterial)` when the material is not a key of the key's spec, or is
    ///   not the material the key held before; `invalidArgument` for a `validTo` in the past.
    public func importMaterial(_ wrapped: [UInt8], key reference: String, wrappingKey: String, scheme: ImportWrapping.Scheme,
                               validTo: Date?, actor: Caller) async throws(KeywardError) -> KeyDescription {
        if let validTo, validTo <= clock.now {
            throw .invalidArgument("validTo \(ISO8601DateFormatter().string(from: validTo)) is not in the future")
        }
        let id = try await resolve(reference, for: .importMaterial, caller: actor)
        let wrappingID = try await resolve(wrappingKey, for: .importMaterial, caller: actor)
        let description = try await withUsableKey(id, .importMaterial, purpose: nil, caller: actor, named: reference) { (key, event) throws(KeywardError) -> KeyDescription in
            try Self.requireExternal(key)
            let material = try await unwrapImport(wrapped, wrappingID: wrappingID, for: id, scheme: scheme, spec: key.metadata.spec,
                                                  operation: .importMaterial, actor: actor)
            let commitment = material.commitment(label: Self.importedMaterialLabel, context: id.bytes)
            if let kept = key.metadata.importedMaterialDigest {
                guard let keptBytes = Data(base64Encoded: kept), ConstantTime.equals([UInt8](keptBytes), commitment) else {
                    throw .crypto(.invalidKeyMaterial(spec: key.metadata.spec, reason: "it is not the material key \(id) held before; a key takes back only its own material"))
                }
            }
            var metadata = key.metadata
            if metadata.awaitingMaterial == true {
                let fence = records.fence()
                guard let row = try await storing({ () async throws(StorageError) in try await store.version(id, 1) }) else {
                    throw .integrityFailure("key \(id) has no row for version 1")
                }
                var versionMetadata = try records.verifiedVersion(row, of: id, 1, fence)
                guard versionMetadata.state == "destroyed" else {
                    throw .storage(.unavailable("key \(id)'s previous material is still being deleted (a node has not caught up); try again shortly"))
                }
                versionMetadata.state = "active"
                let sealed = try protection.seal(material, keyID: id, version: 1)
                let filled = try records.versionRow(keyID: id, version: 1, sealed: sealed, metadata: versionMetadata, revision: row.revision + 1)
                try await storing({ () async throws(StorageError) in try await store.updateVersion(filled, expectedRevision: row.revision) })
                event.anchor(.version(id, 1), filled.revision)
                metadata.awaitingMaterial = nil
                if metadata.state == .preActive { metadata.state = .active }
                metadata.stateChangedAt = clock.now
            }
            metadata.importedMaterialDigest = Data(commitment).base64EncodedString()
            metadata.expiresAt = validTo
            event.version = 1
            event.detail = "material imported with wrapping key \(wrappingID) (\(scheme.rawValue))"
                + (validTo.map { ", valid to \(ISO8601DateFormatter().string(from: $0))" } ?? ", does not expire")
            return try await commit(key, metadata, event: &event)
        }
        cache.invalidate(id)
        return description
    }

    /// Deletes the material of a key created for imported material: the key is pre-active and
    /// empty at once, and the sealed bytes go once every live node has seen that (or in the next
    /// maintenance sweep). The same material can be imported again. Needs `import-material`.
    ///
    /// - Throws: `notPermitted` for a key that was not created for imported material;
    ///   `wrongState` outside pre-active, active and disabled.
    public func deleteImportedMaterial(key reference: String, actor: Caller) async throws(KeywardError) -> KeyDescription {
        let id = try await resolve(reference, for: .importMaterial, caller: actor)
        let description = try await withUsableKey(id, .importMaterial, purpose: nil, caller: actor, named: reference) { (key, event) throws(KeywardError) -> KeyDescription in
            try Self.requireExternal(key)
            guard key.metadata.awaitingMaterial != true else {
                return KeyDescription(metadata: key.metadata, aliases: key.aliases)
            }
            event.detail = "imported material deleted"
            return try await emptied(key, event: &event)
        }
        cache.invalidate(id)
        _ = try await purgeImportedMaterial(try await records.load(id), as: .onBehalfOfCaller)
        return description
    }

    /// Whether `key`'s imported material has passed its expiry and is still held.
    func importedMaterialExpired(_ key: LoadedKey, now: Date) -> Bool {
        guard key.metadata.origin == KeyMetadata.externalOrigin, key.metadata.awaitingMaterial != true,
              key.metadata.state != .destroyed, let expiry = key.metadata.expiresAt else { return false }
        return expiry <= now
    }

    /// Empties a key whose imported material expired (maintenance), then deletes the material.
    func expireImportedMaterial(_ key: LoadedKey) async throws(KeywardError) {
        let id = key.row.id
        try await auditor.audited(.key(.importMaterial), caller: .system(.importedMaterialExpiry), key: id) { (event) throws(KeywardError) -> Void in
            event.detail = "imported material expired"
            _ = try await emptied(key, event: &event)
        }
        cache.invalidate(id)
        _ = try await purgeImportedMaterial(try await records.load(id), as: .importedMaterialExpiry)
    }

    /// Deletes the stored material of a key that is waiting for imported material, once every
    /// live node has seen it go empty. Returns false, deleting nothing, while a node lags or
    /// when there is nothing to delete. Each version row is replaced only if it is still the
    /// row read before the barrier, so material imported meanwhile is never deleted.
    func purgeImportedMaterial(_ key: LoadedKey, as job: SystemJob) async throws(KeywardError) -> Bool {
        guard key.metadata.awaitingMaterial == true, key.metadata.state != .destroyed else { return false }
        let id = key.row.id
        let fence = records.fence()
        var held: [(row: VersionRow, metadata: VersionMetadata)] = []
        for row in try await storing({ () async throws(StorageError) in try await store.versions(id) }) {
            let metadata = try records.verifiedVersion(row, of: id, row.version, fence)
            if metadata.state != "destroyed" { held.append((row, metadata)) }
        }
        guard !held.isEmpty else { return false }
        let seen = try await storing({ () async throws(StorageError) in try await store.generation() })
        guard try await destructionBarrierPassed(generation: seen) else { return false }
        try await auditor.audited(.key(.importMaterial), caller: .system(job), key: id) { (event) throws(KeywardError) -> Void in
            event.detail = "imported material purged"
            for (row, metadata) in held {
                var tombstoned = metadata
                tombstoned.state = "destroyed"
                let tombstone = try records.versionRow(keyID: id, version: row.version, sealed: [], metadata: tombstoned, revision: row.revision + 1)
                try await storing({ () async throws(StorageError) in try await store.updateVersion(tombstone, expectedRevision: row.revision) })
                event.anchor(.version(id, row.version), tombstone.revision)
            }
        }
        cache.invalidate(id)
        return true
    }

    /// Commits `key` as empty: pre-active, waiting for its material, with no expiry.
    private func emptied(_ key: LoadedKey, event: inout AuditEvent) async throws(KeywardError) -> KeyDescription {
        var metadata = key.metadata
        metadata.awaitingMaterial = true
        metadata.state = .preActive
        metadata.stateChangedAt = clock.now
        metadata.expiresAt = nil
        return try await commit(key, metadata, event: &event)
    }

    private static func requireExternal(_ key: LoadedKey) throws(KeywardError) {
        guard key.metadata.origin == KeyMetadata.externalOrigin else {
            throw .notPermitted("key \(key.row.id) was not created for imported material (its material is \(key.metadata.origin == "imported" ? "imported at creation" : "Keyward's own"))")
        }
    }

    /// Unwraps material for an import with the store-issued wrapping key `wrappingID`, and
    /// destroys that key (compare-and-swap: of two imports racing on it, one fails), audited as
    /// `import-unwrap` on it. The wrapping key must have been issued to this caller's principal
    /// (the store's owner may use any), for an import into `target` (nil: for creating a new
    /// key, `importWrappedKey`), and not have expired. Returns the material as a key of `spec`
    /// (RSA as PKCS#8 or PKCS#1 DER, or PEM).
    func unwrapImport(_ wrapped: [UInt8], wrappingID: KeyID, for target: KeyID?, scheme: ImportWrapping.Scheme, spec: KeySpec,
                      operation: ServiceOperation, actor: Caller) async throws(KeywardError) -> KeyMaterial {
        try await auditor.audited(.importUnwrap, caller: actor, key: wrappingID) { (event) throws(KeywardError) -> KeyMaterial in
            let key = try await usableKey(wrappingID, for: .decrypt, purpose: .decrypt, caller: actor.internalStep)
            guard let owner = key.metadata.importWrappingFor else {
                throw .notPermitted("key \(wrappingID) is not an import wrapping key; ask for one (createImportWrappingKey, or importParameters for a key)")
            }
            guard key.metadata.importTarget == target else {
                let issued = key.metadata.importTarget.map { "an import into key \($0)" } ?? "creating a new key"
                let asked = target.map { "an import into key \($0)" } ?? "creating a new key"
                throw .notPermitted("wrapping key \(wrappingID) was issued for \(issued), not for \(asked)")
            }
            guard actor.policy == nil || owner == actor.principal else {
                throw .accessDenied(principal: actor.principal, operation: operation, key: wrappingID.description)
            }
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = version.number
            let material: KeyMaterial
            do throws(KeywardCryptoError) {
                let secret = try ImportWrapping.unwrap(wrapped, with: version.material, scheme: scheme)
                material = try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> KeyMaterial in
                    try KeyMaterial(spec: spec, importing: raw)
                }
            } catch {
                throw .crypto(error)
            }
            do throws(KeywardError) {
                try await destroy(key, as: .onBehalfOfCaller)
            } catch {
                if case .storage(.conflict) = error { throw .notPermitted("import wrapping key \(wrappingID) was used already; each serves one import") }
                throw error
            }
            return material
        }
    }
}
