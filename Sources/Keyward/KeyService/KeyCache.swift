import Foundation
import KeywardCrypto
import KeywardStorage
import Synchronization

/// A key version's unsealed material, held in `SecretBytes` for as long as it is cached.
final class LoadedVersion: Sendable {
    let number: UInt32
    let material: KeyMaterial
    let row: VersionRow
    let metadata: VersionMetadata
    /// Encryptions used out of those reserved in the store.
    let budget: Mutex<(used: UInt64, reserved: UInt64)>
    /// The reservation being written, if any: concurrent callers wait for it instead of racing.
    let reservation = Mutex<Task<Bool, any Error>?>(nil)

    init(number: UInt32, material: consuming KeyMaterial, row: VersionRow, metadata: VersionMetadata) {
        self.number = number
        self.material = material
        self.row = row
        self.metadata = metadata
        self.budget = Mutex((used: metadata.encryptionsReserved, reserved: metadata.encryptionsReserved))
    }
}

/// A key's verified metadata and the versions unsealed so far.
final class LoadedKey: Sendable {
    let row: KeyRow
    let metadata: KeyMetadata
    /// The key's aliases when it was loaded (for policies that select by alias).
    let aliases: [String]
    let versions = Mutex<[UInt32: LoadedVersion]>([:])
    let loadedAt: Date

    init(row: KeyRow, metadata: KeyMetadata, aliases: [String], loadedAt: Date) {
        self.row = row
        self.metadata = metadata
        self.aliases = aliases
        self.loadedAt = loadedAt
    }
}

/// Bounded cache of loaded keys: at most `capacity` keys, each for at most `ttl` seconds.
/// Oldest entries are evicted first; evicted material is wiped when its last user drops it.
/// Resolved aliases are kept beside them under the same TTL, epochs and coherence bound, and
/// dropped with the key they name.
final class KeyCache: Sendable {
    private struct State {
        var entries: [KeyID: LoadedKey] = [:]
        var order: [KeyID] = []
        var head = 0
        /// Aliases resolved from verified rows: name, key, when read. Bounded like the keys.
        var aliases: [String: (id: KeyID, loadedAt: Date)] = [:]
    }

    let capacity: Int
    let ttl: TimeInterval
    private let state = Mutex(State())
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    private let epochs = Atomic<Int>(0)
    /// Increased by every invalidation: an alias row read before one may name a key it no
    /// longer names, so `putAlias` does not keep it.
    private let aliasEpochs = Atomic<Int>(0)

    /// The alias epoch now (read before an alias row, handed to `putAlias`).
    var aliasEpoch: Int { aliasEpochs.load(ordering: .acquiring) }

    /// Increased by `invalidateAll`: a key read from the store in an earlier epoch may predate
    /// the change that emptied the cache, so `put` does not keep it.
    var epoch: Int { epochs.load(ordering: .acquiring) }

    /// With a bound, cached keys are served only while the store was last confirmed unchanged
    /// (`confirm`) at most this many seconds ago; past it every `get` misses, so each use reads
    /// its row through (and fails with the store when the store is gone).
    let coherenceBound: TimeInterval?
    /// When the store was last confirmed unchanged, as seconds since 1970 (bit pattern).
    private let confirmedAt = Atomic<UInt64>(0)

    init(capacity: Int, ttl: TimeInterval, coherenceBound: TimeInterval? = nil) {
        self.capacity = max(1, capacity)
        self.ttl = ttl
        self.coherenceBound = coherenceBound
    }

    /// Records that, as of `time`, the store held no change this cache has not taken up.
    func confirm(_ time: Date) {
        confirmedAt.store(time.timeIntervalSince1970.bitPattern, ordering: .releasing)
    }

    func get(_ id: KeyID, now: Date) -> LoadedKey? {
        if let coherenceBound,
           now.timeIntervalSince1970 - Double(bitPattern: confirmedAt.load(ordering: .acquiring)) > coherenceBound {
            misses.add(1, ordering: .relaxed)
            return nil
        }
        let found = state.withLock { state -> LoadedKey? in
            guard let entry = state.entries[id] else { return nil }
            if now.timeIntervalSince(entry.loadedAt) > ttl {
                state.entries[id] = nil
                return nil
            }
            return entry
        }
        if found != nil { hits.add(1, ordering: .relaxed) } else { misses.add(1, ordering: .relaxed) }
        return found
    }

    /// Caches `key`, unless a copy at the same or a newer revision is already cached, in which
    /// case that copy is returned: concurrent loaders share one `LoadedKey` (and so one set of
    /// unsealed versions and encryption budgets).
    ///
    /// With `readIn`, the epoch in which the key's row was read: a key read before the last
    /// `invalidateAll` is returned but not cached.
    @discardableResult
    func put(_ key: LoadedKey, readIn epoch: Int? = nil) -> LoadedKey {
        state.withLock { state -> LoadedKey in
            if let epoch, epoch != epochs.load(ordering: .acquiring) { return key }
            if let existing = state.entries[key.row.id], existing.row.revision >= key.row.revision {
                return existing
            }
            if state.entries.updateValue(key, forKey: key.row.id) == nil {
                state.order.append(key.row.id)
            }
            while state.entries.count > capacity, state.head < state.order.count {
                let victim = state.order[state.head]
                state.head += 1
                state.entries[victim] = nil
            }
            if state.head > 4096 && state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            return key
        }
    }

    /// The key alias `name` resolved to, from the cache (within the TTL and the coherence
    /// bound, as keys are); nil when it must be read from the store.
    func alias(_ name: String, now: Date) -> KeyID? {
        guard coherent(now) else { return nil }
        return state.withLock { state -> KeyID? in
            guard let entry = state.aliases[name] else { return nil }
            guard now.timeIntervalSince(entry.loadedAt) <= ttl else {
                state.aliases[name] = nil
                return nil
            }
            return entry.id
        }
    }

    /// Remembers that alias `name` named key `id` when read at `loadedAt`, unless any
    /// invalidation happened since the row was read (`readIn`, the `aliasEpoch` before it).
    func putAlias(_ name: String, _ id: KeyID, loadedAt: Date, readIn epoch: Int) {
        state.withLock { state in
            guard epoch == aliasEpochs.load(ordering: .acquiring) else { return }
            if state.aliases.count >= capacity && state.aliases[name] == nil { state.aliases.removeAll(keepingCapacity: true) }
            state.aliases[name] = (id, loadedAt)
        }
    }

    /// Forgets key `id` and every alias resolved to it (its aliases changed, or the key did).
    func invalidate(_ id: KeyID) {
        state.withLock { state in
            aliasEpochs.add(1, ordering: .releasing)
            state.entries.removeValue(forKey: id)
            if state.aliases.contains(where: { $0.value.id == id }) {
                state.aliases = state.aliases.filter { $0.value.id != id }
            }
        }
    }

    /// Forgets alias `name` (set or deleted here, whichever key it named).
    func invalidateAlias(_ name: String) {
        state.withLock { state in
            aliasEpochs.add(1, ordering: .releasing)
            state.aliases.removeValue(forKey: name)
        }
    }

    /// Whether cached answers may be used at `now` (the coherence bound).
    private func coherent(_ now: Date) -> Bool {
        guard let coherenceBound else { return true }
        return now.timeIntervalSince1970 - Double(bitPattern: confirmedAt.load(ordering: .acquiring)) <= coherenceBound
    }

    /// Forgets every key: the next use of each reads and checks its row again.
    func invalidateAll() {
        state.withLock { state in
            epochs.add(1, ordering: .releasing)
            aliasEpochs.add(1, ordering: .releasing)
            state.entries.removeAll()
            state.order.removeAll()
            state.head = 0
            state.aliases.removeAll()
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
