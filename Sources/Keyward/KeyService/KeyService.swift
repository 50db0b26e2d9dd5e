import Foundation
import KeywardCrypto
import KeywardStorage

/// The application face of Keyward: creates, uses, rotates and destroys keys in a store, and
/// audits every access. Front ends (CLI, HTTP, AWS KMS, Vault Transit) are thin adapters over it.
///
/// Invariants:
/// - every key version's material is sealed under the storage KEK with AAD binding store, key,
///   version, spec and purpose; every mutable row carries a MAC and a revision;
/// - a row that fails its MAC, or whose revision is older than the audit log says, is refused;
/// - every operation on a key is audited, and fails if its audit entry cannot be written;
/// - which operation each lifecycle state allows comes from `LifecycleTable` alone.
public final class KeyService: Sendable {
    let store: any KeyStore
    let protection: RecordProtection
    let auditor: Auditor
    let clock: any KeywardClock
    let cache: KeyCache
    /// The store header, as verified at open.
    public let header: StoreHeader

    /// Tuning for a service instance.
    public struct Options: Sendable {
        /// Most keys held unsealed at once.
        public var cacheCapacity: Int
        /// Seconds a loaded key stays cached before its row is read and checked again.
        public var cacheTTL: TimeInterval
        /// Encryptions reserved in the store per write, per version.
        public var encryptionReservationBlock: UInt64
        /// A version is rotated once this many encryptions are reserved (AES-GCM random nonces
        /// must stay well below 2^32 per key).
        public var encryptionLimit: UInt64

        /// Options; the defaults suit a single node.
        public init(cacheCapacity: Int = 10_000, cacheTTL: TimeInterval = 300,
                    encryptionReservationBlock: UInt64 = 1 << 16, encryptionLimit: UInt64 = 1 << 31) {
            self.cacheCapacity = cacheCapacity
            self.cacheTTL = cacheTTL
            self.encryptionReservationBlock = encryptionReservationBlock
            self.encryptionLimit = encryptionLimit
        }
    }

    let options: Options

    static let formatVersion = 1

    init(store: any KeyStore, protection: RecordProtection, header: StoreHeader, auditHead: AuditRow?,
                 clock: any KeywardClock, options: Options) {
        self.store = store
        self.protection = protection
        self.header = header
        self.clock = clock
        self.options = options
        self.cache = KeyCache(capacity: options.cacheCapacity, ttl: options.cacheTTL)
        self.auditor = Auditor(log: AuditLog(store: store, protection: protection, head: auditHead), clock: clock)
    }

    /// Creates a new store: a random store id and KEK, the KEK wrapped by `root`.
    ///
    /// - Throws: `storeState` if the store already holds a header.
    public static func initialize(
        store: any KeyStore, root: any RootOfTrust, actor: Caller,
        clock: any KeywardClock = SystemClock(), options: Options = Options()
    ) async throws(KeywardError) -> KeyService {
        if try await storing({ () async throws(StorageError) in try await store.header() }) != nil {
            throw .storeState("this store is already initialised")
        }
        let storeID = KeyID()
        let kekID = KeyID()
        let kek: SecretBytes
        do { kek = try SecretBytes.random(count: 32) } catch { throw .crypto(error) }
        let wrapped = try root.wrap(kek)
        let protection = try RecordProtection(storeID: storeID, kekID: kekID, kek: kek)
        let now = clock.now
        var header = StoreHeader(storeID: storeID, formatVersion: formatVersion, rootOfTrust: root.kind,
                                 rootParameters: root.parameters, activeKEK: kekID, createdAt: now, mac: [])
        header.mac = try protection.mac(headerParts(header))
        do {
            try await store.initialize(header: header, kek: KEKRecord(id: kekID, wrapped: wrapped, createdAt: now, state: "active"))
        } catch {
            throw error == .alreadyInitialized ? .storeState("this store is already initialised") : .storage(error)
        }
        let service = KeyService(store: store, protection: protection, header: header, auditHead: nil, clock: clock, options: options)
        var event = service.auditor.event(.initializeStore, caller: actor)
        event.detail = "root of trust: \(root.kind)"
        try await service.auditor.record(event)
        return service
    }

    /// Opens an existing store. `root` receives the header (its root-of-trust kind and public
    /// parameters) and returns the root of trust to unwrap the KEK with.
    ///
    /// - Throws: `storeState` for an empty store, `rootOfTrustRejected` for a wrong passphrase,
    ///   key file or token, `integrityFailure` when the header or the audit head fails its MAC.
    ///   Opening changes nothing in the store.
    public static func open(
        store: any KeyStore,
        root: (StoreHeader) throws(KeywardError) -> any RootOfTrust,
        clock: any KeywardClock = SystemClock(), options: Options = Options()
    ) async throws(KeywardError) -> KeyService {
        let header: StoreHeader
        let kekRecord: KEKRecord
        let head: AuditRow?
        guard let found = try await storing({ () async throws(StorageError) in try await store.header() }) else {
            throw .storeEmpty
        }
        header = found
        guard let record = try await storing({ () async throws(StorageError) in try await store.kek(found.activeKEK) }) else {
            throw .integrityFailure("the store's active KEK record is missing")
        }
        kekRecord = record
        head = try await storing({ () async throws(StorageError) in try await store.auditHead() })
        let trust = try root(header)
        guard trust.kind == header.rootOfTrust else {
            throw .rootOfTrustRejected("the store was created with a \(header.rootOfTrust) root of trust, not \(trust.kind)")
        }
        let kek = try trust.unwrap(kekRecord.wrapped)
        let protection = try RecordProtection(storeID: header.storeID, kekID: kekRecord.id, kek: kek)
        try protection.check(header.mac, headerParts(header), what: "the store header")
        if let head {
            guard protection.checkAuditMAC(head.mac, head.hash),
                  AuditLog.chainHash(previous: head.previousHash, sequence: head.sequence, body: head.body) == head.hash else {
                throw .integrityFailure("the newest audit entry (#\(head.sequence)) fails its MAC or hash")
            }
        }
        return KeyService(store: store, protection: protection, header: header, auditHead: head, clock: clock, options: options)
    }

    static func headerParts(_ header: StoreHeader) -> [[UInt8]] {
        ["header".utf8.map { $0 }, header.storeID.bytes, RecordProtection.bytes(Int64(header.formatVersion)), Array(header.rootOfTrust.utf8),
         header.rootParameters, header.activeKEK.bytes, RecordProtection.bytes(Int64(header.createdAt.timeIntervalSince1970 * 1000))]
    }

    // MARK: - Row protection

    func keyParts(_ row: KeyRow) -> [[UInt8]] { PartsBuilder().key(row) }
    func versionParts(_ row: VersionRow) -> [[UInt8]] { PartsBuilder().version(row) }
    func aliasParts(_ row: AliasRow) -> [[UInt8]] { PartsBuilder().alias(row) }

    func makeKeyRow(_ metadata: KeyMetadata, revision: Int64) throws(KeywardError) -> KeyRow {
        var row = KeyRow(id: metadata.id, body: try CanonicalJSON.encode(metadata), revision: revision, mac: [],
                         spec: metadata.spec.rawValue, state: metadata.state.rawValue, createdAt: metadata.createdAt, tags: metadata.tags)
        row.mac = try protection.mac(keyParts(row))
        return row
    }

    func makeVersionRow(keyID: KeyID, version: UInt32, sealed: [UInt8], metadata: VersionMetadata, revision: Int64) throws(KeywardError) -> VersionRow {
        var row = VersionRow(keyID: keyID, version: version, kekID: protection.kekID, sealed: sealed,
                             body: try CanonicalJSON.encode(metadata), revision: revision, mac: [])
        row.mac = try protection.mac(versionParts(row))
        return row
    }

    func makeAliasRow(name: String, keyID: KeyID, revision: Int64) throws(KeywardError) -> AliasRow {
        var row = AliasRow(name: name, keyID: keyID, revision: revision, mac: [])
        row.mac = try protection.mac(aliasParts(row))
        return row
    }

    /// Checks a key row's MAC, that its columns agree with its body, and decodes it.
    func verifiedMetadata(_ row: KeyRow) throws(KeywardError) -> KeyMetadata {
        try protection.check(row.mac, keyParts(row), what: "the row of key \(row.id)")
        let metadata = try CanonicalJSON.decode(KeyMetadata.self, from: row.body, what: "the metadata of key \(row.id)")
        guard metadata.id == row.id, metadata.spec.rawValue == row.spec, metadata.state.rawValue == row.state else {
            throw .integrityFailure("the columns of key \(row.id) disagree with its MAC'd body")
        }
        return metadata
    }

    // MARK: - Storage access with typed errors

    func storage<T>(_ body: () async throws(StorageError) -> T) async throws(KeywardError) -> T {
        try await storing(body)
    }

    // MARK: - Resolving and loading keys

    /// Resolves a key reference: a key id (UUID) or an alias.
    public func resolve(_ reference: String) async throws(KeywardError) -> KeyID {
        if let id = try? KeyID(string: reference) { return id }
        let name = try Self.validAlias(reference)
        guard let alias = try await storage({ () async throws(StorageError) in try await store.alias(name) }) else {
            throw .keyNotFound(reference)
        }
        try protection.check(alias.mac, aliasParts(alias), what: "alias \(name)")
        return alias.keyID
    }

    /// Alias names: 1 to 256 characters of letters, digits, `/`, `_`, `-`, `.`; not a UUID.
    static func validAlias(_ name: String) throws(KeywardError) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.")
        guard (1...256).contains(name.count), name.allSatisfy({ allowed.contains($0) }) else {
            throw .invalidArgument("alias '\(name.prefix(64))' must be 1 to 256 letters, digits, '/', '_', '-' or '.'")
        }
        return name
    }

    /// The key's verified metadata, from the cache or the store. A row whose revision is older
    /// than the newest one the audit log records is a replay and is refused.
    func load(_ id: KeyID) async throws(KeywardError) -> LoadedKey {
        let now = clock.now
        if let cached = cache.get(id, now: now) { return cached }
        guard let row = try await storage({ () async throws(StorageError) in try await store.key(id) }) else {
            throw .keyNotFound(id.description)
        }
        let metadata = try verifiedMetadata(row)
        if let audited = try await storage({ () async throws(StorageError) in try await store.latestAuditedRevision(of: id) }), audited > row.revision {
            throw .integrityFailure("key \(id) is at revision \(row.revision) but the audit log records revision \(audited) (an older row was put back)")
        }
        return cache.put(LoadedKey(row: row, metadata: metadata, aliases: try await authenticAliases(of: id), loadedAt: now))
    }

    /// A version's material, unsealed once and then cached with its key.
    func loadVersion(_ key: LoadedKey, _ number: UInt32) async throws(KeywardError) -> LoadedVersion {
        if let found = key.versions.withLock({ $0[number] }) { return found }
        let id = key.row.id
        guard number >= 1, number <= key.metadata.currentVersion,
              let row = try await storage({ () async throws(StorageError) in try await store.version(id, number) }) else {
            throw .versionUnavailable(key: id, version: number, reason: "the key has versions 1 to \(key.metadata.currentVersion)")
        }
        try protection.check(row.mac, versionParts(row), what: "version \(number) of key \(id)")
        guard row.keyID == id, row.version == number else {
            throw .integrityFailure("the row for version \(number) of key \(id) names another key or version")
        }
        let metadata = try CanonicalJSON.decode(VersionMetadata.self, from: row.body, what: "version \(number) of key \(id)")
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
}

/// Runs a storage call, turning its error into `KeywardError.storage`.
func storing<T>(_ body: () async throws(StorageError) -> T) async throws(KeywardError) -> T {
    do throws(StorageError) { return try await body() } catch { throw .storage(error) }
}
