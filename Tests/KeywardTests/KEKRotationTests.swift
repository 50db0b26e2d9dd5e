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
