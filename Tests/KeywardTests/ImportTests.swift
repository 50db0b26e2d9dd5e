import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardTestSupport
import Testing

@Suite("Bring your own key")
struct ImportTests {
    @Test("material wrapped by Python cryptography (RSA-OAEP-SHA256 + AES-KWP) imports and works")
    func importFromPython() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let wrapping = try await service.createImportWrappingKey(actor: .owner("t"))
        let material = [UInt8](repeating: 0x5C, count: 32)
        let pem = try #require(wrapping.publicKey.pem)
        let wrappedHex = try PythonOracle.run("""
            from cryptography.hazmat.primitives import serialization, hashes
            from cryptography.hazmat.primitives.asymmetric import padding
            from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
            import os
            public = serialization.load_pem_public_key(b'''\(pem)''')
            ephemeral = os.urandom(32)
            encrypted = public.encrypt(ephemeral, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
            print((encrypted + aes_key_wrap_with_padding(ephemeral, bytes([0x5C] * 32))).hex())
            """)
        let wrapped = [UInt8](hexString: wrappedHex)
        let imported = try await service.importWrappedKey(wrapped, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(aliases: ["byok"]), actor: .owner("t"))
        #expect(imported.metadata.origin == "imported")
        // The store encrypts with exactly the imported bytes.
        let sealed = try await service.encrypt([1, 2, 3], key: "byok", actor: .owner("t"))
        let local = try KeyMaterial(spec: .aes256GCM, importing: material)
        #expect(try local.open(sealed.ciphertext, keyID: sealed.keyID, version: 1) == [1, 2, 3])
        // Imported material is not rotated by Keyward.
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.rotate(key: "byok", actor: .owner("t")) }) else {
            Issue.record("an imported key was rotated"); return
        }
    }

    @Test("an expired wrapping key, a key that is not a wrapping key, a tampered blob and the wrong spec are refused")
    func refusals() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let wrapping = try await service.createImportWrappingKey(hours: 1, actor: .owner("t"))
        let signing = try KeyMaterial.generate(.ed25519)
        var wrapped = try ImportWrapping.wrap(signing.secret, to: wrapping.publicKey)
        // Wrong spec for the material (32 bytes is not an RSA key).
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.importWrappedKey(wrapped, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(spec: .rsa2048PSSSHA256), actor: .owner("t")) } != nil)
        // Tampered blob.
        var tampered = wrapped
        tampered[tampered.count - 3] ^= 1
        guard case .crypto(.invalidCiphertext) = await keywardError({ () async throws(KeywardError) in _ = try await service.importWrappedKey(tampered, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t")) }) else {
            Issue.record("a tampered blob was accepted"); return
        }
        // A key that is not a wrapping key.
        let plain = try await service.createKey(CreateKeyRequest(spec: .rsa3072OAEPSHA256), actor: .owner("t"))
        let toPlain = try ImportWrapping.wrap(signing.secret, to: try await service.publicKey(key: plain.metadata.id.description, actor: .owner("t")))
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.importWrappedKey(toPlain, wrappingKey: plain.metadata.id.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t")) }) else {
            Issue.record("a non-wrapping key unwrapped an import"); return
        }
        // Works before expiry; an unused wrapping key past its expiry is refused.
        let imported = try await service.importWrappedKey(wrapped, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t"))
        #expect(try await service.publicKey(key: imported.metadata.id.description, actor: .owner("t")) == signing.publicKey())
        let unused = try await service.createImportWrappingKey(hours: 1, actor: .owner("t"))
        fixture.manualClock.advance(by: 3601)
        wrapped = try ImportWrapping.wrap(signing.secret, to: unused.publicKey)
        let late = await keywardError { () async throws(KeywardError) in _ = try await service.importWrappedKey(wrapped, wrappingKey: unused.keyID.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t")) }
        switch late {
        case .notPermitted(let why) where why.contains("expired"): break
        case .keyDestroyed: break
        default:
            Issue.record("an expired wrapping key was used: \(String(describing: late))"); return
        }
    }

    @Test("attack: a wrapping key serves only the principal it was issued to, only once, is not a tag anyone can set, and is destroyed at expiry")
    func wrappingKeyProvenance() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        func tenant(_ name: String) throws -> Caller {
            .principal(name, policy: AccessPolicy(rules: [try AccessPolicy.parseRule("create,describe,public-key:alias=\(name)/*")]))
        }
        let alice = try tenant("alice"), mallory = try tenant("mallory")
        let material = try KeyMaterial.generate(.aes256GCM)

        // Another tenant's wrapping key is refused.
        let alicesWrapping = try await service.createImportWrappingKey(hours: 1, actor: alice)
        let toAlice = try ImportWrapping.wrap(material.secret, to: alicesWrapping.publicKey)
        let stolen = await keywardError { () async throws(KeywardError) in
            _ = try await service.importWrappedKey(toAlice, wrappingKey: alicesWrapping.keyID.description, request: CreateKeyRequest(aliases: ["mallory/k"]), actor: mallory)
        }
        guard case .accessDenied = stolen else { Issue.record("mallory used alice's wrapping key: \(String(describing: stolen))"); return }

        // Alice's import works once; the wrapping key is then destroyed and refuses a second.
        _ = try await service.importWrappedKey(toAlice, wrappingKey: alicesWrapping.keyID.description, request: CreateKeyRequest(aliases: ["alice/k"]), actor: alice)
        let reused = await keywardError { () async throws(KeywardError) in
            _ = try await service.importWrappedKey(toAlice, wrappingKey: alicesWrapping.keyID.description, request: CreateKeyRequest(aliases: ["alice/k2"]), actor: alice)
        }
        #expect(reused != nil, "a wrapping key served two imports")
        #expect(try await service.describe(key: alicesWrapping.keyID.description, actor: .owner("t")).metadata.state == .destroyed)

        // A key that merely carries the old marker tag is not a wrapping key.
        let forged = try await service.createKey(CreateKeyRequest(spec: .rsa3072OAEPSHA256, tags: ["keyward:purpose": "import-wrapping"]), actor: .owner("t"))
        let toForged = try ImportWrapping.wrap(material.secret, to: try await service.publicKey(key: forged.metadata.id.description, actor: .owner("t")))
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importWrappedKey(toForged, wrappingKey: forged.metadata.id.description, request: CreateKeyRequest(), actor: .owner("t"))
        }) else { Issue.record("a tagged key served as a wrapping key"); return }

        // An unused wrapping key is destroyed at expiry by maintenance, material and all.
        let idle = try await service.createImportWrappingKey(hours: 1, actor: alice)
        fixture.manualClock.advance(by: 3601)
        let report = try await service.runMaintenance()
        #expect(report.destroyed >= 1, "\(report)")
        #expect(try await service.describe(key: idle.keyID.description, actor: .owner("t")).metadata.state == .destroyed)
        let rows = try fixture.fetch("SELECT sealed FROM key_versions WHERE key_id = ?", [Data(idle.keyID.bytes)])
        #expect(!rows.isEmpty && rows.allSatisfy { ($0["sealed"] as Data? ?? Data()).isEmpty })
    }
}

