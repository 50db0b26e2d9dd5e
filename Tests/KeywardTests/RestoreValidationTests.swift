import Foundation
@testable import Keyward
import KeywardCrypto
import KeywardStorage
import KeywardServiceTestSupport
import Testing

/// A bundle that decrypts is still input: each test builds opened contents with one bad record
/// (as a forger with the bundle key could) and shows the restore refused with nothing written.
@Suite("Restore validates every record first")
struct RestoreValidationTests {
    private static func header() -> BackupBundle.Header {
        BackupBundle.Header(protection: .passphrase, kdf: nil, wrappedKey: nil, sealedKey: nil, storeID: KeyID(), createdAt: Date(), keyCount: 0, bundleID: KeyID())
    }

    private static func metadata(_ id: KeyID = KeyID(), spec: KeySpec = .aes256GCM, state: KeyState = .active, versions: UInt32 = 1) -> KeyMetadata {
        KeyMetadata(id: id, spec: spec, state: state, createdAt: Date(), stateChangedAt: Date(), description: "", tags: [:], exportable: false,
                    backupAllowed: true, rotationPeriodDays: nil, nextRotationAt: nil, currentVersion: versions, minDecryptionVersion: 1,
                    destructionDate: nil, origin: "keyward", expiresAt: nil, importWrappingFor: nil)
    }

    private static func version(_ number: UInt32, _ spec: KeySpec? = .aes256GCM, state: String = "active") throws -> BackupVersion {
        BackupVersion(number: number, metadata: VersionMetadata(state: state, createdAt: Date(), encryptionsReserved: 0),
                      material: try spec.map { MaterialBox(try KeyMaterial.generate($0)) })
    }

    private static func key(_ metadata: KeyMetadata, aliases: [String] = [], versions: [BackupVersion]) -> BackupKey {
        BackupKey(metadata: metadata, aliases: aliases, versions: versions)
    }

    @Test("restore is one transaction: rows that fail on the last key leave the store empty; the whole restore then succeeds")
    func restoreIsAtomic() async throws {
        let source = try await StoreFixture.make()
        defer { source.remove() }
        let owner = Caller.owner("t")
        var ids: [KeyID] = []
        for index in 0..<3 {
            let id = try await source.service.createKey(CreateKeyRequest(aliases: ["app\(index)"]), actor: owner).metadata.id
            _ = try await source.service.rotate(key: id.description, actor: owner)
            ids.append(id)
        }
        let store = try SQLiteKeyStore(path: source.path)
        var rows: [RestoredKey] = []
        for id in ids {
            rows.append(RestoredKey(key: try #require(try await store.key(id)), versions: try await store.versions(id), aliases: try await store.aliases(of: id)))
        }
        // Into an empty store: two good keys, then the first again (its id and alias collide).
        let target = try await StoreFixture.make()
        defer { target.remove() }
        let targetStore = try SQLiteKeyStore(path: target.path)
        await #expect(throws: StorageError.self) { try await targetStore.restoreKeys([rows[0], rows[1], rows[0]]) }
        #expect(try await targetStore.keyCount() == 0)
        #expect(try await targetStore.aliases(after: nil, limit: 10).isEmpty)
        try await targetStore.restoreKeys(rows)
        #expect(try await targetStore.keyCount() == 3)
        #expect(try await targetStore.versions(ids[2]).count == 2)
        // A store that holds a key refuses a restore as a whole.
        await #expect(throws: StorageError.self) { try await targetStore.restoreKeys([rows[0]]) }
    }

    @Test("attack: duplicate ids, shared or invalid aliases, bad version lists, material of another spec, destroyed versions with material, wrapping keys: each refused, nothing restored")
    func forgedRecordsRefused() async throws {
        let shared = KeyID()
        var wrapping = Self.metadata()
        wrapping.importWrappingFor = "someone"
        var badMinimum = Self.metadata()
        badMinimum.minDecryptionVersion = 3
        var pending = Self.metadata(state: .pendingDestruction)
        pending.destructionDate = nil
        let forgeries: [(String, [BackupKey])] = [
            ("duplicate id", [Self.key(Self.metadata(shared), versions: [try Self.version(1)]), Self.key(Self.metadata(shared), versions: [try Self.version(1)])]),
            ("shared alias", [Self.key(Self.metadata(), aliases: ["app"], versions: [try Self.version(1)]),
                              Self.key(Self.metadata(), aliases: ["app"], versions: [try Self.version(1)])]),
            ("invalid alias", [Self.key(Self.metadata(), aliases: [""], versions: [try Self.version(1)])]),
            ("missing version", [Self.key(Self.metadata(versions: 2), versions: [try Self.version(2)])]),
            ("minimum version", [Self.key(badMinimum, versions: [try Self.version(1)])]),
            ("material of another spec", [Self.key(Self.metadata(), versions: [try Self.version(1, .hmacSHA256)])]),
            ("active without material", [Self.key(Self.metadata(), versions: [try Self.version(1, nil)])]),
            ("destroyed with material", [Self.key(Self.metadata(), versions: [try Self.version(1, .aes256GCM, state: "destroyed")])]),
            ("destroyed key with material", [Self.key(Self.metadata(state: .destroyed), versions: [try Self.version(1)])]),
            ("unknown version state", [Self.key(Self.metadata(), versions: [try Self.version(1, nil, state: "resurrected")])]),
            ("pending destruction without a date", [Self.key(pending, versions: [try Self.version(1)])]),
            ("import wrapping key", [Self.key(wrapping, versions: [try Self.version(1)])]),
        ]
        let target = try await StoreFixture.make()
        defer { target.remove() }
        for (name, keys) in forgeries {
            // A valid key first: it must not be written either.
            let contents = BackupContents(header: Self.header(), keys: [Self.key(Self.metadata(), aliases: ["first"], versions: [try Self.version(1)])] + keys)
            let error = await keywardError { () async throws(KeywardError) in _ = try await target.service.restore(contents, actor: .owner("t")) }
            guard case .integrityFailure(let message) = error else { Issue.record("\(name): \(String(describing: error))"); continue }
            #expect(message.contains("nothing was restored"), "\(name): \(message)")
            #expect(try await target.service.listKeys(actor: .owner("t")).keys.isEmpty, "\(name): a key was written")
        }
        // The same valid key alone restores.
        let valid = BackupContents(header: Self.header(), keys: [Self.key(Self.metadata(), aliases: ["first"], versions: [try Self.version(1)])])
        #expect(try await target.service.restore(valid, actor: .owner("t")) == 1)
    }
}
