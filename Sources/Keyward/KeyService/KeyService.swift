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
    /// This node's copy of the store's live grants.
    let grantBook: GrantBook
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
        /// When set, a cached key is used only while the last successful `refreshFromStore`
        /// began at most this many seconds ago; past that (the store unreachable, the process
        /// paused) every use reads and checks its row again, so a change made by another node is
        /// never outlived by this one's cache by more than the bound. `keyward serve` sets 1 s
        /// and refreshes every 250 ms. Nil (the default) trusts the cache for `cacheTTL`.
        public var coherenceBound: TimeInterval?
        /// This node's id among the nodes serving the store (`ClusterStore.heartbeat`); nil
        /// for a process that does not serve (the CLI, a library user). A destruction does not
        /// wait for its own node to report having seen it.
        public var nodeID: String?
        /// When set, with a `nodeID`, on a store that keeps an audit intake (PostgreSQL): each
        /// entry is inserted into the intake in a transaction of this node's own, and the node
        /// holding the maintenance lease chains the intake into the log (`sequenceAudit`,
        /// decision 0034), so no request waits behind another node's for the chain's head.
        /// `keyward serve` sets it; elsewhere entries are chained as they are written.
        public var sequencedAudit: Bool
        /// Most live grants a key may have (AWS KMS's quota is 50,000): every node keeps every
        /// live grant in memory (`GrantBook`), so a caller that may manage one key's grants
        /// must not be able to grow that without bound. Counted from this node's grant book, so
        /// grants made on other nodes in the last `cacheTTL` may be missed.
        public var maximumGrantsPerKey: Int

        /// Options; the defaults suit a single node.
        public init(cacheCapacity: Int = 10_000, cacheTTL: TimeInterval = 300,
                    encryptionReservationBlock: UInt64 = 1 << 16, encryptionLimit: UInt64 = 1 << 31, coherenceBound: TimeInterval? = nil,
                    nodeID: String? = nil, sequencedAudit: Bool = false, maximumGrantsPerKey: Int = 50_000) {
            self.maximumGrantsPerKey = maximumGrantsPerKey
            self.nodeID = nodeID
            self.sequencedAudit = sequencedAudit
            self.cacheCapacity = cacheCapacity
            self.cacheTTL = cacheTTL
            self.encryptionReservationBlock = encryptionReservationBlock
            self.encryptionLimit = encryptionLimit
            self.coherenceBound = coherenceBound
        }
    }

    /// The options the service was opened with.
    public let options: Options
    /// The store generation last seen by `refreshFromStore` (-1: none yet).
    private let seenGeneration = Atomic<Int64>(-1)
    private let rotatedElsewhere = Atomic<Bool>(false)

    /// True once `refreshFromStore` found that another process rotated the store's KEK: this
    /// instance has stopped writing, and a new one opened on the store (`open`) takes over.
    public var kekRotatedElsewhere: Bool { rotatedElsewhere.load(ordering: .acquiring) }

    /// The store generation this instance's caches have caught up with, as of the last
    /// `refreshFromStore` (-1 before the first).
    public var caughtUpGeneration: Int64 { seenGeneration.load(ordering: .acquiring) }

    /// The store format this version reads and writes (2: every mutable record's revision
    /// anchored, decision 0005).
    static let formatVersion = 2

    init(store: any KeyStore, protection: RecordProtection, header: StoreHeader, auditHead: AuditRow?, index: RevisionIndex,
                 clock: any KeywardClock, options: Options) {
        self.header = header
        self.clock = clock
        self.options = options
        // Every write of this instance is checked against the KEK it protects rows under.
        store.fenceWrites(activeKEK: header.activeKEK)
        let log = AuditLog(store: store, protection: protection, head: auditHead, index: index,
                           intakeNode: options.sequencedAudit && store.keepsAuditIntake ? options.nodeID : nil, clock: { clock.now })
        let auditor = Auditor(log: log, clock: clock)
        let records = KeyRepository(store: store, protection: protection, cache: KeyCache(capacity: options.cacheCapacity, ttl: options.cacheTTL, coherenceBound: options.coherenceBound),
                                    anchors: log, clock: clock)
        self.records = records
        self.auditor = auditor
        self.budget = EncryptionBudget(records: records, auditor: auditor, block: options.encryptionReservationBlock, limit: options.encryptionLimit)
        self.grantBook = GrantBook(ttl: options.cacheTTL)
    }

    /// A service on `store` under `protection`, continuing from the store's audit head and
    /// revision index once they are checked against each other. When they do not agree (the
    /// head or the index was edited), the service still opens, so that `verifyStore` can name
    /// what changed, but refuses every operation with `storeState` saying why.
    static func resuming(store: any KeyStore, protection: RecordProtection, header: StoreHeader,
                         clock: any KeywardClock, options: Options) async throws(KeywardError) -> KeyService {
        let snapshot = try await storing({ () async throws(StorageError) in try await store.anchorSnapshot() })
        do throws(KeywardError) {
            let (head, index) = try AuditLog.verifiedSnapshot(snapshot, protection: protection)
            return KeyService(store: store, protection: protection, header: header, auditHead: head, index: index, clock: clock, options: options)
        } catch {
            let service = KeyService(store: store, protection: protection, header: header, auditHead: snapshot.head,
                                     index: try RevisionIndex(rows: snapshot.anchors, protection: protection), clock: clock, options: options)
            service.auditor.log.retire("\(error); every operation is refused until the store is repaired (keyward verify names what changed)")
            return service
        }
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
        let service = KeyService(store: store, protection: protection, header: header, auditHead: nil, index: RevisionIndex(), clock: clock, options: options)
        var event = service.auditor.event(.initializeStore, caller: actor)
        event.detail = "root of trust: \(root.kind)"
        try await service.auditor.record(event)
        return service
    }

    /// Opens an existing store. `root` receives the header (its root-of-trust kind and public
    /// parameters) and returns the root of trust to unwrap the KEK with.
    ///
    /// - Throws: `storeState` for an empty store or another store format, `rootOfTrustRejected`
    ///   for a wrong passphrase, key file or token, `integrityFailure` when the header fails its
    ///   MAC or the audit head fails its MAC over the revision index.
    ///   Opening changes nothing in the store.
    public static func open(
        store: any KeyStore,
        root: (StoreHeader) throws(KeywardError) -> any RootOfTrust,
        clock: any KeywardClock = SystemClock(), options: Options = Options()
    ) async throws(KeywardError) -> KeyService {
        let header: StoreHeader
        let kekRecord: KEKRecord
        guard let found = try await storing({ () async throws(StorageError) in try await store.header() }) else {
            throw .storeEmpty
        }
        header = found
        guard let record = try await storing({ () async throws(StorageError) in try await store.kek(found.activeKEK) }) else {
            throw .integrityFailure("the store's active KEK record is missing")
        }
        kekRecord = record
        let trust = try root(header)
        guard trust.kind == header.rootOfTrust else {
            throw .rootOfTrustRejected("the store was created with a \(header.rootOfTrust) root of trust, not \(trust.kind)")
        }
        let kek = try trust.unwrap(kekRecord.wrapped)
        let protection = try RecordProtection(storeID: header.storeID, kekID: kekRecord.id, kek: kek)
        try protection.check(header.mac, RecordFraming.header(header), what: "the store header")
        guard header.formatVersion == formatVersion else {
            throw .storeState("the store has format \(header.formatVersion); this Keyward reads format \(formatVersion) only. Back it up with the "
                              + "Keyward that wrote it (keyward backup create), then restore the bundle into a new store")
        }
        return try await resuming(store: store, protection: protection, header: header, clock: clock, options: options)
    }

    /// Notices what other processes changed in the store: when the store's generation (which
    /// every administrative change by any writer increases) differs from the one last seen, every
    /// cached key is dropped, so its next use reads and checks its row again. Returns true when
    /// the store changed since the last call, and on the first call (nothing cached before it
    /// was confirmed against the store). `keyward serve` calls this
    /// every 250 ms, so a key disabled, an alias moved or a token revoked by the CLI applies
    /// within that.
    public func refreshFromStore() async throws(KeywardError) -> Bool {
        let asked = clock.now
        let now = try await storing({ () async throws(StorageError) in try await store.generation() })
        let before = seenGeneration.exchange(now, ordering: .acquiringAndReleasing)
        // The first poll counts as a change: whatever was cached before it is unconfirmed.
        let changed = before != now
        if changed {
            cache.invalidateAll()
            grantBook.invalidate()
            try await retireIfKEKRotated()
        }
        // Whatever had committed when the generation was asked for is now reflected here.
        cache.confirm(asked)
        // Another process appended to the audit log (its changes are anchored there): take up
        // its entries, checked, so that replay checks here know those changes too.
        if auditor.log.retiredReason == nil,
           let head = try await storing({ () async throws(StorageError) in try await store.auditHead() }), head.sequence > auditor.log.sequence {
            do {
                try await auditor.log.resynchronize()
            } catch {
                // A rotation that landed since the generation was read explains a MAC that no
                // longer verifies under this process's KEK; anything else is the failure it says.
                try await retireIfKEKRotated()
                if auditor.log.retiredReason == nil { throw error }
            }
        }
        return changed
    }

    /// A KEK rotated by another process: this instance holds the old KEK, and whatever it wrote
    /// now would carry MACs the store no longer accepts. It stops writing, saying why, instead of
    /// raising a false tamper alarm at its next write.
    private func retireIfKEKRotated() async throws(KeywardError) {
        if let current = try await storing({ () async throws(StorageError) in try await store.header() }), current.activeKEK != header.activeKEK {
            rotatedElsewhere.store(true, ordering: .releasing)
            auditor.log.retire("the store's KEK was rotated by another process (active KEK \(current.activeKEK)); this instance still holds "
                               + "KEK \(header.activeKEK) and has stopped writing: keyward serve opens the store again by itself within a second; "
                               + "another program must open it again (KeyService.open) to unwrap the new KEK")
        }
    }

    /// Resolves a key reference: a key id (UUID) or an alias whose row passes its MAC.
    public func resolve(_ reference: String) async throws(KeywardError) -> KeyID {
        try await records.resolve(reference)
    }

    /// Alias names: 1 to 256 characters of letters, digits, `/`, `_`, `-`, `.`; not a UUID.
    static func validAlias(_ name: String) throws(KeywardError) -> String {
        // Byte by byte: every allowed character is ASCII, so its UTF-8 count is its length. (This
        // runs on every call that names a key by alias.)
        let bytes = name.utf8
        guard (1...256).contains(bytes.count), bytes.allSatisfy(isAliasByte) else {
            throw .invalidArgument("alias '\(name.prefix(64))' must be 1 to 256 letters, digits, '/', '_', '-' or '.'")
        }
        return name
    }

    /// A name for a new or moved alias: `validAlias`, and its `/`-separated segments neither
    /// empty nor `.` or `..`. `team-a/../billing/x` would pass a rule on `team-a/*` while a URL
    /// (and a reader) resolves it to `billing/x`, so such names are refused when an alias is
    /// made; existing aliases still resolve.
    static func newAliasName(_ name: String) throws(KeywardError) -> String {
        let alias = try validAlias(name)
        for segment in alias.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard !segment.isEmpty, !segment.elementsEqual(".".utf8), !segment.elementsEqual("..".utf8) else {
                throw .invalidArgument("alias '\(name.prefix(64))' has an empty, '.' or '..' segment; name it without them (such as app/orders)")
            }
        }
        return alias
    }

    /// A letter, digit, '/', '_', '-' or '.' in ASCII.
    private static func isAliasByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "/"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."): true
        default: false
        }
    }
}

/// Runs a storage call, turning its error into `KeywardError.storage`.
func storing<T>(_ body: () async throws(StorageError) -> T) async throws(KeywardError) -> T {
    do throws(StorageError) { return try await body() } catch { throw .storage(error) }
}
