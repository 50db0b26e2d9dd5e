import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import Testing

@Suite("KeyService")
struct KeyServiceTests {
    @Test("encrypt and decrypt through the service, across a reopen of the store")
    func roundTripAcrossReopen() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app/payments"], tags: ["team": "pay"]), actor: .owner("alice"))
        let sealed = try await fixture.service.encrypt(Array("4111 1111".utf8), key: "app/payments", context: ["order": "42"], actor: .owner("alice"))
        #expect(sealed.keyID == key.metadata.id && sealed.version == 1)
        let reopened = try await fixture.reopen()
        let opened = try await reopened.decrypt(sealed.ciphertext, context: ["order": "42"], actor: .owner("bob"))
        #expect(opened.plaintext == Array("4111 1111".utf8))
        let described = try await reopened.describe(key: key.metadata.id.description, actor: .owner("bob"))
        #expect(described.aliases == ["app/payments"] && described.metadata.tags == ["team": "pay"])
    }

    @Test("a key created with contextRequired refuses every encryption, decryption and data key without a context, in batches per item; only symmetric encryption keys take it, and it survives a reopen")
    func contextRequired() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(contextRequired: true), actor: owner).metadata.id.description
        func refusedForContext(_ body: () async throws -> Void) async {
            do {
                try await body()
                Issue.record("a use without a context was served")
            } catch {
                #expect("\(error)".contains("requires an encryption context"), "\(error)")
            }
        }
        await refusedForContext { _ = try await service.encrypt([1], key: id, actor: owner) }
        await refusedForContext { _ = try await service.generateDataKey(key: id, actor: owner) }
        let sealed = try await service.encrypt([1], key: id, context: ["tenant": "a"], actor: owner)
        #expect(try await service.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: owner).plaintext == [1])
        await refusedForContext { _ = try await service.decrypt(sealed.ciphertext, actor: owner) }
        let batch = try await service.encryptBatch([EncryptItem([1]), EncryptItem([2], context: ["tenant": "b"])], key: id, actor: owner)
        #expect((try? batch[0].get()) == nil && (try? batch[1].get()) != nil)
        let opened = try await service.decryptBatch([DecryptItem(sealed.ciphertext), DecryptItem(sealed.ciphertext, context: ["tenant": "a"])], key: id, actor: owner)
        #expect((try? opened[0].get()) == nil && (try? opened[1].get())?.plaintext == [1])
        await #expect(throws: KeywardError.self) { _ = try await service.createKey(CreateKeyRequest(spec: .ed25519, contextRequired: true), actor: owner) }
        #expect(try await fixture.reopen().describe(key: id, actor: owner).metadata.contextRequired == true)
        #expect(try await service.createKey(CreateKeyRequest(), actor: owner).metadata.contextRequired == nil)
    }

    @Test("a wrong key file or passphrase is refused and changes nothing")
    func wrongRootOfTrust() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("t"))
        let before = try fixture.fetch("SELECT count(*) AS n FROM audit")[0]["n"] as Int64?
        let otherFile = fixture.directory.appendingPathComponent("other.key").path
        try KeyFileRootOfTrust.generate(at: otherFile)
        let store = try SQLiteKeyStore(path: fixture.path)
        let error = await keywardError { () async throws(KeywardError) in
            _ = try await KeyService.open(store: store, root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: otherFile) })
        }
        guard case .rootOfTrustRejected = error else { Issue.record("expected rootOfTrustRejected, got \(String(describing: error))"); return }
        let after = try fixture.fetch("SELECT count(*) AS n FROM audit")[0]["n"] as Int64?
        #expect(before == after)
        // A key file readable by others is refused before use.
        chmod(otherFile, 0o644)
        let loose = await keywardError { () async throws(KeywardError) in _ = try KeyFileRootOfTrust(path: otherFile) }
        #expect(loose?.description.contains("0600") == true)
    }

    @Test("a passphrase store opens with the passphrase and refuses another")
    func passphraseStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-pp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("store.db").path
        let kdf = KDFParameters(algorithm: .argon2id(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1), salt: KDFParameters.randomSalt())
        let service = try await KeyService.initialize(
            store: try SQLiteKeyStore(path: path),
            root: PassphraseRootOfTrust(newStoreWith: SecretBytes(copying: Array("correct horse".utf8)), kdf: kdf), actor: .owner("t"))
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t"))
        let sealed = try await service.encrypt([1, 2, 3], key: key.metadata.id.description, actor: .owner("t"))
        func open(_ passphrase: String) async throws -> KeyService {
            let store = try SQLiteKeyStore(path: path)
            let secret = try SecretBytes(copying: Array(passphrase.utf8))
            return try await KeyService.open(store: store, root: { (header) throws(KeywardError) in
                try PassphraseRootOfTrust(passphrase: secret, storedParameters: header.rootParameters)
            })
        }
        let reopened = try await open("correct horse")
        #expect(try await reopened.decrypt(sealed.ciphertext, actor: .owner("t")).plaintext == [1, 2, 3])
        do {
            _ = try await open("wrong horse")
            Issue.record("a wrong passphrase opened the store")
        } catch let error as KeywardError {
            #expect(error == .rootOfTrustRejected("the passphrase is wrong"))
        }
    }

    @Test("unknown keys, bad aliases, wrong purposes and garbage ciphertexts are typed errors")
    func badInput() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let aes = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let hmac = try await service.createKey(CreateKeyRequest(spec: .hmacSHA256), actor: .owner("t")).metadata.id.description
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: "no-such-alias", actor: .owner("t")) } == .keyNotFound("no-such-alias"))
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: UUID().uuidString, actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: "bad alias!", actor: .owner("t")) } != nil)
        let wrongPurpose = await keywardError { () async throws(KeywardError) in _ = try await service.sign(.message([1]), key: aes, actor: .owner("t")) }
        #expect(wrongPurpose == .crypto(.wrongPurpose(spec: .aes256GCM, operation: .sign)))
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: hmac, actor: .owner("t")) } == .crypto(.wrongPurpose(spec: .hmacSHA256, operation: .encrypt)))
        for garbage in [[UInt8](), [1], [UInt8](repeating: 1, count: 60), [UInt8](repeating: 0xFF, count: 200)] {
            guard case .crypto(.invalidCiphertext) = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(garbage, actor: .owner("t")) }) else {
                Issue.record("garbage of \(garbage.count) bytes was not invalidCiphertext")
                continue
            }
        }
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([UInt8](repeating: 0, count: KeyService.maximumPlaintextBytes + 1), key: aes, actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.random(count: 0, actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.createKey(CreateKeyRequest(spec: .ed25519, exportable: true), actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.createKey(CreateKeyRequest(rotationPeriodDays: 0), actor: .owner("t")) } != nil)
        // A ciphertext of another key cannot be opened as this key's.
        let sealed = try await service.encrypt([7], key: aes, actor: .owner("t"))
        let other = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(sealed.ciphertext, expectedKey: other, actor: .owner("t")) } != nil)
    }

    @Test("every operation works on a key of its purpose")
    func operationsByPurpose() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let aes = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let dataKey = try await service.generateDataKey(key: aes, context: ["file": "a"], actor: .owner("t"))
        let unsealed = try await service.decrypt(dataKey.ciphertext, context: ["file": "a"], actor: .owner("t")).plaintext
        let same = dataKey.plaintext.constantTimeEquals(unsealed)
        #expect(same)
        _ = consume dataKey
        let pair = try await service.generateDataKeyPair(key: aes, pairSpec: .ecdhP256, actor: .owner("t"))
        let privateKey = try await service.decrypt(pair.privateKeyCiphertext, actor: .owner("t")).plaintext
        #expect(try KeyMaterial(spec: .ecdhP256, importing: privateKey).publicKey() == pair.publicKey)
        let reencrypted = try await service.reEncrypt(try await service.encrypt([5], key: aes, actor: .owner("t")).ciphertext, destinationKey: aes, actor: .owner("t"))
        #expect(try await service.decrypt(reencrypted.ciphertext, actor: .owner("t")).plaintext == [5])

        let signer = try await service.createKey(CreateKeyRequest(spec: .ecdsaP256), actor: .owner("t")).metadata.id.description
        let signature = try await service.sign(.message([1, 2]), key: signer, actor: .owner("t"))
        #expect(try await service.verify(signature.signature, for: .message([1, 2]), key: signer, actor: .owner("t")))
        #expect(try await !service.verify(signature.signature, for: .message([1, 3]), key: signer, actor: .owner("t")))
        let publicKey = try await service.publicKey(key: signer, actor: .owner("t"))
        #expect(try publicKey.verify(signature.signature, for: .message([1, 2])))

        let mac = try await service.createKey(CreateKeyRequest(spec: .hmacSHA512), actor: .owner("t")).metadata.id.description
        let tag = try await service.mac([9], key: mac, actor: .owner("t"))
        #expect(try await service.verifyMAC(tag.tag, for: [9], key: mac, actor: .owner("t")))
        #expect(try await !service.verifyMAC(tag.tag, for: [8], key: mac, actor: .owner("t")))

        let agreement = try await service.createKey(CreateKeyRequest(spec: .x25519), actor: .owner("t")).metadata.id.description
        let peer = try KeyMaterial.generate(.x25519)
        let shared = try await service.deriveSharedSecret(key: agreement, peer: try peer.publicKey(), actor: .owner("t"))
        let theirs = try peer.sharedSecret(with: try await service.publicKey(key: agreement, actor: .owner("t")))
        let agreed = shared.constantTimeEquals(theirs)
        #expect(agreed)

        let kem = try await service.createKey(CreateKeyRequest(spec: .mlKEM768), actor: .owner("t")).metadata.id.description
        let encapsulation = try await service.publicKey(key: kem, actor: .owner("t")).encapsulate()
        let recovered = try await service.decapsulate(encapsulation.encapsulated, key: kem, actor: .owner("t"))
        let recoveredAlike = recovered.constantTimeEquals(encapsulation.sharedSecret)
        #expect(recoveredAlike)
        #expect(try await service.random(count: 32, actor: .owner("t")).count == 32)
    }

    @Test("listing pages through keys and filters by state, tag and alias")
    func listing() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        for index in 0..<25 {
            _ = try await service.createKey(CreateKeyRequest(aliases: ["k\(index)"], tags: ["parity": index % 2 == 0 ? "even" : "odd"]), actor: .owner("t"))
        }
        var seen: [KeyID] = []
        var cursor: KeyID? = nil
        repeat {
            let page = try await service.listKeys(after: cursor, limit: 10, actor: .owner("t"))
            seen += page.keys.map(\.metadata.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen.count == 25 && Set(seen).count == 25 && seen == seen.sorted())
        #expect(try await service.listKeys(tag: ("parity", "even"), limit: 100, actor: .owner("t")).keys.count == 13)
        #expect(try await service.listKeys(alias: "k7", limit: 100, actor: .owner("t")).keys.first?.aliases == ["k7"])
        _ = try await service.transition(key: "k3", .disable, actor: .owner("t"))
        #expect(try await service.listKeys(state: .disabled, limit: 100, actor: .owner("t")).keys.map(\.aliases) == [["k3"]])
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.listKeys(limit: 0, actor: .owner("t")) } != nil)
    }
}


@Suite("Concurrent key creation")
struct ConcurrentCreationTests {
    @Test("creates share transactions, yet a taken alias fails only its own create")
    func aliasConflictIsolated() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    let alias = index % 4 == 0 ? "shared" : "own-\(index)"
                    return (try? await service.createKey(CreateKeyRequest(aliases: [alias]), actor: .owner("t"))) != nil
                }
            }
            var results: [Bool] = []
            for await result in group { results.append(result) }
            return results
        }
        #expect(outcomes.filter { $0 }.count == 31)
        #expect(try await service.listKeys(limit: 100, actor: .owner("t")).keys.count == 31)
        #expect(try await service.listKeys(alias: "shared", limit: 10, actor: .owner("t")).keys.count == 1)
        #expect(try await service.verifyStore().isIntact)
    }
}
