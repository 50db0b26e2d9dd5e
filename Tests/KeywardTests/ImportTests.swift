import Foundation
import Keyward
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
        // Works before expiry, refused after.
        let imported = try await service.importWrappedKey(wrapped, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t"))
        #expect(try await service.publicKey(key: imported.metadata.id.description, actor: .owner("t")) == signing.publicKey())
        fixture.manualClock.advance(by: 3601)
        wrapped = try ImportWrapping.wrap(signing.secret, to: wrapping.publicKey)
        guard case .notPermitted(let why) = await keywardError({ () async throws(KeywardError) in _ = try await service.importWrappedKey(wrapped, wrappingKey: wrapping.keyID.description, request: CreateKeyRequest(spec: .ed25519), actor: .owner("t")) }), why.contains("expired") else {
            Issue.record("an expired wrapping key was used"); return
        }
    }
}

