import Foundation
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Alias resolution is cached with the keys: a busy alias costs no store read per use, and every
/// change to it is honoured, here at once and from another process once the store's generation
/// is taken up.
@Suite("Alias cache")
struct AliasCacheTests {
    @Test("a busy alias is read from the store once; a move, a removal and another process's move are honoured")
    func aliasesCachedAndInvalidated() async throws {
        let temporary = try TemporaryStore(label: "alias-cache")
        defer { temporary.remove() }
        let store = InjectingStore(try SQLiteKeyStore(path: temporary.path("store.db")))
        let service = try await KeyService.initialize(store: store, root: temporary.root(), actor: .owner("test"))
        let first = try await service.createKey(CreateKeyRequest(aliases: ["app/orders"]), actor: .owner("test")).metadata.id
        let second = try await service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id

        let before = store.aliasReads.load(ordering: .relaxed)
        for _ in 0..<20 { _ = try await service.encrypt(Array("x".utf8), key: "app/orders", actor: .owner("test")) }
        #expect(store.aliasReads.load(ordering: .relaxed) - before <= 1, "alias reads for 20 encryptions")
        #expect(try await service.resolve("app/orders") == first)

        // Moved here: the next use resolves to the new key, and a ciphertext says so.
        try await service.setAlias("app/orders", key: second.description, actor: .owner("test"))
        #expect(try await service.resolve("app/orders") == second)
        #expect(try await service.encrypt(Array("x".utf8), key: "app/orders", actor: .owner("test")).keyID == second)

        // Removed here: unknown at once.
        try await service.deleteAlias("app/orders", actor: .owner("test"))
        await #expect(throws: KeywardError.self) { try await service.resolve("app/orders") }

        // Moved by another process: honoured once this one takes up the store's generation (a
        // server's store watcher does that every 250 ms).
        try await service.setAlias("app/ledger", key: first.description, actor: .owner("test"))
        #expect(try await service.resolve("app/ledger") == first)
        let other = try await KeyService.open(store: try SQLiteKeyStore(path: temporary.path("store.db")),
                                              root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: temporary.keyFile) })
        try await other.setAlias("app/ledger", key: second.description, actor: .owner("other"))
        _ = try await service.refreshFromStore()
        #expect(try await service.resolve("app/ledger") == second)
    }
}
