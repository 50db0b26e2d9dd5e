import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import KeywardTestSupport
import Testing

/// Single-bit flips over every protected column of every kind of stored record, over
/// ciphertexts and over backup bundles: each one is refused (when the store opens, by
/// `verifyStore`, by decryption or by the bundle's check), and nothing else is harmed.
///
/// `KEYWARD_TAMPER_FLIPS` sets the total (default 500: 300 in stored records, 100 in
/// ciphertexts, 100 in bundles; the hardening run asks for 10,000, split 60/20/20).
@Suite("Tamper sweep over stored records")
struct TamperSweepTests {
    /// The total number of flips, split 60/20/20 over stored records, ciphertexts and bundles.
    static let total = Int(ProcessInfo.processInfo.environment["KEYWARD_TAMPER_FLIPS"] ?? "").map { max($0, 5) } ?? 500

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

    @Test("attack: single-bit flips over header, key, version, alias, token, revision-index and audit rows are each detected")
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
        let count = Self.total * 6 / 10
        while flips < count {
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
            do {
                try fixture.tamperWithoutForeignKeys("UPDATE \(target.table) SET \(column) = ? WHERE \(target.rowKey) = ?", [flipped, key])
            } catch {
                continue  // the flip collides with another row's unique key: SQLite refuses it, nothing changed
            }
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

    @Test("attack: single-bit flips in AES-GCM and ChaCha20-Poly1305 ciphertexts are refused, and every other ciphertext still decrypts")
    func ciphertextSweep() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        let service = fixture.service
        var sealed: [(ciphertext: [UInt8], plaintext: [UInt8], context: EncryptionContext)] = []
        for spec in [KeySpec.aes256GCM, .chaCha20Poly1305] {
            let key = try await service.createKey(CreateKeyRequest(spec: spec), actor: owner).metadata.id.description
            for length in [0, 1, 64, 700] {
                let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let context: EncryptionContext = ["tenant": "t\(length)"]
                sealed.append((try await service.encrypt(plaintext, key: key, context: context, actor: owner).ciphertext, plaintext, context))
            }
        }
        var random = SplitMix(seed: 20261205)
        let count = Self.total / 5
        var accepted: [String] = []
        for flip in 0..<count {
            let target = sealed[Int(random.next() % UInt64(sealed.count))]
            var bytes = target.ciphertext
            let index = Int(random.next() % UInt64(bytes.count))
            bytes[index] ^= UInt8(1) << (random.next() % 8)
            let opened = await keywardError { () async throws(KeywardError) in
                _ = try await service.decrypt(bytes, context: target.context, actor: owner)
            }
            if opened == nil { accepted.append("flip \(flip): byte \(index) of a \(bytes.count)-byte ciphertext") }
        }
        #expect(accepted.isEmpty, "\(accepted.prefix(5))")
        // Nothing else was harmed: every untouched ciphertext decrypts, and the store is intact.
        for item in sealed {
            #expect(try await service.decrypt(item.ciphertext, context: item.context, actor: owner).plaintext == item.plaintext)
        }
        #expect(try await service.verifyStore().isIntact)
    }

    @Test("attack: single-bit flips anywhere in a backup bundle are refused when it is opened")
    func bundleSweep() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        for spec in [KeySpec.aes256GCM, .ed25519, .hmacSHA256] {
            _ = try await fixture.service.createKey(CreateKeyRequest(spec: spec, backupAllowed: true), actor: owner)
        }
        let identity = try KeyMaterial.generate(.x25519)
        let bytes = try await fixture.service.createBackup(protection: .recipient(try identity.publicKey()), actor: owner).bytes
        let signer = try await fixture.service.backupSigner(actor: owner)
        #expect(try KeyService.openBackup(bytes, identity: identity, signer: signer).keys.count == 3)
        var random = SplitMix(seed: 20261206)
        var accepted: [Int] = []
        for _ in 0..<(Self.total / 5) {
            var changed = bytes
            let index = Int(random.next() % UInt64(bytes.count))
            changed[index] ^= UInt8(1) << (random.next() % 8)
            if (try? KeyService.openBackup(changed, identity: identity, signer: signer)) != nil { accepted.append(index) }
        }
        #expect(accepted.isEmpty, "flips at bytes \(accepted.prefix(10)) of the bundle were accepted")
        #expect(try KeyService.openBackup(bytes, identity: identity, signer: signer).keys.count == 3)
    }
}
