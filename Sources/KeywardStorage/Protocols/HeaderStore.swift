import Foundation
import KeywardCrypto

/// The store's header and its KEK records: what opening a store reads first.
public protocol HeaderStore: Sendable {
    /// The header, or nil for an empty store.
    func header() async throws(StorageError) -> StoreHeader?
    /// Writes the header and the first KEK of a new store. Fails with `alreadyInitialized`.
    func initialize(header: StoreHeader, kek: KEKRecord) async throws(StorageError)
    /// A KEK by id.
    func kek(_ id: KeyID) async throws(StorageError) -> KEKRecord?
    /// All KEKs.
    func keks() async throws(StorageError) -> [KEKRecord]
    /// A counter that every administrative change (a key row updated or deleted, an alias
    /// written or removed, a token updated, a KEK or the header changed) increases, whichever
    /// process makes it. Readers compare it with the value they last saw to notice other writers.
    func generation() async throws(StorageError) -> Int64
    /// From now on every write of this store instance (rows, audit appends, rewrites) checks,
    /// inside its own transaction, that the header's active KEK is still `activeKEK`, and fails
    /// with `staleKEK` when another process rotated it: rows protected under a retired KEK never
    /// land. `rewriteAll` moves the fence to its new KEK when it commits.
    func fenceWrites(activeKEK: KeyID)
    /// Whether the store answers within `timeout` and holds a header (readiness probes); a
    /// store that does not answer in time fails with `unavailable`.
    func isReady(within timeout: Duration) async throws(StorageError) -> Bool
}

extension HeaderStore {
    /// Reads the header (a local store answers at once or fails).
    public func isReady(within timeout: Duration) async throws(StorageError) -> Bool {
        try await header() != nil
    }
}
