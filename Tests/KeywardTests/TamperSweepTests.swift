import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import KeywardTestSupport
import Testing

/// Single-bit flips over every protected column of every kind of stored record: each one is
/// refused when the store opens or named by `verifyStore`, and the store is whole again once
/// the byte is put back.
@Suite("Tamper sweep over stored records")
struct TamperSweepTests {
    /// The protected columns of each table, and the key that picks one row.
    static let targets: [(table: String, rowKey: String, columns: [String])] = [
        ("store_header", "id", ["store_id", "root_parameters", "active_kek", "mac", "format_version"]),
        ("keys", "id", ["body", "revision", "mac"]),
        ("key_versions", "hex(key_id) || ':' || version", ["sealed", "body", "revision", "mac", "kek_id"]),
        ("aliases", "name", ["key_id", "revision", "mac"]),
        ("tokens", "id", ["hash", "body", "revision", "mac"]),
        ("anchored_revisions", "record", ["record", "revision", "deleted"]),
        ("audit", "sequence", ["body", "previous_hash", "hash", "mac"]),
    ]

    @Test("attack: 300 single-bit flips over header, key, version, alias, token, revision-index and audit rows are each detected")
    func sweep() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        let service = fixture.service
        let a = try await service.createKey(CreateKeyRequest(aliases: ["app/a"]), actor: owner).metadata.id
        let b = try await service.createKey(CreateKeyRequest(spec: .ed25519, aliases: ["app/b"]), actor: owner).metadata.id
        _ = try await service.rotate(key: a.description, actor: owner)
        _ = try await service.encrypt([1, 2, 3], key: "app/a", actor: owner)
        try await service.setAlias("app/c", key: b.description, actor: owner)
        try await service.deleteAlias("app/c", actor: owner)
        let kept = try await service.issueToken(principal: "p", policy: AccessPolicy(rules: []), lifetime: nil, actor: owner)
        let revoked = try await service.issueToken(principal: "q", policy: AccessPolicy(rules: []), lifetime: nil, actor: owner)
        try await service.revokeToken(revoked.record.id, actor: owner)
        _ = kept
        #expect(try await fixture.reopen().verifyStore().isIntact)

        var random = SplitMix(seed: 20261204)
        var flips = 0
        var perTable: [String: Int] = [:]
        while flips < 300 {
            let target = Self.targets[Int(random.next() % UInt64(Self.targets.count))]
            let column = target.columns[Int(random.next() % UInt64(target.columns.count))]
            let rows = try fixture.fetch("SELECT \(target.rowKey) AS k, \(column) AS v FROM \(target.table)")
            guard !rows.isEmpty else { continue }
            let row = rows[Int(random.next() % UInt64(rows.count))]
            let key: DatabaseValue = row["k"]
            let original: DatabaseValue = row["v"]
            let flipped: DatabaseValue
            switch original.storage {
            case .blob(let data) where !data.isEmpty:
                var bytes = [UInt8](data)
                let index = Int(random.next() % UInt64(bytes.count))
                bytes[index] ^= UInt8(1) << (random.next() % 8)
                flipped = Data(bytes).databaseValue
            case .int64(let value):
                flipped = (value ^ (Int64(1) << Int64(random.next() % 16))).databaseValue
            default:
                continue
            }
            try fixture.tamperWithoutForeignKeys("UPDATE \(target.table) SET \(column) = ? WHERE \(target.rowKey) = ?", [flipped, key])
            let detected: Bool
            do {
                let reopened = try await fixture.reopen()
                let report = try await reopened.verifyStore()
                detected = !report.isIntact
            } catch {
                detected = true
            }
            #expect(detected, "a flip in \(target.table).\(column) went unnoticed (flip \(flips))")
            try fixture.tamperWithoutForeignKeys("UPDATE \(target.table) SET \(column) = ? WHERE \(target.rowKey) = ?", [original, column == target.rowKey ? flipped : key])
            flips += 1
            perTable[target.table, default: 0] += 1
        }
        // Every kind of record was hit, and the store is whole again.
        #expect(Set(perTable.keys) == Set(Self.targets.map(\.table)), "\(perTable)")
        #expect(try await fixture.reopen().verifyStore().isIntact)
    }
}
