import Foundation
import KeywardCrypto

/// Keys, their versions and their aliases.
///
/// - Updates are compare-and-swap on `revision` (`StorageError.conflict` when stale).
/// - `(keyID, version)` is unique, so two concurrent rotations end with one new version.
/// - An alias name is unique.
public protocol KeyRecordStore: Sendable {
    /// Inserts a new key with its first version and aliases, in one transaction.
    func insertKey(_ key: KeyRow, firstVersion: VersionRow?, aliases: [AliasRow]) async throws(StorageError)
    /// A key's metadata row.
    func key(_ id: KeyID) async throws(StorageError) -> KeyRow?
    /// Replaces a key's row if its stored revision is `expectedRevision`.
    func updateKey(_ key: KeyRow, expectedRevision: Int64) async throws(StorageError)
    /// A page of keys, ordered by id, after `cursor`.
    func listKeys(filter: KeyFilter, after cursor: KeyID?, limit: Int) async throws(StorageError) -> [KeyRow]
    /// How many keys the store holds.
    func keyCount() async throws(StorageError) -> Int

    /// One version of a key.
    func version(_ keyID: KeyID, _ version: UInt32) async throws(StorageError) -> VersionRow?
    /// All versions of a key, oldest first.
    func versions(_ keyID: KeyID) async throws(StorageError) -> [VersionRow]
    /// Writes restored keys in one transaction: every key row with all its versions and
    /// aliases, or nothing. With `intoEmptyStore`, fails with `conflict` when the store already
    /// holds a key; without, when it holds one of these keys or aliases. Fails with `conflict`
    /// when two rows collide.
    func restoreKeys(_ keys: [RestoredKey], intoEmptyStore: Bool) async throws(StorageError)
    /// Adds a version and updates the key row (CAS) in one transaction.
    func insertVersion(_ version: VersionRow, key: KeyRow, expectedRevision: Int64) async throws(StorageError)
    /// Replaces a version row if its stored revision is `expectedRevision`.
    func updateVersion(_ version: VersionRow, expectedRevision: Int64) async throws(StorageError)

    /// An alias by name.
    func alias(_ name: String) async throws(StorageError) -> AliasRow?
    /// Up to `limit` aliases with names after `cursor`, in name order (all of them, whichever
    /// key they name: `verify` looks for aliases of keys that do not exist).
    func aliases(after cursor: String?, limit: Int) async throws(StorageError) -> [AliasRow]
    /// The aliases of a key.
    func aliases(of keyID: KeyID) async throws(StorageError) -> [AliasRow]
    /// Creates or re-points an alias (CAS on the existing row's revision, or insert when nil).
    func putAlias(_ alias: AliasRow, expectedRevision: Int64?) async throws(StorageError)
    /// Removes an alias if its stored revision is `expectedRevision`.
    func deleteAlias(_ name: String, expectedRevision: Int64) async throws(StorageError)
}

extension KeyRecordStore {
    /// Writes restored keys into a store that holds none (`restoreKeys(_:intoEmptyStore:)`).
    public func restoreKeys(_ keys: [RestoredKey]) async throws(StorageError) {
        try await restoreKeys(keys, intoEmptyStore: true)
    }
}
