import Foundation
import Keyward
import KeywardCrypto
import KeywardPostgres
import KeywardStorage
import Testing

@Suite("Moving a store between backends")
struct StoreCopyTests {
    /// The backend pairs to copy between on this machine.
    static var pairs: [(StoreBackend, StoreBackend)] {
        StoreBackend.available.count > 1 ? [(.sqlite, .postgres), (.postgres, .sqlite)] : [(.sqlite, .sqlite)]
    }

    @Test("a store copied to another backend opens with the same root, verifies, decrypts what the source encrypted, and keeps aliases, tags, states, tokens and the audit chain",
          arguments: pairs)
    func copyVerifies(_ from: StoreBackend, _ to: StoreBackend) async throws {
        let source = try await from.makeDatabase()
        defer { source.remove() }
        let target = try await to.makeDatabase()
        defer { target.remove() }
        let service = try await source.initialize()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["orders"], tags: ["team": "pay"]), actor: owner).metadata.id.description
        let sealed = try await service.encrypt(Array("keep me".utf8), key: "orders", context: ["a": "b"], actor: owner)
        _ = try await service.rotate(key: id, actor: owner)
        let signing = try await service.createKey(CreateKeyRequest(spec: .ed25519), actor: owner).metadata.id.description
        let signature = try await service.sign(.message(Array("m".utf8)), key: signing, actor: owner)
        _ = try await service.transition(key: signing, .disable, actor: owner)
        let token = try await service.issueToken(principal: "app", policy: .everything, lifetime: nil, actor: owner)
        let revoked = try await service.issueToken(principal: "old", policy: .everything, lifetime: nil, actor: owner)
        try await service.revokeToken(revoked.record.id, actor: owner)

        let counts = try await StoreCopy.copy(from: try await source.open(), to: try await target.open())
        #expect(counts.keys == 2 && counts.versions == 3 && counts.aliases == 1 && counts.tokens == 2)
        #expect(counts.auditEntries > 5 && counts.anchors > 0)

        try FileManager.default.copyItem(atPath: source.keyFile, toPath: target.keyFile)
        let copy = try await target.node()
        #expect(try await copy.verifyStore().isIntact)
        let audit = try await copy.verifyAudit()
        #expect(audit.isIntact && audit.entries == counts.auditEntries)
        #expect(try await copy.decrypt(sealed.ciphertext, context: ["a": "b"], actor: owner).plaintext == Array("keep me".utf8))
        #expect(try await copy.describe(key: "orders", actor: owner).metadata.tags == ["team": "pay"])
        #expect(try await copy.describe(key: signing, actor: owner).metadata.state == .disabled)
        #expect(try await copy.encrypt([1], key: id, actor: owner).version == 2)
        #expect(try await copy.authenticate(token.text).principal == "app")
        await #expect(throws: KeywardError.self) { _ = try await copy.authenticate(revoked.text) }
        _ = try await copy.transition(key: signing, .enable, actor: owner)
        #expect(try await copy.verify(signature.signature, for: .message(Array("m".utf8)), key: signing, actor: owner))
        // The copy goes on as a store of its own: new writes extend the copied chain.
        _ = try await copy.createKey(CreateKeyRequest(), actor: owner)
        #expect(try await copy.verifyAudit().isIntact)
    }

    @Test("a pruned store copies with its checkpoint: the copy's log starts after it and verifies", arguments: pairs)
    func prunedCopyVerifies(_ from: StoreBackend, _ to: StoreBackend) async throws {
        let source = try await from.makeDatabase()
        defer { source.remove() }
        let target = try await to.makeDatabase()
        defer { target.remove() }
        let service = try await source.initialize()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        let sealed = try await service.encrypt([7], key: id, actor: owner)
        let archive = source.directory.appendingPathComponent("archive").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        let through = try #require(try await service.pruneAudit(olderThan: Date().addingTimeInterval(60), archive: archive, actor: owner).through)
        _ = try await service.rotate(key: id, actor: owner)

        let counts = try await StoreCopy.copy(from: try await source.open(), to: try await target.open())
        try FileManager.default.copyItem(atPath: source.keyFile, toPath: target.keyFile)
        let copy = try await target.node()
        let audit = try await copy.verifyAudit()
        #expect(audit.isIntact && audit.entries == counts.auditEntries, "\(audit.problems)")
        #expect(try await target.open().auditCheckpoint()?.sequence == through)
        #expect(try await copy.decrypt(sealed.ciphertext, actor: owner).plaintext == [7])
        _ = try await copy.createKey(CreateKeyRequest(), actor: owner)
        #expect(try await copy.verifyStore().isIntact)
    }

    @Test("a copy into a store that already holds one is refused, and the target is left as it was", arguments: StoreBackend.available)
    func copyIntoNonEmptyRefused(_ backend: StoreBackend) async throws {
        let source = try await StoreBackend.sqlite.makeDatabase()
        defer { source.remove() }
        let target = try await backend.makeDatabase()
        defer { target.remove() }
        _ = try await source.initialize()
        let existing = try await target.initialize()
        _ = try await existing.createKey(CreateKeyRequest(), actor: .owner("t"))
        await #expect(throws: StorageError.self) { _ = try await StoreCopy.copy(from: try await source.open(), to: try await target.open()) }
        #expect(try await existing.verifyStore().isIntact)
        #expect(try await existing.listKeys(actor: .owner("t")).keys.count == 1)
    }
}
