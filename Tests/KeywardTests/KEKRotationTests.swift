import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import Testing

@Suite("KEK rotation")
struct KEKRotationTests {
    static func makeStore(_ directory: URL) async throws -> (InjectingStore, KeyService, String, [EncryptResult]) {
        let keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
        let store = InjectingStore(try SQLiteKeyStore(path: directory.appendingPathComponent("s.db").path))
        let service = try await KeyService.initialize(store: store, root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        var sealed: [EncryptResult] = []
        for index in 0..<5 {
            let key = try await service.createKey(CreateKeyRequest(aliases: ["k\(index)"]), actor: .owner("t")).metadata.id.description
            sealed.append(try await service.encrypt([UInt8(index)], key: key, actor: .owner("t")))
            _ = try await service.rotate(key: key, actor: .owner("t"))
        }
        _ = try await service.createKey(CreateKeyRequest(spec: .ed25519), actor: .owner("t"))
        return (store, service, keyFile, sealed)
    }

    @Test("attack: a writer still holding the old KEK after another process rotated it cannot commit a row or an audit entry, and it is told why, not warned of tampering")
    func staleWriterFenced() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let owner = Caller.owner("t")
        let stale = fixture.service
        let key = try await stale.createKey(CreateKeyRequest(aliases: ["app"]), actor: owner).metadata.id.description
        _ = try await stale.encrypt([1], key: key, actor: owner)
        // Another process (its own connection and KeyService) rotates the KEK.
        let other = try await fixture.reopen()
        let keyFile = fixture.keyFile
        _ = try await other.rotateKEK(root: try KeyFileRootOfTrust(path: keyFile), actor: .owner("cli"))
        // Every kind of write the stale instance attempts before it notices is refused.
        let attempts: [(String, () async throws(KeywardError) -> Void)] = [
            ("create", { () async throws(KeywardError) in _ = try await stale.createKey(CreateKeyRequest(aliases: ["new"]), actor: owner) }),
            ("alias", { () async throws(KeywardError) in try await stale.setAlias("moved", key: key, actor: owner) }),
            ("update", { () async throws(KeywardError) in _ = try await stale.update(key: key, description: "changed", actor: owner) }),
            ("rotate", { () async throws(KeywardError) in _ = try await stale.rotate(key: key, actor: owner) }),
            ("token", { () async throws(KeywardError) in _ = try await stale.issueToken(principal: "p", policy: AccessPolicy(rules: []), lifetime: nil, actor: owner) }),
        ]
        for (name, attempt) in attempts {
            let error = await keywardError(attempt)
            #expect(error != nil, "\(name) went through under the retired KEK")
            if case .integrityFailure(let why)? = error { Issue.record("\(name): a false tamper alarm: \(why)") }
        }
        // Nothing landed: the rotated store verifies clean and holds none of it.
        let fresh = try await fixture.reopen()
        #expect(try await fresh.verifyStore().isIntact)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await fresh.describe(key: "new", actor: owner) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await fresh.describe(key: "moved", actor: owner) } != nil)
        #expect(try await fresh.describe(key: key, actor: owner).metadata.currentVersion == 1)
    }

    @Test("every record is re-sealed under the new KEK; old ciphertexts still decrypt and the store verifies")
    func rotation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-kek-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (store, service, keyFile, sealed) = try await Self.makeStore(directory)
        let oldKEK = service.header.activeKEK
        let token = try await service.issueToken(principal: "app", policy: .everything, lifetime: nil, actor: .owner("t"))
        let rotated = try await service.rotateKEK(root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        #expect(try await rotated.authenticate(token.text).principal == "app")
        #expect(rotated.header.activeKEK != oldKEK)
        #expect(try await store.keks().map(\.id) == [rotated.header.activeKEK])
        let reopened = try await KeyService.open(store: store, root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        for (index, result) in sealed.enumerated() {
            #expect(try await reopened.decrypt(result.ciphertext, actor: .owner("t")).plaintext == [UInt8(index)])
        }
        let report = try await reopened.verifyStore()
        #expect(report.isIntact, "\(report.problems) \(report.audit.problems)")
        #expect(try await reopened.auditTail(20).contains { $0.event.operation == "kek-rotate" && $0.event.outcome == "ok" })
    }

    @Test("a crash in the middle of the rewrite leaves the store as it was, usable with the old KEK")
    func crashMidway() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-kek-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (store, service, keyFile, sealed) = try await Self.makeStore(directory)
        let oldKEK = service.header.activeKEK
        store.failRewriteAfter = 4
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.rotateKEK(root: try KeyFileRootOfTrust(path: keyFile), actor: .owner("t")) }
        #expect(error != nil)
        store.failRewriteAfter = nil
        let reopened = try await KeyService.open(store: store, root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        #expect(reopened.header.activeKEK == oldKEK)
        #expect(try await store.keks().map(\.id) == [oldKEK])
        for (index, result) in sealed.enumerated() {
            #expect(try await reopened.decrypt(result.ciphertext, actor: .owner("t")).plaintext == [UInt8(index)])
        }
        #expect(try await reopened.verifyStore().isIntact)
    }
}
