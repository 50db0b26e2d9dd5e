import Foundation
import KeywardCrypto
import KeywardStorage

/// One key as a backup holds it: metadata, aliases, and each version's material.
public final class BackupKey: Sendable {
    /// The key's metadata as it was backed up.
    public let metadata: KeyMetadata
    /// The key's aliases.
    public let aliases: [String]
    let versions: [BackupVersion]

    init(metadata: KeyMetadata, aliases: [String], versions: [BackupVersion]) {
        self.metadata = metadata
        self.aliases = aliases
        self.versions = versions
    }

    /// The versions the backup holds.
    public var versionNumbers: [UInt32] { versions.map(\.number) }

    /// Whether any version carries material (false when every version is a tombstone).
    public var holdsMaterial: Bool { versions.contains { $0.material != nil } }

    /// The same key with `aliases` instead of its own (restoring under another name).
    func renamed(_ aliases: [String]) -> BackupKey { BackupKey(metadata: metadata, aliases: aliases, versions: versions) }
}

final class BackupVersion: Sendable {
    let number: UInt32
    let metadata: VersionMetadata
    /// Nil for a destroyed version (a tombstone).
    let material: MaterialBox?

    init(number: UInt32, metadata: VersionMetadata, material: MaterialBox?) {
        self.number = number
        self.metadata = metadata
        self.material = material
    }
}

/// Key material held by reference, so it can be optional and shared without copies.
final class MaterialBox: Sendable {
    let material: KeyMaterial
    init(_ material: consuming KeyMaterial) { self.material = material }
}

/// An opened (decrypted and checked) backup.
public struct BackupContents: Sendable {
    /// The bundle's header.
    public let header: BackupBundle.Header
    /// Every key in the bundle, checked.
    public let keys: [BackupKey]
}

/// How a backup is protected.
public enum BackupProtection: Sendable {
    /// A passphrase, stretched with these KDF parameters.
    case passphrase(Passphrase, KDFParameters)
    /// A recipient's X25519 or X-Wing public key (HPKE).
    case recipient(PublicKey)
}

/// A passphrase in locked memory, shareable across calls.
public final class Passphrase: Sendable {
    /// The passphrase bytes.
    public let secret: SecretBytes
    /// Takes ownership of `secret`.
    public init(_ secret: consuming SecretBytes) { self.secret = secret }
}

extension KeyService {
    /// Writes one encrypted, integrity-protected bundle of every key that allows backup
    /// (signing keys only when created with backup allowed). Due maintenance runs first, so a
    /// key past its destruction date is destroyed, not backed up; destroyed versions travel as
    /// tombstones, never as material.
    public func createBackup(protection: BackupProtection, actor: Caller, progress: @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> BackupBundle {
        try await auditor.audited(.createBackup, caller: actor, key: nil) { (event) throws(KeywardError) -> BackupBundle in
            try Self.requireOwner(actor, .export)
            return try await writeBackup(protection: protection, actor: actor, event: &event, progress: progress)
        }
    }

    /// A recipient backup for an administrator over the API (`backup` on `*`), sealed only to
    /// one of `pinned`, the recipients the server's operator configured: a stolen admin
    /// credential cannot have the keys sealed to its holder's own public key. With `keys`
    /// (ids or aliases), the bundle holds only those, each of which must allow backups.
    public func createBackup(to recipient: PublicKey, pinned: [PublicKey], keys: [String]? = nil, actor: Caller) async throws(KeywardError) -> BackupBundle {
        try await auditor.audited(.createBackup, caller: actor, key: nil) { (event) throws(KeywardError) -> BackupBundle in
            try authorizeAdministration(.backup, actor)
            guard pinned.contains(where: { $0.spec == recipient.spec && $0.representation == recipient.representation }) else {
                throw .notPermitted("the recipient is not one this server seals backups to; the operator pins recipients in its configuration (backup.recipients)")
            }
            var selection: Set<KeyID>? = nil
            if let keys {
                guard (1...1000).contains(keys.count) else { throw .invalidArgument("a backup of chosen keys names 1 to 1000 of them, not \(keys.count)") }
                var ids = Set<KeyID>()
                for reference in keys { ids.insert(try await records.resolve(reference)) }
                selection = ids
            }
            return try await writeBackup(protection: .recipient(recipient), keys: selection, actor: actor, event: &event, progress: { _ in })
        }
    }

    /// The bundle `createBackup` writes, for a caller already authorised: every key that allows
    /// backups, or the keys in `selection` (each of which must).
    private func writeBackup(protection: BackupProtection, keys selection: Set<KeyID>? = nil, actor: Caller, event: inout AuditEvent,
                             progress: @Sendable (Int) -> Void) async throws(KeywardError) -> BackupBundle {
        // Keys past their destruction date are destroyed first, so their material stays out.
        let maintenance = try await runMaintenance()
        guard maintenance.failures.isEmpty else {
            throw .storeState("maintenance before the backup failed, so due destructions may not have happened: \(maintenance.failures.joined(separator: "; "))")
        }
        var payload: [UInt8] = []
        defer { SecureZero.wipe(&payload) }
        var count = 0
        var cursor: KeyID? = nil
        if let selection {
            let fence = records.fence()
            for id in selection.sorted(by: { $0.description < $1.description }) {
                guard let row = try await storing({ () async throws(StorageError) in try await store.key(id) }) else { throw .keyNotFound(id.description) }
                let metadata = try records.verifiedMetadata(row, fence)
                guard metadata.backupAllowed, metadata.importWrappingFor == nil else {
                    throw .notPermitted("key \(id) does not allow backups (signing keys allow them only when created with backup allowed)")
                }
                try await appendKey(metadata, row: row, to: &payload)
                count += 1
            }
        } else {
            repeat {
                let fence = records.fence()
                let rows = try await storing({ () async throws(StorageError) in try await store.listKeys(filter: KeyFilter(), after: cursor, limit: 500) })
                for row in rows {
                    let metadata = try records.verifiedMetadata(row, fence)
                    guard metadata.backupAllowed, metadata.importWrappingFor == nil else { continue }
                    try await appendKey(metadata, row: row, to: &payload)
                    count += 1
                }
                progress(count)
                cursor = rows.count == 500 ? rows.last?.id : nil
            } while cursor != nil
        }
        let bundleKey: KeyMaterial
        do throws(KeywardCryptoError) { bundleKey = try KeyMaterial.generate(.aes256GCM) } catch { throw .crypto(error) }
        var header = BackupBundle.Header(protection: .passphrase, kdf: nil, wrappedKey: nil, sealedKey: nil,
                                         storeID: self.header.storeID, createdAt: clock.now, keyCount: count, bundleID: KeyID())
        do throws(KeywardCryptoError) {
            switch protection {
            case .passphrase(let passphrase, let kdf):
                header.protection = .passphrase
                header.kdf = kdf
                let wrapping = try PassphraseKDF.deriveKey(passphrase: passphrase.secret, parameters: kdf)
                header.wrappedKey = try KeyWrap.wrap(bundleKey.secret, kek: wrapping, mode: .rfc5649)
            case .recipient(let recipient):
                header.protection = recipient.spec == .xWing ? .xWing : .x25519
                header.sealedKey = try HybridEncryption.seal(bundleKey.secret, to: recipient, info: Array("keyward backup v1".utf8))
            }
        } catch {
            throw .crypto(error)
        }
        // A recipient bundle names the store's backup signing key, then is signed by it.
        var signerKey: KeyID?
        if case .recipient = protection {
            let (id, version, publicKey) = try await backupSigningKey(actor: actor)
            header.signer = BackupBundle.Signer(keyID: id, version: version, spec: publicKey.spec, publicKey: publicKey.representation)
            signerKey = id
        }
        let framing = try BackupBundle(header: header, headerBytes: try CanonicalJSON.encode(header))
        let sealed: [UInt8]
        do throws(KeywardCryptoError) { sealed = try bundleKey.seal(payload, keyID: header.bundleID, version: 1, context: framing.context) } catch { throw .crypto(error) }
        let unsigned = try BackupBundle(header: header, sealedPayload: sealed)
        event.detail = "\(count) keys, protection \(header.protection)"
        guard let signerKey, let signer = header.signer else { return unsigned }
        let signature = try await sign(.message(unsigned.signedBytes), key: signerKey.description, actor: actor.internalStep)
        guard signature.version == signer.version else {
            throw .storeState("the backup signing key was rotated while the backup was written; write it again")
        }
        event.detail = "\(count) keys, protection \(header.protection), signed by \(signerKey) v\(signer.version)"
        return try BackupBundle(header: header, sealedPayload: sealed, signature: signature.signature)
    }

    /// The alias of the store's backup signing key.
    public static let backupSignerAlias = "keyward/backup-signer"

    /// The public key that signs this store's recipient backups (Ed25519, alias
    /// `keyward/backup-signer`), created on first use. Whoever restores a recipient backup pins
    /// it (`openBackup(_:identity:signer:)`), so a bundle sealed to their public key by anyone
    /// else is refused. Owner only; the key never leaves the store (backup not allowed).
    public func backupSigner(actor: Caller) async throws(KeywardError) -> PublicKey {
        try Self.requireOwner(actor, .export)
        return try await backupSigningKey(actor: actor).publicKey
    }

    /// The backup signing key, created on first use, for a caller already authorised.
    private func backupSigningKey(actor: Caller) async throws(KeywardError) -> (id: KeyID, version: UInt32, publicKey: PublicKey) {
        try await storeSigningKey(alias: Self.backupSignerAlias, description: "signs this store's recipient backups", what: "backups", actor: actor)
    }

    private func appendKey(_ metadata: KeyMetadata, row: KeyRow, to payload: inout [UInt8]) async throws(KeywardError) {
        let metadataBytes = try CanonicalJSON.encode(metadata)
        payload.appendUInt32(UInt32(metadataBytes.count))
        payload += metadataBytes
        let aliases = try await records.authenticAliases(of: row.id)
        payload.appendUInt32(UInt32(aliases.count))
        for alias in aliases {
            payload.appendUInt32(UInt32(alias.utf8.count))
            payload += Array(alias.utf8)
        }
        let versions = try await storing({ () async throws(StorageError) in try await store.versions(row.id) })
        payload.appendUInt32(UInt32(versions.count))
        for version in versions {
            try protection.check(version.mac, RecordFraming.version(version), what: "version \(version.version) of key \(row.id)")
            let versionMetadata = try CanonicalJSON.decode(VersionMetadata.self, from: version.body, what: "version \(version.version) of key \(row.id)")
            payload.appendUInt32(version.version)
            let versionBytes = try CanonicalJSON.encode(versionMetadata)
            payload.appendUInt32(UInt32(versionBytes.count))
            payload += versionBytes
            if versionMetadata.state == "destroyed" {
                payload.appendUInt32(0)
            } else {
                let material = try protection.open(version.sealed, keyID: row.id, version: version.version, spec: metadata.spec)
                material.secret.withSecretBytes(InsecureSecretAccess.token) { raw in
                    payload.appendUInt32(UInt32(raw.count))
                    payload.append(contentsOf: raw)
                }
            }
        }
    }

    /// Opens a passphrase-protected bundle: checks its integrity and every key's material.
    public static func openBackup(_ bytes: [UInt8], passphrase: borrowing SecretBytes) throws(KeywardError) -> BackupContents {
        let bundle = try BackupBundle(parsing: bytes)
        guard bundle.header.protection == .passphrase, let kdf = bundle.header.kdf, let wrapped = bundle.header.wrappedKey else {
            throw .invalidArgument("this backup is protected by a \(bundle.header.protection) recipient key, not a passphrase")
        }
        // The record comes from the file: outside Keyward's bounds it is refused before any work.
        do { try kdf.validate() } catch {
            throw .integrityFailure("the backup's KDF parameters are outside Keyward's bounds (\(error)); the header may have been altered")
        }
        let bundleKey: SecretBytes
        do {
            let wrapping = try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: kdf)
            bundleKey = try KeyWrap.unwrap(wrapped, kek: wrapping, mode: .rfc5649)
        } catch {
            if case .weakKDFParameters = error { throw .integrityFailure("the backup's KDF parameters are below Keyward's minimums") }
            throw .backupRejected("the backup passphrase is wrong (or the header was altered)")
        }
        return try openPayload(bundle, bundleKey: bundleKey)
    }

    /// Opens a bundle sealed to `identity`'s public key, which `signer` (the source store's
    /// `backupSigner`, obtained from it out of band) must have signed: a bundle anyone else
    /// sealed to the recipient's public key is refused before it is opened.
    public static func openBackup(_ bytes: [UInt8], identity: borrowing KeyMaterial, signer: PublicKey) throws(KeywardError) -> BackupContents {
        let bundle = try BackupBundle(parsing: bytes)
        guard let sealed = bundle.header.sealedKey else {
            throw .invalidArgument("this backup is protected by a passphrase, not a recipient key")
        }
        try bundle.checkSignature(by: signer)
        let bundleKey: SecretBytes
        do { bundleKey = try HybridEncryption.open(sealed, with: identity, info: Array("keyward backup v1".utf8)) } catch {
            throw .backupRejected("this identity is not the backup's recipient (or the header was altered)")
        }
        return try openPayload(bundle, bundleKey: bundleKey)
    }

    private static func openPayload(_ bundle: BackupBundle, bundleKey: consuming SecretBytes) throws(KeywardError) -> BackupContents {
        var payload: [UInt8]
        do {
            let key = try KeyMaterial(spec: .aes256GCM, secret: bundleKey)
            payload = try key.open(bundle.sealedPayload, keyID: bundle.header.bundleID, version: 1, context: bundle.context)
        } catch {
            throw .integrityFailure("the backup's contents fail their integrity check (altered or truncated)")
        }
        defer { SecureZero.wipe(&payload) }
        // The reader and the slices it hands out share the payload's storage; they end with this
        // call, so the wipe above overwrites that storage rather than a copy-on-write copy.
        let keys = try readKeys(payload)
        guard keys.count == bundle.header.keyCount else {
            throw .integrityFailure("the backup header says \(bundle.header.keyCount) keys but it holds \(keys.count)")
        }
        return BackupContents(header: bundle.header, keys: keys)
    }

    /// The keys in an opened payload; version material goes from the payload straight into
    /// locked memory (`KeyMaterial(spec:importing:)`), with no copy in between.
    private static func readKeys(_ payload: [UInt8]) throws(KeywardError) -> [BackupKey] {
        var reader = PayloadReader(bytes: payload)
        var keys: [BackupKey] = []
        while !reader.atEnd {
            let metadata = try CanonicalJSON.decode(KeyMetadata.self, from: Array(try reader.field()), what: "a key in the backup")
            var aliases: [String] = []
            for _ in 0..<(try reader.uint32()) { aliases.append(String(decoding: try reader.field(), as: UTF8.self)) }
            var versions: [BackupVersion] = []
            let versionCount = try reader.uint32()
            guard versionCount <= 1_000_000 else { throw .integrityFailure("key \(metadata.id) claims \(versionCount) versions") }
            for _ in 0..<versionCount {
                let number = try reader.uint32()
                let versionMetadata = try CanonicalJSON.decode(VersionMetadata.self, from: Array(try reader.field()), what: "version \(number) of key \(metadata.id)")
                let material = try reader.field()
                if material.isEmpty {
                    versions.append(BackupVersion(number: number, metadata: versionMetadata, material: nil))
                } else {
                    do throws(KeywardCryptoError) {
                        versions.append(BackupVersion(number: number, metadata: versionMetadata, material: MaterialBox(try KeyMaterial(spec: metadata.spec, importing: material))))
                    } catch {
                        throw .crypto(error)
                    }
                }
            }
            keys.append(BackupKey(metadata: metadata, aliases: aliases, versions: versions))
        }
        return keys
    }

    /// Restores an opened backup into this store, which must hold no keys: the same key ids,
    /// versions, metadata and aliases, material re-sealed under this store's KEK. Ciphertexts
    /// made before the backup decrypt afterwards.
    public func restore(_ contents: BackupContents, actor: Caller, progress: @Sendable (Int) -> Void = { _ in }) async throws(KeywardError) -> Int {
        try Self.requireOwner(actor, .create)
        return try await restoreAuthorised(contents, actor: actor, progress: progress)
    }

    /// Restores, for an administrator over the API (`restore` on `*`), a recipient bundle
    /// sealed to `identity` (the server's own, from its configuration) and signed by one of
    /// `signers` (the source stores the operator trusts), into this store, which must hold no
    /// keys. Nothing secret crosses the wire: the bundle is opened here.
    public func restore(bundle: [UInt8], identity: borrowing KeyMaterial, signers: [PublicKey], actor: Caller) async throws(KeywardError) -> Int {
        try await checkAdministration(.restore, actor: actor)
        guard try await storing({ () async throws(StorageError) in try await store.keyCount() }) == 0 else {
            throw .notPermitted("this store already holds keys; a backup is restored only into an empty store")
        }
        let contents = try Self.openTrusted(bundle, identity: identity, signers: signers)
        return try await restoreAuthorised(contents, actor: actor, progress: { _ in })
    }

    /// A bundle sent over the API, opened with `identity` and checked: signed by one of
    /// `signers` (else `notPermitted`), intact and valid (else `invalidArgument`: the bundle is
    /// the caller's input, not this store's data).
    private static func openTrusted(_ bundle: [UInt8], identity: borrowing KeyMaterial, signers: [PublicKey]) throws(KeywardError) -> BackupContents {
        let header: BackupBundle.Header
        do { header = try BackupBundle(parsing: bundle).header } catch { throw refusedBundle(error) }
        guard let named = header.signer, let signer = signers.first(where: { $0.spec == named.spec && $0.representation == named.publicKey }) else {
            throw .notPermitted("the bundle is not signed by a store this server trusts (backup.signers); nothing was restored")
        }
        do {
            let contents = try openBackup(bundle, identity: identity, signer: signer)
            try validateForRestore(contents)
            return contents
        } catch {
            throw refusedBundle(error)
        }
    }

    /// A fault of a bundle sent over the API, as the caller's error.
    private static func refusedBundle(_ error: KeywardError) -> KeywardError {
        switch error {
        case .integrityFailure(let reason), .rootOfTrustRejected(let reason), .backupRejected(let reason), .invalidArgument(let reason):
            return .invalidArgument("the bundle was refused: \(reason)")
        default:
            return error
        }
    }

    /// Adds the keys of a recipient bundle sealed to `identity` and signed by one of `signers`
    /// to this store, which may hold other keys but none of these nor their aliases (a key
    /// moved between stores, Transit's restore). With `aliases`, the bundle's one key gets these
    /// aliases instead of its own. For an administrator (`restore` on `*`); atomic: every key
    /// or none.
    ///
    /// - Throws: `notPermitted` for a bundle no trusted store signed; `integrityFailure` for a
    ///   bundle that fails its checks; `storage(.conflict)` when the store already holds one of
    ///   the keys or aliases.
    public func restoreKeys(bundle: [UInt8], identity: borrowing KeyMaterial, signers: [PublicKey], aliases: [String]? = nil,
                            actor: Caller) async throws(KeywardError) -> [KeyID] {
        try await checkAdministration(.restore, actor: actor)
        var contents = try Self.openTrusted(bundle, identity: identity, signers: signers)
        if let aliases {
            guard contents.keys.count == 1 else {
                throw .invalidArgument("new aliases are given for a bundle of one key; this one holds \(contents.keys.count)")
            }
            contents = BackupContents(header: contents.header, keys: [contents.keys[0].renamed(aliases)])
        }
        _ = try await restoreAuthorised(contents, actor: actor, intoEmptyStore: false, progress: { _ in })
        return contents.keys.map(\.metadata.id)
    }

    private func restoreAuthorised(_ contents: BackupContents, actor: Caller, intoEmptyStore: Bool = true,
                                   progress: @Sendable (Int) -> Void) async throws(KeywardError) -> Int {
        if intoEmptyStore {
            guard try await storing({ () async throws(StorageError) in try await store.keyCount() }) == 0 else {
                throw .storeState("a backup is restored only into a store that holds no keys")
            }
        }
        // Every record is checked before the first is written: a bundle that decrypts is still
        // input, and a bad record found halfway would leave half a store.
        try Self.validateForRestore(contents)
        // Every row is built (material re-sealed under this store's KEK) before any is written,
        // then all go in one transaction: a failure or a crash restores nothing.
        var rows: [RestoredKey] = []
        var events: [AuditEvent] = []
        for key in contents.keys {
            var event = auditor.event(.restoreKey, caller: actor, key: key.metadata.id)
            var versionRows: [VersionRow] = []
            for version in key.versions {
                let sealed: [UInt8]
                if let box = version.material {
                    sealed = try protection.seal(box.material, keyID: key.metadata.id, version: version.number)
                } else {
                    sealed = []
                }
                versionRows.append(try records.versionRow(keyID: key.metadata.id, version: version.number, sealed: sealed, metadata: version.metadata, revision: 1))
            }
            var aliases: [AliasRow] = []
            for alias in key.aliases {
                aliases.append(try records.aliasRow(name: alias, keyID: key.metadata.id, revision: records.firstAliasRevision(alias)))
            }
            // The key row at the revision rotation would have left it: one per version after the first.
            let row = try records.keyRow(key.metadata, revision: Int64(max(1, versionRows.count)))
            event.anchor(.key(row.id), row.revision)
            for version in versionRows { event.anchor(.version(row.id, version.version), version.revision) }
            for alias in aliases { event.anchor(.alias(alias.name), alias.revision) }
            event.detail = "from backup \(contents.header.bundleID) of store \(contents.header.storeID)"
            rows.append(RestoredKey(key: row, versions: versionRows, aliases: aliases))
            events.append(event)
        }
        do throws(StorageError) {
            try await store.restoreKeys(rows, intoEmptyStore: intoEmptyStore)
        } catch {
            var event = auditor.event(.restoreKey, caller: actor, key: nil)
            event.detail = "\(rows.count) keys from backup \(contents.header.bundleID); nothing was restored"
            throw await auditor.refusal(event, .storage(error))
        }
        for (index, event) in events.enumerated() {
            try await auditor.log.record(event)
            progress(index + 1)
        }
        return rows.count
    }
}

extension KeyService {
    /// Checks every record of a bundle as `createKey` and the lifecycle would: unique ids and
    /// aliases, valid aliases, tags, description and rotation period; versions numbered 1 to the
    /// current one; a minimum decryption version among them; each active version carrying material
    /// of the key's spec and each destroyed one none; a destroyed key with no material left; a
    /// pending destruction with a date; no import wrapping key (backups never hold one).
    ///
    /// - Throws: `integrityFailure` naming the key and what is wrong with it.
    static func validateForRestore(_ contents: BackupContents) throws(KeywardError) {
        var ids = Set<KeyID>()
        var aliases = Set<String>()
        for key in contents.keys {
            let metadata = key.metadata
            func refuse(_ what: String) -> KeywardError { .integrityFailure("the backup's key \(metadata.id) \(what); nothing was restored") }
            guard ids.insert(metadata.id).inserted else { throw refuse("appears twice") }
            guard metadata.importWrappingFor == nil else { throw refuse("is an import wrapping key, which backups never hold") }
            do {
                try validate(CreateKeyRequest(spec: metadata.spec, aliases: key.aliases, tags: metadata.tags, description: metadata.description,
                                              rotationPeriodDays: metadata.rotationPeriodDays, contextRequired: metadata.contextRequired == true))
            } catch {
                throw refuse("is invalid: \(error.description)")
            }
            for alias in key.aliases where !aliases.insert(alias).inserted { throw refuse("shares the alias '\(alias)' with another key") }
            guard metadata.currentVersion >= 1, key.versions.map(\.number) == Array(1...metadata.currentVersion) else {
                throw refuse("lists versions \(key.versions.map(\.number)) for current version \(metadata.currentVersion)")
            }
            if let oldest = metadata.minAvailableVersion, !(1...metadata.minDecryptionVersion).contains(oldest) {
                throw refuse("has oldest available version \(oldest) outside 1 to its minimum decryption version \(metadata.minDecryptionVersion)")
            }
            guard (1...metadata.currentVersion).contains(metadata.minDecryptionVersion) else {
                throw refuse("has minimum decryption version \(metadata.minDecryptionVersion) outside 1 to \(metadata.currentVersion)")
            }
            if metadata.state == .pendingDestruction, metadata.destructionDate == nil { throw refuse("is pending destruction with no date") }
            for version in key.versions {
                switch (version.metadata.state, version.material) {
                case ("active", let box?):
                    guard metadata.state != .destroyed else { throw refuse("is destroyed but version \(version.number) still has material") }
                    guard box.material.spec == metadata.spec else {
                        throw refuse("version \(version.number) holds \(box.material.spec.rawValue) material for a \(metadata.spec.rawValue) key")
                    }
                case ("active", nil): throw refuse("version \(version.number) is active with no material")
                case ("destroyed", nil): break
                case ("destroyed", _?): throw refuse("version \(version.number) is destroyed yet carries material")
                default: throw refuse("version \(version.number) has state '\(version.metadata.state)'")
                }
            }
        }
    }

    /// Refuses, with `accessDenied`, a caller that is not the store's owner: backups hold every
    /// key the store allows to leave, so no access policy, however broad, grants them.
    static func requireOwner(_ caller: Caller, _ operation: ServiceOperation) throws(KeywardError) {
        guard case .owner = caller.authority else {
            throw .accessDenied(principal: caller.principal, operation: operation, key: nil)
        }
    }
}
