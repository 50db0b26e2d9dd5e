import Foundation
import GRDB
import GRDBSQLite
import KeywardCrypto
import Synchronization

/// The KEK a store instance writes under, checked inside every write transaction.
///
/// Another process can rotate the KEK while this one runs (`keyward kek rotate` beside
/// `keyward serve`). Until this process notices, whatever it writes would carry MACs and seals
/// under the retired KEK, rows the rotated store refuses. So each write transaction first reads
/// the header's active KEK, in the same transaction as the write, and fails with `staleKEK`
/// when it is not this one: SQLite's write lock orders it with the rotation, so either the write
/// commits before the rotation (which then rewrites it) or it fails and nothing lands.
final class KEKFence: Sendable {
    private let expected = Mutex<[UInt8]?>(nil)

    /// Sets the KEK this instance writes under (nil: no check, before the store is opened).
    func set(_ kek: KeyID?) { expected.withLock { $0 = kek?.bytes } }

    /// The KEK id bytes writes are checked against.
    var current: [UInt8]? { expected.withLock { $0 } }

    /// Throws `staleKEK` when the header in `db` names another active KEK than `expected`.
    static func check(_ db: Database, _ expected: [UInt8]) throws {
        guard let active = try Data.fetchOne(db, sql: "SELECT active_kek FROM store_header") else { return }
        if [UInt8](active) != expected { throw StorageError.staleKEK(Self.describe(expected: expected, active: [UInt8](active))) }
    }

    /// The message for a write refused under `expected` while `active` is the store's KEK.
    static func describe(expected: [UInt8], active: [UInt8]) -> String {
        let name: ([UInt8]) -> String = { bytes in (try? KeyID(bytes: bytes))?.description ?? "?" }
        return "this process writes under KEK \(name(expected)), but another process rotated the store's KEK to \(name(active)); nothing was written"
    }
}
