import Foundation
import KeywardCrypto

/// Persistence for a Keyward store, without SQL in its interface, so that the SQLite backend
/// (single node) and a PostgreSQL backend (several nodes) are interchangeable. It is the
/// concerns a store holds, each a small protocol of its own (`HeaderStore`, `KeyRecordStore`,
/// `CredentialStore`, `AuditStore`), the nodes' coordination (`ClusterStore`), plus the one
/// operation that spans them all.
///
/// The backend stores what it is given; integrity (MACs, revisions, AAD) is the `Keyward`
/// layer's job. What the backend guarantees:
/// - every method is atomic: a crash leaves either all of a call's writes or none;
/// - what each part promises (compare-and-swap revisions, unique versions and aliases, an
///   audit log without gaps).
public protocol KeyStore: HeaderStore, KeyRecordStore, CredentialStore, AuditStore, ClusterStore {
    /// In one transaction: stores `newKEK` (retiring and then deleting the old ones), replaces the
    /// header, and rewrites every key, version, alias, token and audit row through `rewriter`. If
    /// anything fails (or the process dies) before the commit, nothing has changed. `progress`
    /// receives the number of rows rewritten so far. Returns that number.
    func rewriteAll(
        newKEK: KEKRecord, header: StoreHeader, rewriter: RecordRewriter,
        progress: @escaping @Sendable (Int) -> Void
    ) async throws(StorageError) -> Int
}
