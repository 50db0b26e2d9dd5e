import Foundation
import Keyward
import KeywardCrypto
import KeywardServiceTestSupport
import Testing

/// A key's last use, read from the audit log (AWS's GetKeyLastUsage).
@Suite("Key last use")
struct KeyLastUseTests {
    @Test("the newest successful use of the key's material is found with its request id; describes, rotations, refusals and other keys' uses are not uses; describe is required")
    func lastUseFromTheAuditLog() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service, owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["app/k"]), actor: owner).metadata.id.description
        let other = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        #expect(try await service.lastUse(key: id, actor: owner).operation == nil)
        let sealed = try await service.encrypt([1], key: id, actor: Caller.owner("t", context: AuditContext(requestID: "req-encrypt")))
        _ = try await service.decrypt(sealed.ciphertext, actor: Caller.owner("t", context: AuditContext(requestID: "req-decrypt")))
        // Not uses: a describe, a rotation, a refused decrypt, another key's encryption.
        _ = try await service.describe(key: id, actor: owner)
        _ = try await service.rotate(key: id, actor: owner)
        _ = try? await service.decrypt(sealed.ciphertext, context: ["wrong": "context"], actor: owner)
        _ = try await service.encrypt([2], key: other, actor: owner)
        let use = try await service.lastUse(key: "app/k", actor: owner)
        #expect(use.operation == "decrypt" && use.requestID == "req-decrypt" && use.time != nil, "\(use)")
        #expect(use.trackedSince.flatMap { since in use.time.map { since <= $0 } } == true, "tracking starts after the use it found: \(use)")
        // Narrowed to encryptions: the encrypt before it.
        #expect(try await service.lastUse(key: id, operations: [.encrypt], actor: owner).requestID == "req-encrypt")
        let stranger = Caller.principal("stranger", policy: AccessPolicy(rules: [try AccessPolicy.parseRule("encrypt:alias=app/*")]))
        guard case .accessDenied = await keywardError({ () async throws(KeywardError) in _ = try await service.lastUse(key: id, actor: stranger) }) else {
            Issue.record("a caller without describe read the key's last use"); return
        }
    }
}
