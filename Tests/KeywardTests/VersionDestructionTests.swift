import Foundation
import GRDB
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// Destroying a key's old versions (`KeyService.destroyVersions`, Transit's trim): the material
/// is gone from the store, their ciphertexts are refused, newer versions go on working, and only
/// versions the key already refuses may go.
@Suite("Destroying old versions")
struct VersionDestructionTests {
    @Test("versions below the oldest kept lose their material (tombstones in the store), their ciphertexts are refused, newer ones still decrypt, and the store verifies")
    func oldVersionsDestroyed() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id
        var sealed: [EncryptResult] = [try await service.encrypt([1], key: id.description, actor: owner)]
        for number in 2...4 {
            _ = try await service.rotate(key: id.description, actor: owner)
            sealed.append(try await service.encrypt([UInt8(number)], key: id.description, actor: owner))
        }
        // Versions the key still decrypts with may not go.
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in _ = try await service.destroyVersions(key: id.description, below: 3, actor: owner) }) else {
            Issue.record("versions the key still decrypts with were destroyed"); return
        }
        #expect(try await service.decrypt(sealed[0].ciphertext, actor: owner).plaintext == [1])
        _ = try await service.update(key: id.description, minDecryptionVersion: 3, actor: owner)
        let trimmed = try await service.destroyVersions(key: id.description, below: 3, actor: owner)
        #expect(trimmed.metadata.minAvailableVersion == 3 && trimmed.metadata.currentVersion == 4)
        // The material is gone from the store itself, not just refused.
        let rows = try fixture.fetch("SELECT version, length(sealed) AS size FROM key_versions WHERE key_id = ? ORDER BY version", [Data(id.bytes)])
        let sizes = rows.map { (Int($0["version"] as Int64), $0["size"] as Int64? ?? 0) }
        #expect(sizes.count == 4 && sizes.allSatisfy { $0.0 < 3 ? $0.1 == 0 : $0.1 > 0 }, "\(sizes)")
        for old in sealed.prefix(2) {
            let error = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(old.ciphertext, actor: owner) })
            #expect(error != nil, "a ciphertext of a destroyed version decrypted")
        }
        #expect(try await service.decrypt(sealed[2].ciphertext, actor: owner).plaintext == [3])
        #expect(try await service.decrypt(sealed[3].ciphertext, actor: owner).plaintext == [4])
        // A new process, nothing cached, sees the same.
        let reopened = try await fixture.reopen()
        #expect(await keywardError({ () async throws(KeywardError) in _ = try await reopened.decrypt(sealed[1].ciphertext, actor: owner) }) != nil)
        #expect(try await reopened.decrypt(sealed[2].ciphertext, actor: owner).plaintext == [3])
        #expect(try await service.verifyStore(actor: owner).isIntact)
        // The minimum decryption version cannot go back below what is left.
        guard case .invalidArgument(let message) = await keywardError({ () async throws(KeywardError) in
            _ = try await service.update(key: id.description, minDecryptionVersion: 2, actor: owner)
        }) else { Issue.record("the minimum decryption version went below the destroyed versions"); return }
        #expect(message.contains("destroyed"))
        // Again, or lower: nothing changes.
        #expect(try await service.destroyVersions(key: id.description, below: 2, actor: owner).metadata.minAvailableVersion == 3)
        // Above the minimum decryption version, or zero: refused.
        for below in [UInt32(0), 4] {
            guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in _ = try await service.destroyVersions(key: id.description, below: below, actor: owner) }) else {
                Issue.record("below \(below) was accepted"); return
            }
        }
    }

    @Test("attack: a caller granted everything on the key but destroy, and destroy only on other keys, cannot destroy its versions; the refusal is audited")
    func needsDestroy() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: owner).metadata.id.description
        _ = try await service.rotate(key: id, actor: owner)
        _ = try await service.update(key: id, minDecryptionVersion: 2, actor: owner)
        let rules = ["encrypt,decrypt,rotate,update,describe,schedule-destruction:alias=app/*", "destroy:alias=other/*"]
        let limited = Caller.principal("limited", policy: AccessPolicy(rules: try rules.map { rule throws(KeywardError) in try AccessPolicy.parseRule(rule) }))
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.destroyVersions(key: "app/k", below: 2, actor: limited) }) else {
            Issue.record("destroyed versions without the destroy permission"); return
        }
        #expect(try await service.describe(key: id, actor: owner).metadata.minAvailableVersion == nil)
        let denied = try await service.auditEntries(AuditQuery(limit: 100, operation: "destroy"), actor: owner).entries.map(\.event)
        #expect(denied.contains { $0.actor == "limited" && $0.outcome != "success" })
    }
}
