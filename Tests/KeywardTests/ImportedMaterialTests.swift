import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardTestSupport
import Testing

@Suite("Keys for imported material")
struct ImportedMaterialTests {
    static let owner = Caller.owner("t")

    /// `material` wrapped to a wrapping key issued for `key` under `scheme`, and that wrapping key.
    static func wrapped(_ material: borrowing SecretBytes, for key: String, scheme: ImportWrapping.Scheme, spec: KeySpec = .rsa2048OAEPSHA256,
                        _ service: KeyService, as caller: Caller = owner) async throws -> (blob: [UInt8], wrappingKey: String) {
        let wrapping = try await service.importParameters(key: key, wrappingSpec: spec, actor: caller)
        switch scheme {
        case .rsaAESKeyWrapSHA256:
            return (try ImportWrapping.wrap(material, to: wrapping.publicKey), wrapping.keyID.description)
        case .rsaOAEPSHA256:
            let raw = material.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            return (try wrapping.publicKey.encrypt(raw), wrapping.keyID.description)
        }
    }

    static func sealedLength(_ fixture: StoreFixture, _ id: KeyID) throws -> Int {
        let rows = try fixture.fetch("SELECT sealed FROM key_versions WHERE key_id = ?", [Data(id.bytes)])
        return rows.reduce(0) { $0 + (($1["sealed"] as Data?)?.count ?? 0) }
    }

    @Test("a key created for imported material is empty and pre-active until its material arrives, then works with exactly those bytes, and is never rotated nor given a rotation period")
    func emptyUntilImported() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let created = try await service.createKeyForImport(CreateKeyRequest(aliases: ["ext"]), actor: Self.owner)
        let id = created.metadata.id
        #expect(created.metadata.state == .preActive && created.metadata.awaitingMaterial == true && created.metadata.origin == "external")
        #expect(try Self.sealedLength(fixture, id) == 0)
        guard case .wrongState = await keywardError({ () async throws(KeywardError) in _ = try await service.encrypt([1], key: "ext", actor: Self.owner) }) else {
            Issue.record("an empty key encrypted"); return
        }
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.transition(key: "ext", .enable, actor: Self.owner) }) else {
            Issue.record("an empty key was enabled"); return
        }

        let material = try KeyMaterial.generate(.aes256GCM)
        let (blob, wrappingKey) = try await Self.wrapped(material.secret, for: "ext", scheme: .rsaOAEPSHA256, service)
        let imported = try await service.importMaterial(blob, key: "ext", wrappingKey: wrappingKey, scheme: .rsaOAEPSHA256, validTo: nil, actor: Self.owner)
        #expect(imported.metadata.state == .active && imported.metadata.awaitingMaterial == nil && imported.metadata.importedMaterialDigest != nil)
        let sealed = try await service.encrypt([1, 2, 3], key: "ext", actor: Self.owner)
        #expect(try material.open(sealed.ciphertext, keyID: id, version: 1) == [1, 2, 3])
        #expect(try Self.sealedLength(fixture, id) > 0)
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.rotate(key: "ext", actor: Self.owner) }) else {
            Issue.record("a key of imported material was rotated"); return
        }
        // Nor does it take a rotation period, which scheduled rotation would never honour; removing
        // one (none is set) is allowed.
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.update(key: "ext", rotationPeriodDays: .some(90), actor: Self.owner) }) else {
            Issue.record("a key of imported material took a rotation period"); return
        }
        let unchanged = try await service.update(key: "ext", rotationPeriodDays: .some(nil), actor: Self.owner)
        #expect(unchanged.metadata.rotationPeriodDays == nil && unchanged.metadata.nextRotationAt == nil)
        // A fresh process reads the imported key back.
        let reopened = try await fixture.reopen()
        #expect(try await reopened.decrypt(sealed.ciphertext, actor: Self.owner).plaintext == [1, 2, 3])
    }

    @Test("RSA material in PKCS#8, wrapped with RSA-AES key wrap to a 4096-bit wrapping key, imports and signs")
    func rsaImport() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        _ = try await service.createKeyForImport(CreateKeyRequest(spec: .rsa2048PSSSHA256, aliases: ["rsa"]), actor: Self.owner)
        let pkcs8Hex = try PythonOracle.run("""
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives import serialization
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            print(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).hex())
            """)
        let pkcs8 = try SecretBytes(copying: [UInt8](hexString: pkcs8Hex))
        let (blob, wrappingKey) = try await Self.wrapped(pkcs8, for: "rsa", scheme: .rsaAESKeyWrapSHA256, spec: .rsa4096OAEPSHA256, service)
        _ = try await service.importMaterial(blob, key: "rsa", wrappingKey: wrappingKey, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: Self.owner)
        let signature = try await service.sign(.message([9]), key: "rsa", actor: Self.owner).signature
        #expect(try await service.verify(signature, for: .message([9]), key: "rsa", actor: Self.owner))
        // Material of another spec is refused and leaves the key empty.
        _ = try await service.createKeyForImport(CreateKeyRequest(spec: .rsa2048PSSSHA256, aliases: ["rsa2"]), actor: Self.owner)
        let short = try SecretBytes(copying: [UInt8](repeating: 7, count: 32))
        let (bad, badWrapping) = try await Self.wrapped(short, for: "rsa2", scheme: .rsaAESKeyWrapSHA256, service)
        guard case .crypto(.invalidKeyMaterial) = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(bad, key: "rsa2", wrappingKey: badWrapping, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: Self.owner)
        }) else { Issue.record("32 bytes imported as an RSA key"); return }
        #expect(try await service.describe(key: "rsa2", actor: Self.owner).metadata.awaitingMaterial == true)
    }

    @Test("attack: a wrapping key serves only its key, its principal and one import; a key takes back only its own material")
    func wrappingKeyBindingAndSameMaterial() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let alice = Caller.principal("alice", policy: AccessPolicy(rules: [try AccessPolicy.parseRule("create,describe,encrypt,decrypt,import-material:alias=alice/*")]))
        let mallory = Caller.principal("mallory", policy: AccessPolicy(rules: [try AccessPolicy.parseRule("describe,import-material:alias=alice/*")]))
        _ = try await service.createKeyForImport(CreateKeyRequest(aliases: ["alice/a"]), actor: alice)
        _ = try await service.createKeyForImport(CreateKeyRequest(aliases: ["alice/b"]), actor: alice)
        let material = try KeyMaterial.generate(.aes256GCM)
        let (blob, wrappingKey) = try await Self.wrapped(material.secret, for: "alice/a", scheme: .rsaAESKeyWrapSHA256, service, as: alice)

        // Into another key, even one alice may import into: refused.
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(blob, key: "alice/b", wrappingKey: wrappingKey, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: alice)
        }) else { Issue.record("a wrapping key issued for one key imported into another"); return }
        // As the material of a new key (the bring-your-own-key path): refused.
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importWrappedKey(blob, wrappingKey: wrappingKey, request: CreateKeyRequest(aliases: ["alice/c"]), actor: alice)
        }) else { Issue.record("a wrapping key issued for an import into a key created a new key"); return }
        // By another principal allowed to import into the key: refused, its wrapping key is alice's.
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(blob, key: "alice/a", wrappingKey: wrappingKey, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: mallory)
        }) else { Issue.record("mallory used alice's wrapping key"); return }
        #expect(try await service.describe(key: "alice/a", actor: Self.owner).metadata.awaitingMaterial == true)

        // Alice's import works, once.
        _ = try await service.importMaterial(blob, key: "alice/a", wrappingKey: wrappingKey, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: alice)
        #expect(await keywardError { () async throws(KeywardError) in
            _ = try await service.importMaterial(blob, key: "alice/a", wrappingKey: wrappingKey, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: alice)
        } != nil, "a wrapping key served two imports")
        let sealed = try await service.encrypt([4, 2], key: "alice/a", actor: alice)

        // Deleting the material empties the key and removes the sealed bytes from the file.
        let id = try await service.describe(key: "alice/a", actor: Self.owner).metadata.id
        let emptied = try await service.deleteImportedMaterial(key: "alice/a", actor: alice)
        #expect(emptied.metadata.state == .preActive && emptied.metadata.awaitingMaterial == true)
        #expect(try Self.sealedLength(fixture, id) == 0)
        guard case .wrongState = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(sealed.ciphertext, actor: alice) }) else {
            Issue.record("an emptied key decrypted"); return
        }

        // Other material is refused: the key's old ciphertexts wait for their own material.
        let other = try KeyMaterial.generate(.aes256GCM)
        let (otherBlob, otherWrapping) = try await Self.wrapped(other.secret, for: "alice/a", scheme: .rsaAESKeyWrapSHA256, service, as: alice)
        guard case .crypto(.invalidKeyMaterial) = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(otherBlob, key: "alice/a", wrappingKey: otherWrapping, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: alice)
        }) else { Issue.record("a key took other material"); return }
        #expect(try await service.describe(key: "alice/a", actor: Self.owner).metadata.awaitingMaterial == true)

        // The same material comes back, and the old ciphertext opens again.
        let (again, againWrapping) = try await Self.wrapped(material.secret, for: "alice/a", scheme: .rsaOAEPSHA256, service, as: alice)
        _ = try await service.importMaterial(again, key: "alice/a", wrappingKey: againWrapping, scheme: .rsaOAEPSHA256, validTo: nil, actor: alice)
        #expect(try await service.decrypt(sealed.ciphertext, actor: alice).plaintext == [4, 2])

        // Keys with material of their own take no import.
        _ = try await service.createKey(CreateKeyRequest(aliases: ["alice/own"]), actor: alice)
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importParameters(key: "alice/own", wrappingSpec: .rsa2048OAEPSHA256, actor: alice)
        }) else { Issue.record("import parameters for a key with its own material"); return }
        guard case .notPermitted = await keywardError({ () async throws(KeywardError) in _ = try await service.deleteImportedMaterial(key: "alice/own", actor: alice) }) else {
            Issue.record("a generated key's material was deleted as imported"); return
        }
        // Every step is audited under its caller.
        let entries = try await service.auditTail(200).map(\.event)
        #expect(entries.contains { $0.operation == "import-material" && $0.actor == "mallory" && $0.outcome == "denied" })
        #expect(entries.contains { $0.operation == "import-material" && $0.actor == "alice" && $0.outcome == "ok" && ($0.detail ?? "").contains("deleted") })
    }

    @Test("a key that holds its material takes the same material again only to change its expiry, and refuses other material, changing nothing")
    func reimportIntoAKeyThatHoldsIt() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKeyForImport(CreateKeyRequest(aliases: ["held"]), actor: Self.owner).metadata.id
        let material = try KeyMaterial.generate(.aes256GCM)
        // Far ahead of the fixture's clock, whole seconds (as the metadata keeps it).
        let expiry = Date(timeIntervalSince1970: 4_000_000_000)
        let (blob, wrappingKey) = try await Self.wrapped(material.secret, for: "held", scheme: .rsaOAEPSHA256, service)
        _ = try await service.importMaterial(blob, key: "held", wrappingKey: wrappingKey, scheme: .rsaOAEPSHA256, validTo: expiry, actor: Self.owner)
        let sealed = try await service.encrypt([5], key: "held", actor: Self.owner)
        func versionRow() throws -> (sealed: Data?, revision: Int64?) {
            let row = try fixture.fetch("SELECT sealed, revision FROM key_versions WHERE key_id = ?", [Data(id.bytes)]).first
            return (row?["sealed"], row?["revision"])
        }
        let before = try versionRow()
        #expect(try await service.describe(key: "held", actor: Self.owner).metadata.expiresAt == expiry)

        // Other material into the key that holds its own: refused, nothing changes.
        let other = try KeyMaterial.generate(.aes256GCM)
        let (otherBlob, otherWrapping) = try await Self.wrapped(other.secret, for: "held", scheme: .rsaOAEPSHA256, service)
        guard case .crypto(.invalidKeyMaterial) = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(otherBlob, key: "held", wrappingKey: otherWrapping, scheme: .rsaOAEPSHA256, validTo: nil, actor: Self.owner)
        }) else { Issue.record("a key holding material took other material"); return }
        let refusedState = try await service.describe(key: "held", actor: Self.owner).metadata
        #expect(refusedState.expiresAt == expiry && refusedState.state == .active)
        #expect(try versionRow() == before, "a refused import touched the sealed material")

        // The same material again: only the expiry changes (here: removed); the sealed row stays.
        let (again, againWrapping) = try await Self.wrapped(material.secret, for: "held", scheme: .rsaAESKeyWrapSHA256, service)
        let reimported = try await service.importMaterial(again, key: "held", wrappingKey: againWrapping, scheme: .rsaAESKeyWrapSHA256, validTo: nil, actor: Self.owner)
        #expect(reimported.metadata.expiresAt == nil && reimported.metadata.state == .active && reimported.metadata.awaitingMaterial == nil)
        #expect(try versionRow() == before, "importing the same material again rewrote the sealed version")
        #expect(try await service.decrypt(sealed.ciphertext, actor: Self.owner).plaintext == [5])
    }

    @Test("imported material expires at its validTo: uses stop, the sweep deletes it, and the same material comes back")
    func expiry() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKeyForImport(CreateKeyRequest(spec: .hmacSHA256, aliases: ["mac"]), actor: Self.owner).metadata.id
        let material = try KeyMaterial.generate(.hmacSHA256)
        var (blob, wrappingKey) = try await Self.wrapped(material.secret, for: "mac", scheme: .rsaOAEPSHA256, service)
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in
            _ = try await service.importMaterial(blob, key: "mac", wrappingKey: wrappingKey, scheme: .rsaOAEPSHA256, validTo: fixture.manualClock.now.addingTimeInterval(-1), actor: Self.owner)
        }) else { Issue.record("a validTo in the past was accepted"); return }
        let imported = try await service.importMaterial(blob, key: "mac", wrappingKey: wrappingKey, scheme: .rsaOAEPSHA256,
                                                        validTo: fixture.manualClock.now.addingTimeInterval(3600), actor: Self.owner)
        #expect(imported.metadata.expiresAt != nil)
        let tag = try await service.mac([1], key: "mac", actor: Self.owner).tag
        fixture.manualClock.advance(by: 3601)
        let report = try await service.runMaintenance()
        #expect(report.failures.isEmpty, "\(report)")
        #expect(try await service.describe(key: "mac", actor: Self.owner).metadata.awaitingMaterial == true)
        #expect(try Self.sealedLength(fixture, id) == 0)
        guard case .wrongState = await keywardError({ () async throws(KeywardError) in _ = try await service.mac([1], key: "mac", actor: Self.owner) }) else {
            Issue.record("expired material was used"); return
        }
        (blob, wrappingKey) = try await Self.wrapped(material.secret, for: "mac", scheme: .rsaOAEPSHA256, service)
        _ = try await service.importMaterial(blob, key: "mac", wrappingKey: wrappingKey, scheme: .rsaOAEPSHA256, validTo: nil, actor: Self.owner)
        #expect(try await service.verifyMAC(tag, for: [1], key: "mac", actor: Self.owner))
        let entries = try await service.auditTail(100).map(\.event)
        #expect(entries.contains { $0.actor == SystemJob.importedMaterialExpiry.principal && ($0.detail ?? "").contains("expired") })
    }
}
