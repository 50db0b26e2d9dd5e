import Foundation
import KeywardCrypto
import KeywardStorage

/// What each protected record's MAC covers: the one definition, for every reader and writer
/// of the records (the repository, the KEK rewriter, verification). Each frame starts with the
/// record kind, so a MAC made for one kind never verifies as another; `RecordProtection.mac`
/// length-prefixes every part, so no two frames run together.
enum RecordFraming {
    /// The store header: its id, format, root of trust and parameters, active KEK, creation.
    static func header(_ header: StoreHeader) -> [[UInt8]] {
        [Array("header".utf8), header.storeID.bytes, RecordProtection.bytes(Int64(header.formatVersion)), Array(header.rootOfTrust.utf8),
         header.rootParameters, header.activeKEK.bytes, RecordProtection.bytes(Int64(header.createdAt.timeIntervalSince1970 * 1000))]
    }

    /// A key row: its id, revision and canonical metadata body.
    static func key(_ row: KeyRow) -> [[UInt8]] {
        [Array("key".utf8), row.id.bytes, RecordProtection.bytes(row.revision), row.body]
    }

    /// A version row: key, version number, KEK, revision and metadata body (the sealed
    /// material carries its own AEAD binding).
    static func version(_ row: VersionRow) -> [[UInt8]] {
        [Array("version".utf8), row.keyID.bytes, RecordProtection.bytes(row.version), row.kekID.bytes, RecordProtection.bytes(row.revision), row.body]
    }

    /// An alias row: its name, the key it names, its revision.
    static func alias(_ row: AliasRow) -> [[UInt8]] {
        [Array("alias".utf8), Array(row.name.utf8), row.keyID.bytes, RecordProtection.bytes(row.revision)]
    }

    /// A token row: its id, the token's hash, revision and record body.
    static func token(_ row: TokenRow) -> [[UInt8]] {
        [Array("token".utf8), row.id.bytes, row.hash, RecordProtection.bytes(row.revision), row.body]
    }

    /// An audit intake row: the node that wrote it, its key column, time and entry body.
    static func auditIntake(_ row: AuditIntakeRow) -> [[UInt8]] {
        [Array("audit-intake".utf8), Array(row.node.utf8), row.keyID?.bytes ?? [], RecordProtection.bytes(Int64(bitPattern: row.time.timeIntervalSince1970.bitPattern)), row.body]
    }
}
