import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

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
    /// Loads, verifies and commits the store's protected records.
    let records: KeyRepository
    /// Writes the audit entries.
    let auditor: Auditor
    /// Hands out each version's encryptions from persisted reservations.
    let budget: EncryptionBudget
    let clock: any KeywardClock

    var store: any KeyStore { records.store }
    var protection: RecordProtection { records.protection }
    var cache: KeyCache { records.cache }
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
    /// The store generation last seen by `refreshFromStore` (-1: none yet).
    private let seenGeneration = Atomic<Int64>(-1)

    static let formatVersion = 1

    init(store: any KeyStore, protection: RecordProtection, header: StoreHeader, auditHead: AuditRow?,
                 clock: any KeywardClock, options: Options) {
        self.header = header
        self.clock = clock
        self.options = options
        let records = KeyRepository(store: store, protection: protection, cache: KeyCache(capacity: options.cacheCapacity, ttl: options.cacheTTL), clock: clock)
        self.records = records
        self.budget = EncryptionBudget(records: records, block: options.encryptionReservationBlock, limit: options.encryptionLimit)
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
        header.mac = try protection.mac(RecordFraming.header(header))
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
        try protection.check(header.mac, RecordFraming.header(header), what: "the store header")
        if let head {
            guard protection.checkAuditMAC(head.mac, head.hash),
                  AuditLog.chainHash(previous: head.previousHash, sequence: head.sequence, body: head.body) == head.hash else {
                throw .integrityFailure("the newest audit entry (#\(head.sequence)) fails its MAC or hash")
            }
        }
        return KeyService(store: store, protection: protection, header: header, auditHead: head, clock: clock, options: options)
    }

    /// Notices what other processes changed in the store: when the store's generation (which
    /// every administrative change by any writer increases) differs from the one last seen, every
    /// cached key is dropped, so its next use reads and checks its row again. Returns true when
    /// the store changed since the last call (false on the first). `keyward serve` calls this
    /// every 250 ms, so a key disabled, an alias moved or a token revoked by the CLI applies
    /// within that.
    public func refreshFromStore() async throws(KeywardError) -> Bool {
        let now = try await storing({ () async throws(StorageError) in try await store.generation() })
        let before = seenGeneration.exchange(now, ordering: .acquiringAndReleasing)
        guard before >= 0, before != now else { return false }
        cache.invalidateAll()
        // A KEK rotated by another process: this instance holds the old KEK, and whatever it
        // wrote now would carry MACs the store no longer accepts. It stops writing, saying why,
        // instead of raising a false tamper alarm at its next write.
        if let current = try await storing({ () async throws(StorageError) in try await store.header() }), current.activeKEK != header.activeKEK {
            auditor.log.retire("the store's KEK was rotated by another process (active KEK \(current.activeKEK)); this process still holds "
                               + "KEK \(header.activeKEK) and has stopped writing: restart it (keyward serve) to unwrap the new KEK")
        }
        return true
    }

    /// Resolves a key reference: a key id (UUID) or an alias whose row passes its MAC.
    public func resolve(_ reference: String) async throws(KeywardError) -> KeyID {
        try await records.resolve(reference)
    }

    /// Alias names: 1 to 256 characters of letters, digits, `/`, `_`, `-`, `.`; not a UUID.
    static func validAlias(_ name: String) throws(KeywardError) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.")
        guard (1...256).contains(name.count), name.allSatisfy({ allowed.contains($0) }) else {
            throw .invalidArgument("alias '\(name.prefix(64))' must be 1 to 256 letters, digits, '/', '_', '-' or '.'")
        }
        return name
    }
}

/// Runs a storage call, turning its error into `KeywardError.storage`.
func storing<T>(_ body: () async throws(StorageError) -> T) async throws(KeywardError) -> T {
    do throws(StorageError) { return try await body() } catch { throw .storage(error) }
}
