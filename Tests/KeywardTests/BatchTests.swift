import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import Testing

@Suite("Batches")
struct BatchTests {
    @Test("a batch encrypt is one audit entry naming its size; every item decrypts, and a batch decrypt is one entry too")
    func oneAuditEntryPerBatch() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let items = (0..<50).map { EncryptItem(Array("item \($0)".utf8), context: ["n": "\($0)"]) }
        let sealed = try await service.encryptBatch(items, key: key, actor: .owner("batcher"))
        #expect(sealed.count == 50)
        let ciphertexts = try sealed.map { try $0.get().ciphertext }
        for (index, ciphertext) in ciphertexts.enumerated() {
            #expect(try await service.decrypt(ciphertext, context: ["n": "\(index)"], actor: .owner("t")).plaintext == Array("item \(index)".utf8))
        }
        let opened = try await service.decryptBatch(ciphertexts.enumerated().map { DecryptItem($1, context: ["n": "\($0)"]) }, key: key, actor: .owner("batcher"))
        #expect(try opened.map { try $0.get().plaintext } == items.map(\.plaintext))
        let entries = try await service.auditTail(200).filter { $0.event.actor == "batcher" }
        #expect(entries.map(\.event.operation) == ["encrypt", "decrypt"])
        #expect(entries.allSatisfy { $0.event.outcome == "ok" && $0.event.detail == "batch of 50 items, 0 failed" && $0.event.version == 1 })
    }

    @Test("an item's own fault fails that item only: altered, wrong context, another key's ciphertext, garbage; the entry counts and names the failures")
    func itemFailuresStayItems() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let other = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let good = try await service.encrypt([1, 2, 3], key: key, context: ["a": "b"], actor: .owner("t")).ciphertext
        var altered = good
        altered[altered.count - 1] ^= 1
        let foreign = try await service.encrypt([4], key: other, actor: .owner("t")).ciphertext
        let results = try await service.decryptBatch([
            DecryptItem(good, context: ["a": "b"]), DecryptItem(altered, context: ["a": "b"]), DecryptItem(good, context: ["a": "c"]),
            DecryptItem(foreign), DecryptItem([0, 1, 2]),
        ], key: key, actor: .owner("batcher"))
        #expect(try results[0].get().plaintext == [1, 2, 3])
        for index in 1..<5 {
            guard case .failure = results[index] else { Issue.record("item \(index) should have failed"); continue }
        }
        if case .failure(let error) = results[3] { #expect(error.description.contains("made under key")) }
        let entry = try #require(try await service.auditTail(1).first)
        #expect(entry.event.operation == "decrypt" && entry.event.outcome == "ok")
        #expect(entry.event.detail?.hasPrefix("batch of 5 items, 4 failed; first: ") == true)
    }

    @Test("what fails every item fails the call, audited as denied: a policy without the key, an unknown key, a disabled key, the wrong purpose; empty and oversized batches are refused")
    func wholeBatchRefusals() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id
        let signer = try await service.createKey(CreateKeyRequest(spec: .ed25519), actor: .owner("t")).metadata.id.description
        let narrow = Caller.principal("narrow", policy: AccessPolicy(rules: [AccessRule(operations: [.sign], keys: .key(key))]))
        let one = [EncryptItem([1])]
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.encryptBatch(one, key: key.description, actor: narrow) }) else {
            Issue.record("a policy without encrypt on the key should refuse the batch"); return
        }
        #expect(try await service.auditTail(1).first?.event.outcome == "denied")
        guard case .keyNotFound = await keywardError({ () async throws(KeywardError) in _ = try await service.encryptBatch(one, key: KeyID().description, actor: .owner("t")) }) else {
            Issue.record("an unknown key should refuse the batch"); return
        }
        _ = try await service.transition(key: key.description, .disable, actor: .owner("t"))
        guard case .wrongState = await keywardError({ () async throws(KeywardError) in _ = try await service.encryptBatch(one, key: key.description, actor: .owner("t")) }) else {
            Issue.record("a disabled key should refuse the batch"); return
        }
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.signBatch([SignItem(.message([1]))], key: key.description, actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encryptBatch([], key: signer, actor: .owner("t")) } == .invalidArgument("a batch holds 1 to 1000 items, not 0"))
        let tooMany = [SignItem](repeating: SignItem(.message([1])), count: KeyService.maximumBatchItems + 1)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.signBatch(tooMany, key: signer, actor: .owner("t")) } == .invalidArgument("a batch holds 1 to 1000 items, not 1001"))
        let signed = try await service.signBatch([SignItem(.message([1])), SignItem(.message([2]))], key: signer, actor: .owner("t"))
        #expect(signed.count == 2)
        for (result, message) in zip(signed, [[UInt8(1)], [2]]) {
            #expect(try await service.verify(try result.get().signature, for: .message(message), key: signer, actor: .owner("t")))
        }
    }
}
