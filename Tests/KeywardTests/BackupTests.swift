import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import Testing

@Suite("Backup and restore")
struct BackupTests {
    static let kdf = KDFParameters(algorithm: .argon2id(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1), salt: [UInt8](repeating: 7, count: 16))

    struct Source {
        let fixture: StoreFixture
        let ciphertexts: [(EncryptResult, [UInt8])]
        let signerWithBackup: KeyID
        let signerWithout: KeyID
    }

    static func source() async throws -> Source {
        let fixture = try await StoreFixture.make()
        let service = fixture.service
        var ciphertexts: [(EncryptResult, [UInt8])] = []
        for index in 0..<4 {
            let key = try await service.createKey(CreateKeyRequest(aliases: ["app\(index)"], tags: ["n": "\(index)"]), actor: .owner("t")).metadata.id.description
            ciphertexts.append((try await service.encrypt([UInt8(index)], key: key, context: ["i": "\(index)"], actor: .owner("t")), [UInt8(index)]))
            _ = try await service.rotate(key: key, actor: .owner("t"))
            ciphertexts.append((try await service.encrypt([UInt8(index), 1], key: key, context: ["i": "\(index)"], actor: .owner("t")), [UInt8(index), 1]))
        }
        let with = try await service.createKey(CreateKeyRequest(spec: .ecdsaP256, backupAllowed: true), actor: .owner("t")).metadata.id
        let without = try await service.createKey(CreateKeyRequest(spec: .ecdsaP256), actor: .owner("t")).metadata.id
        return Source(fixture: fixture, ciphertexts: ciphertexts, signerWithBackup: with, signerWithout: without)
    }

    func expectRestored(_ contents: BackupContents, from source: Source) async throws {
        #expect(contents.keys.count == 5)
        #expect(contents.keys.contains { $0.metadata.id == source.signerWithBackup })
        #expect(!contents.keys.contains { $0.metadata.id == source.signerWithout })
        let target = try await StoreFixture.make()
        defer { target.remove() }
        #expect(try await target.service.restore(contents, actor: .owner("t")) == 5)
        for (result, plaintext) in source.ciphertexts {
            let index = plaintext[0]
            #expect(try await target.service.decrypt(result.ciphertext, context: ["i": "\(index)"], actor: .owner("t")).plaintext == plaintext)
        }
        #expect(try await target.service.describe(key: "app2", actor: .owner("t")).metadata.currentVersion == 2)
        let signature = try await source.fixture.service.sign(.message([1]), key: source.signerWithBackup.description, actor: .owner("t"))
        #expect(try await target.service.verify(signature.signature, for: .message([1]), key: source.signerWithBackup.description, actor: .owner("t")))
        #expect(try await target.service.verifyStore().isIntact)
        // A second restore into the now non-empty store is refused.
        #expect(await keywardError { () async throws(KeywardError) in _ = try await target.service.restore(contents, actor: .owner("t")) } != nil)
    }

    @Test("a passphrase backup restores into a new store; every old ciphertext decrypts")
    func passphraseRoundTrip() async throws {
        let source = try await Self.source()
        defer { source.fixture.remove() }
        let bundle = try await source.fixture.service.createBackup(protection: .passphrase(Passphrase(SecretBytes(copying: Array("backup pass".utf8))), Self.kdf), actor: .owner("t"))
        let contents = try KeyService.openBackup(bundle.bytes, passphrase: SecretBytes(copying: Array("backup pass".utf8)))
        try await expectRestored(contents, from: source)
        let wrong = wrongPassphraseError(bundle)
        guard case .backupRejected = wrong, wrong.description.hasPrefix("cannot open the backup: the backup passphrase is wrong") == true else {
            Issue.record("a wrong passphrase opened the backup, or was reported as another fault: \(String(describing: wrong))"); return
        }
    }

    @Test("attack: a backup header asking for 4 GiB × 64 lanes of Argon2 (or any cost past the caps) is refused before any derivation")
    func backupKDFCapped() async throws {
        let source = try await Self.source()
        defer { source.fixture.remove() }
        let bundle = try await source.fixture.service.createBackup(protection: .passphrase(Passphrase(SecretBytes(copying: Array("backup pass".utf8))), Self.kdf), actor: .owner("t"))
        let salt = [UInt8](repeating: 7, count: 16)
        let demands: [KDFParameters.Algorithm] = [
            .argon2id(memoryKiB: 4 * 1024 * 1024, iterations: 3, parallelism: 64),
            .argon2id(memoryKiB: 2 * 1024 * 1024, iterations: 3, parallelism: 4),
            .argon2id(memoryKiB: 64 * 1024, iterations: 1_000_000, parallelism: 4),
            .scrypt(cost: 1 << 24, blockSize: 8, parallelism: 1),
            .pbkdf2SHA256(iterations: 2_000_000_000),
        ]
        for demand in demands {
            var header = bundle.header
            header.kdf = KDFParameters(algorithm: demand, salt: salt)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .secondsSince1970
            let headerBytes = [UInt8](try encoder.encode(header))
            let original = bundle.bytes
            let oldLength = original[9..<13].reduce(0) { $0 << 8 | Int($1) }
            var forged = Array(original[0..<9])
            forged += [UInt8(headerBytes.count >> 24 & 0xFF), UInt8(headerBytes.count >> 16 & 0xFF), UInt8(headerBytes.count >> 8 & 0xFF), UInt8(headerBytes.count & 0xFF)]
            forged += headerBytes + original[(13 + oldLength)...]
            #expect(try BackupBundle(parsing: forged).header.kdf?.algorithm == demand)
            do {
                _ = try KeyService.openBackup(forged, passphrase: SecretBytes(copying: Array("backup pass".utf8)))
                Issue.record("a bundle demanding \(demand) was opened")
            } catch let error as KeywardError {
                #expect(error.description.contains("outside Keyward's bounds"), "\(demand): \(error.description)")
            }
        }
    }

    func wrongPassphraseError(_ bundle: BackupBundle) -> KeywardError {
        do {
            let wrong = try SecretBytes(copying: Array("wrong".utf8))
            _ = try KeyService.openBackup(bundle.bytes, passphrase: wrong)
            return .storeState("opened")
        } catch let error as KeywardError {
            return error
        } catch {
            return .storeState("\(error)")
        }
    }

    @Test("backups to X25519 and X-Wing recipients restore with the recipient's private key only", arguments: [KeySpec.x25519, .xWing])
    func recipientRoundTrip(spec: KeySpec) async throws {
        let source = try await Self.source()
        defer { source.fixture.remove() }
        let identity = try KeyMaterial.generate(spec)
        let bundle = try await source.fixture.service.createBackup(protection: .recipient(try identity.publicKey()), actor: .owner("t"))
        let signer = try await source.fixture.service.backupSigner(actor: .owner("t"))
        try await expectRestored(try KeyService.openBackup(bundle.bytes, identity: identity, signer: signer), from: source)
        let stranger = try KeyMaterial.generate(spec)
        do {
            _ = try KeyService.openBackup(bundle.bytes, identity: stranger, signer: signer)
            Issue.record("another identity opened the backup")
        } catch let error as KeywardError {
            guard case .backupRejected = error, error.description.hasPrefix("cannot open the backup: ") else { Issue.record("wrong error \(error)"); return }
        }
    }

    @Test("every single-byte change and every truncation of a bundle is detected")
    func tampering() async throws {
        let source = try await Self.source()
        defer { source.fixture.remove() }
        let identity = try KeyMaterial.generate(.x25519)
        let bytes = try await source.fixture.service.createBackup(protection: .recipient(try identity.publicKey()), actor: .owner("t")).bytes
        let signer = try await source.fixture.service.backupSigner(actor: .owner("t"))
        _ = try KeyService.openBackup(bytes, identity: identity, signer: signer)
        var undetected: [Int] = []
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 0x01
            if (try? KeyService.openBackup(changed, identity: identity, signer: signer)) != nil { undetected.append(index) }
        }
        #expect(undetected.isEmpty, "byte changes at \(undetected.prefix(10)) were not detected")
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 200)) {
            #expect((try? KeyService.openBackup(Array(bytes.prefix(length)), identity: identity, signer: signer)) == nil, "truncation to \(length) bytes was accepted")
        }
        #expect((try? KeyService.openBackup(Array("not a backup".utf8), identity: identity, signer: signer)) == nil)
    }

    @Test("attack: a bundle forged to the recipient's public key by another store, or stripped of its signature, is refused before it is opened")
    func forgedRecipientBundleRefused() async throws {
        let source = try await Self.source()
        defer { source.fixture.remove() }
        let identity = try KeyMaterial.generate(.x25519)
        let recipient = try identity.publicKey()
        let trusted = try await source.fixture.service.backupSigner(actor: .owner("t"))
        // The attacker knows only the recipient's public key: they fill a store of their own with
        // keys of their choosing (ids the victim's data might use) and seal a backup to it.
        let attacker = try await StoreFixture.make()
        defer { attacker.remove() }
        _ = try await attacker.service.createKey(CreateKeyRequest(aliases: ["app0"]), actor: .owner("evil"))
        let forged = try await attacker.service.createBackup(protection: .recipient(recipient), actor: .owner("evil"))
        #expect(forged.header.signer != nil)
        let error = Self.openError(forged.bytes, identity: identity, signer: trusted)
        guard case .integrityFailure(let why)? = error else { Issue.record("a forged bundle was not refused: \(String(describing: error))"); return }
        #expect(why.contains("not by the signer you named"), "\(why)")
        // Said of the backup, not of a store: the user's store is not what failed.
        #expect(error?.description.contains("store may have been tampered") == false, "\(String(describing: error))")
        // The genuine bundle with its signature stripped (and the header still naming the signer).
        let genuine = try await source.fixture.service.createBackup(protection: .recipient(recipient), actor: .owner("t"))
        let stripped = Array(genuine.bytes.dropLast(64))  // an Ed25519 signature is the last 64 bytes
        guard case .integrityFailure(let unsigned)? = Self.openError(stripped, identity: identity, signer: trusted) else {
            Issue.record("a bundle without its signature was not refused"); return
        }
        #expect(unsigned.contains("not signed"), "\(unsigned)")
        // And the genuine one opens, with the signer's key that never left the source store.
        #expect(try KeyService.openBackup(genuine.bytes, identity: identity, signer: trusted).keys.count == 5)
        let signerKey = try await source.fixture.service.describe(key: KeyService.backupSignerAlias, actor: .owner("t"))
        #expect(!signerKey.metadata.backupAllowed && signerKey.metadata.spec == .ed25519)
    }

    static func openError(_ bytes: [UInt8], identity: borrowing KeyMaterial, signer: PublicKey) -> KeywardError? {
        do {
            _ = try KeyService.openBackup(bytes, identity: identity, signer: signer)
            return nil
        } catch {
            return error
        }
    }
}
