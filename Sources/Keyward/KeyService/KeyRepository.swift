import Foundation
import KeywardCrypto
import KeywardStorage

/// Loads, verifies and commits a store's protected records. Every record read through it has
/// passed its MAC (`RecordFraming` says what each MAC covers) and the replay check against the
/// revision index the audit log anchors (`AuditLog`): a row older than the newest revision the
/// log records is refused. Every record written through it is MAC'd under the storage KEK.
/// Unsealed keys are cached here (`KeyCache`), and a commit drops the cached copy.
struct KeyRepository: Sendable {
    let store: any KeyStore
    let protection: RecordProtection
    let cache: KeyCache
    /// The revision index, as the audit log's newest batch MAC vouches for it.
    let anchors: AuditLog
    let clock: any KeywardClock

    // MARK: Making protected rows

    /// A key row for `metadata` at `revision`, MAC'd.
    func keyRow(_ metadata: KeyMetadata, revision: Int64) throws(KeywardError) -> KeyRow {
        var row = KeyRow(id: metadata.id, body: try CanonicalJSON.encode(metadata), revision: revision, mac: [],
                         spec: metadata.spec.rawValue, state: metadata.state.rawValue, createdAt: metadata.createdAt, tags: metadata.tags)
        row.mac = try protection.mac(RecordFraming.key(row))
        return row
    }

    /// A version row holding `sealed` material, MAC'd.
    func versionRow(keyID: KeyID, version: UInt32, sealed: [UInt8], metadata: VersionMetadata, revision: Int64) throws(KeywardError) -> VersionRow {
        var row = VersionRow(keyID: keyID, version: version, kekID: protection.kekID, sealed: sealed,
                             body: try CanonicalJSON.encode(metadata), revision: revision, mac: [])
        row.mac = try protection.mac(RecordFraming.version(row))
        return row
    }

    /// An alias row, MAC'd.
    func aliasRow(name: String, keyID: KeyID, revision: Int64) throws(KeywardError) -> AliasRow {
        var row = AliasRow(name: name, keyID: keyID, revision: revision, mac: [])
        row.mac = try protection.mac(RecordFraming.alias(row))
        return row
    }

    /// The revision a new row for alias `name` starts at: past any deletion the audit log
    /// records, so the new row is never taken for the deleted one put back.
    func firstAliasRevision(_ name: String) -> Int64 {
        (anchors.anchor(of: .alias(name))?.revision ?? 0) + 1
    }

    /// A token row for `record` with the token's `hash`, MAC'd.
    func tokenRow(_ record: TokenRecord, hash: [UInt8], revision: Int64) throws(KeywardError) -> TokenRow {
        var row = TokenRow(id: record.id, hash: hash, body: try CanonicalJSON.encode(record), revision: revision, mac: [])
        row.mac = try protection.mac(RecordFraming.token(row))
        return row
    }

    // MARK: Verifying rows

    /// Take before reading rows that are then verified: see `ReadFence`.
    func fence() -> ReadFence { anchors.fence() }

    /// Refuses a row of `record` at `revision` when the audit log anchors a newer revision (an
    /// older row put back) or the record's deletion at or after it (a deleted row put back).
    /// `fence` was taken before the row was read; only anchors it binds count.
    func checkCurrent(_ record: AnchoredRecord, revision: Int64, _ fence: ReadFence) throws(KeywardError) {
        guard let anchored = anchors.anchor(of: record), fence.binds(anchored) else { return }
        if anchored.deleted ? anchored.revision >= revision : anchored.revision > revision {
            throw .integrityFailure("\(record) is at revision \(revision) but the audit log records revision \(anchored.revision)"
                                    + "\(anchored.deleted ? ", which deleted it" : "") (an older row was put back)")
        }
    }

    /// Refuses the absence of a row the audit log records as existing (a deleted row).
    func checkAbsent(_ record: AnchoredRecord, _ fence: ReadFence) throws(KeywardError) {
        guard let anchored = anchors.anchor(of: record), !anchored.deleted, fence.binds(anchored) else { return }
        throw .integrityFailure("\(record) is recorded in the audit log at revision \(anchored.revision) but its row is missing from the store (deleted)")
    }

    /// Checks a key row's MAC, that its columns agree with its body, and decodes it.
    func verifiedMetadata(_ row: KeyRow, _ fence: ReadFence) throws(KeywardError) -> KeyMetadata {
        try protection.check(row.mac, RecordFraming.key(row), what: "the row of key \(row.id)")
        let metadata = try CanonicalJSON.decode(KeyMetadata.self, from: row.body, what: "the metadata of key \(row.id)")
        guard metadata.id == row.id, metadata.spec.rawValue == row.spec, metadata.state.rawValue == row.state else {
            throw .integrityFailure("the columns of key \(row.id) disagree with its MAC'd body")
        }
        try checkCurrent(.key(row.id), revision: row.revision, fence)
        return metadata
    }

    /// Checks a version row's MAC and that it is the row asked for, and decodes its metadata.
    func verifiedVersion(_ row: VersionRow, of id: KeyID, _ number: UInt32, _ fence: ReadFence) throws(KeywardError) -> VersionMetadata {
        try protection.check(row.mac, RecordFraming.version(row), what: "version \(number) of key \(id)")
        guard row.keyID == id, row.version == number else {
            throw .integrityFailure("the row for version \(number) of key \(id) names another key or version")
        }
        try checkCurrent(.version(id, number), revision: row.revision, fence)
        return try CanonicalJSON.decode(VersionMetadata.self, from: row.body, what: "version \(number) of key \(id)")
    }

    /// Checks a token row's MAC and decodes its record.
    func verifiedToken(_ row: TokenRow, _ fence: ReadFence) throws(KeywardError) -> TokenRecord {
        try protection.check(row.mac, RecordFraming.token(row), what: "token \(row.id)")
        let record = try CanonicalJSON.decode(TokenRecord.self, from: row.body, what: "token \(row.id)")
        guard record.id == row.id else { throw .integrityFailure("token row \(row.id) holds the record of another token") }
        try checkCurrent(.token(row.id), revision: row.revision, fence)
        return record
    }

    /// Checks an alias row's MAC and its revision.
    func verifiedAlias(_ row: AliasRow, _ fence: ReadFence) throws(KeywardError) -> AliasRow {
        try protection.check(row.mac, RecordFraming.alias(row), what: "alias \(row.name)")
        try checkCurrent(.alias(row.name), revision: row.revision, fence)
        return row
    }

    // MARK: Resolving and loading keys

    /// Resolves a key reference: a key id (UUID) or an alias whose row passes its MAC.
    func resolve(_ reference: String) async throws(KeywardError) -> KeyID {
        if let id = KeyID(parsing: reference) { return id }
        let name = try KeyService.validAlias(reference)
        let now = clock.now
        if let id = cache.alias(name, now: now) { return id }
        let epoch = cache.aliasEpoch
        let fence = fence()
        guard let alias = try await storing({ () async throws(StorageError) in try await store.alias(name) }) else {
            try checkAbsent(.alias(name), fence)
            throw .keyNotFound(reference)
        }
        let id = try verifiedAlias(alias, fence).keyID
        cache.putAlias(name, id, loadedAt: now, readIn: epoch)
        return id
    }

    /// The key's verified metadata, from the cache or the store. A row whose revision is older
    /// than the newest one the audit log records is a replay and is refused; a key the log
    /// records whose row is gone is an integrity failure, not an unknown key.
    func load(_ id: KeyID) async throws(KeywardError) -> LoadedKey {
        let now = clock.now
        if let cached = cache.get(id, now: now) { return cached }
        let epoch = cache.epoch
        let fence = fence()
        guard let row = try await storing({ () async throws(StorageError) in try await store.key(id) }) else {
            try checkAbsent(.key(id), fence)
            throw .keyNotFound(id.description)
        }
        let metadata = try verifiedMetadata(row, fence)
        return cache.put(LoadedKey(row: row, metadata: metadata, aliases: try await authenticAliases(of: id), loadedAt: now), readIn: epoch)
    }

    /// A version's material, unsealed once and then cached with its key.
    func loadVersion(_ key: LoadedKey, _ number: UInt32) async throws(KeywardError) -> LoadedVersion {
        if let found = key.versions.withLock({ $0[number] }) { return found }
        let id = key.row.id
        let fence = fence()
        guard number >= 1, number <= key.metadata.currentVersion,
              let row = try await storing({ () async throws(StorageError) in try await store.version(id, number) }) else {
            if number >= 1, number <= key.metadata.currentVersion { try checkAbsent(.version(id, number), fence) }
            throw .versionUnavailable(key: id, version: number, reason: "the key has versions 1 to \(key.metadata.currentVersion)")
        }
        let metadata = try verifiedVersion(row, of: id, number, fence)
        if metadata.state == "destroyed" { throw .keyDestroyed(key: id, version: number) }
        guard row.kekID == protection.kekID else {
            throw .integrityFailure("version \(number) of key \(id) is sealed under an unknown KEK")
        }
        let material = try protection.open(row.sealed, keyID: id, version: number, spec: key.metadata.spec)
        let loaded = LoadedVersion(number: number, material: material, row: row, metadata: metadata)
        return key.versions.withLock { versions in
            if let raced = versions[number] { return raced }
            versions[number] = loaded
            return loaded
        }
    }

    /// The key's aliases whose rows pass their MAC, for policy checks, descriptions, listings and
    /// backups: a forged alias row is left out (it can only narrow what a policy grants, never
    /// widen it), so one tampered alias takes neither its key nor a listing out of service.
    /// `verify` names it.
    func authenticAliases(of id: KeyID) async throws(KeywardError) -> [String] {
        let fence = fence()
        let rows = try await storing({ () async throws(StorageError) in try await store.aliases(of: id) })
        return rows.filter { (try? verifiedAlias($0, fence)) != nil && $0.keyID == id }.map(\.name)
    }

    // MARK: Committing changes

    /// Writes new metadata for a key (compare-and-swap on its revision) and drops the cached
    /// copy, whether or not the write won. Returns the row written.
    func commit(_ key: LoadedKey, _ metadata: KeyMetadata) async throws(KeywardError) -> KeyRow {
        let row = try keyRow(metadata, revision: key.row.revision + 1)
        defer { cache.invalidate(key.row.id) }
        try await storing({ () async throws(StorageError) in try await store.updateKey(row, expectedRevision: key.row.revision) })
        return row
    }

    /// Adds `version` and the key's new row in one transaction (compare-and-swap on the key's
    /// revision) and drops the cached copy.
    func commit(_ key: LoadedKey, _ row: KeyRow, adding version: VersionRow) async throws(KeywardError) {
        defer { cache.invalidate(key.row.id) }
        try await storing({ () async throws(StorageError) in try await store.insertVersion(version, key: row, expectedRevision: key.row.revision) })
    }
}
