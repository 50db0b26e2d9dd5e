import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import KeywardTesting
import Testing

/// `KeywardTesting.InMemoryKeyStore` keeps the `KeyStore` contract, so the core behaves on it
/// as on SQLite, and an attacker's edits to its rows are caught the same way.
@Suite("In-memory store")
struct InMemoryKeyStoreTests {
    @Test("the key service creates, uses, rotates and verifies keys on the in-memory store")
    func serviceRoundTrip() async throws {
        let store = InMemoryKeyStore()
        let service = try await PipelineTests.service(store)
        let id = try await service.createKey(CreateKeyRequest(aliases: ["orders"]), actor: .owner("t")).metadata.id.description
        let sealed = try await service.encrypt(Array("hello".utf8), key: "orders", context: ["tenant": "a"], actor: .owner("t"))
        _ = try await service.rotate(key: id, actor: .owner("t"))
        #expect(try await service.encrypt([1], key: id, actor: .owner("t")).version == 2)
        #expect(try await service.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: .owner("t")).plaintext == Array("hello".utf8))
        #expect(try await service.verifyStore().isIntact)
    }

    @Test("a key row edited in the store is refused by its MAC")
    func tamperedRowRefused() async throws {
        let store = InMemoryKeyStore()
        let service = try await PipelineTests.service(store)
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id
        store.mutate { contents in contents.keys[id]!.body[contents.keys[id]!.body.count / 2] ^= 1 }
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.describe(key: id.description, actor: .owner("t")) }
        guard case .integrityFailure? = error else { Issue.record("expected integrityFailure, got \(String(describing: error))"); return }
    }

    @Test("stale revisions, duplicate versions, taken aliases and audit gaps are conflicts")
    func contract() async throws {
        let store = InMemoryKeyStore()
        let id = KeyID()
        let key = KeyRow(id: id, body: [1], revision: 1, mac: [], spec: "AES-256-GCM", state: "active", createdAt: Date(), tags: [:])
        let version = VersionRow(keyID: id, version: 1, kekID: KeyID(), sealed: [], body: [], revision: 1, mac: [])
        try await store.insertKey(key, firstVersion: version, aliases: [AliasRow(name: "a", keyID: id, revision: 1, mac: [])])
        await #expect(throws: StorageError.self) { try await store.updateKey(key, expectedRevision: 7) }
        var next = key
        next.revision = 2
        await #expect(throws: StorageError.self) { try await store.insertVersion(version, key: next, expectedRevision: 1) }
        #expect(try await store.key(id)?.revision == 1) // the failed insert changed nothing
        await #expect(throws: StorageError.self) {
            try await store.insertKey(KeyRow(id: KeyID(), body: [], revision: 1, mac: [], spec: "", state: "", createdAt: Date(), tags: [:]),
                                      firstVersion: nil, aliases: [AliasRow(name: "a", keyID: id, revision: 1, mac: [])])
        }
        let entry = AuditRow(sequence: 2, body: [], previousHash: [], hash: [], mac: [], keyID: nil, time: Date())
        await #expect(throws: StorageError.self) { try await store.appendAudit([entry]) }
        #expect(try await store.auditHead() == nil)
    }

    @Test("the KEK rotates on the in-memory store and the keys still work")
    func kekRotation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-mem-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
        let store = InMemoryKeyStore()
        let service = try await KeyService.initialize(store: store, root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let sealed = try await service.encrypt([9], key: id, actor: .owner("t"))
        let rotated = try await service.rotateKEK(root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        #expect(try await rotated.decrypt(sealed.ciphertext, actor: .owner("t")).plaintext == [9])
        #expect(try await store.keks().count == 1)
    }
}
