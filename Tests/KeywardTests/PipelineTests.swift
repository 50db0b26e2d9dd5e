import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import KeywardStorage
import KeywardTesting
import Testing

/// The one key pipeline: a cached key gets every check an uncached one gets, and authority
/// comes only from `Caller`'s three constructors.
@Suite("Key pipeline")
struct PipelineTests {
    /// A service over a fresh in-memory store, with a manual clock.
    static func service(_ store: InMemoryKeyStore = InMemoryKeyStore(), clock: ManualClock = ManualClock()) async throws -> KeyService {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // The root of trust reads its key when made; the file is not needed after that.
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
        return try await KeyService.initialize(store: store, root: KeyFileRootOfTrust(path: keyFile), actor: .owner("test"), clock: clock)
    }

    @Test("a cached key that expires refuses encryption on its next use")
    func cachedKeyExpires() async throws {
        let clock = ManualClock()
        let service = try await Self.service(clock: clock)
        let id = try await service.createKey(CreateKeyRequest(expiresAt: clock.now.addingTimeInterval(60)), actor: .owner("t")).metadata.id.description
        _ = try await service.encrypt([1], key: id, actor: .owner("t")) // cached, version unsealed
        clock.advance(by: 61)
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id, actor: .owner("t")) }
        guard case .notPermitted(let why)? = error else { Issue.record("expected notPermitted, got \(String(describing: error))"); return }
        #expect(why.contains("expired"))
        // Administration still works on the expired key.
        #expect(try await service.transition(key: id, .disable, actor: .owner("t")).metadata.state == .disabled)
    }

    @Test("a key cannot be created already expired")
    func createdExpiredRefused() async throws {
        let clock = ManualClock()
        let service = try await Self.service(clock: clock)
        for expiry in [clock.now, clock.now.addingTimeInterval(-86_400)] {
            let error = await keywardError { () async throws(KeywardError) in
                _ = try await service.createKey(CreateKeyRequest(expiresAt: expiry), actor: .owner("t"))
            }
            guard case .invalidArgument(let why)? = error else { Issue.record("expected invalidArgument, got \(String(describing: error))"); return }
            #expect(why.contains("not in the future"))
        }
    }

    @Test("a cached key whose rotation falls due is rotated before it encrypts again")
    func cachedKeyRotatesWhenDue() async throws {
        let clock = ManualClock()
        let service = try await Self.service(clock: clock)
        let id = try await service.createKey(CreateKeyRequest(rotationPeriodDays: 1), actor: .owner("t")).metadata.id.description
        #expect(try await service.encrypt([1], key: id, actor: .owner("t")).version == 1)
        clock.advance(by: 86_401)
        #expect(try await service.encrypt([1], key: id, actor: .owner("t")).version == 2)
        let rotation = try #require(try await service.auditTail(10).last { $0.event.operation == "rotate" })
        #expect(rotation.event.actor == SystemJob.periodicRotation.principal)
    }

    @Test("a principal refused on a cached key is refused and audited as denied, not served from the cache")
    func cachedKeyStillAuthorises() async throws {
        let service = try await Self.service()
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id
        _ = try await service.encrypt([1], key: id.description, actor: .owner("t")) // cached
        let signer = Caller.principal("signer", policy: AccessPolicy(rules: [AccessRule(operations: [.sign], keys: .key(id))]))
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.encrypt([1], key: id.description, actor: signer) }
        guard case .accessDenied? = error else { Issue.record("expected accessDenied, got \(String(describing: error))"); return }
        let entry = try #require(try await service.auditTail(1).last)
        #expect(entry.event.actor == "signer" && entry.event.outcome == "denied" && entry.event.operation == "encrypt")
    }

    @Test("a cached key disabled by a state change refuses at once")
    func cachedKeyStateChange() async throws {
        let service = try await Self.service()
        let id = try await service.createKey(CreateKeyRequest(spec: .hmacSHA256), actor: .owner("t")).metadata.id.description
        _ = try await service.mac([1], key: id, actor: .owner("t"))
        _ = try await service.transition(key: id, .disable, actor: .owner("t"))
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.mac([1], key: id, actor: .owner("t")) }
        guard case .wrongState(_, .disabled, .mac)? = error else { Issue.record("expected wrongState, got \(String(describing: error))"); return }
    }

    @Test("a principal whose policy grants every operation cannot take a backup of the store")
    func backupNeedsTheOwner() async throws {
        let service = try await Self.service()
        _ = try await service.createKey(CreateKeyRequest(), actor: .owner("t"))
        let everything = Caller.principal("mallory", policy: .everything)
        let error = await keywardError { () async throws(KeywardError) in
            let passphrase: Passphrase
            do throws(KeywardCryptoError) { passphrase = Passphrase(try SecretBytes(copying: Array("correct horse battery".utf8))) } catch { throw .crypto(error) }
            _ = try await service.createBackup(protection: .passphrase(passphrase, BackupTests.kdf), actor: everything)
        }
        guard case .accessDenied(principal: "mallory", _, _)? = error else { Issue.record("expected accessDenied, got \(String(describing: error))"); return }
        let entry = try #require(try await service.auditTail(1).last)
        #expect(entry.event.operation == "backup-create" && entry.event.outcome == "denied")
    }

    @Test("every audit entry names an operation of the closed set")
    func auditOperationsAreClosed() async throws {
        let service = try await Self.service()
        let id = try await service.createKey(CreateKeyRequest(aliases: ["a"]), actor: .owner("t")).metadata.id.description
        _ = try await service.encrypt([1], key: "a", actor: .owner("t"))
        try await service.setAlias("b", key: id, actor: .owner("t"))
        try await service.deleteAlias("b", actor: .owner("t"))
        _ = try await service.listKeys(limit: 10, actor: .owner("t"))
        let known = Set(ServiceOperation.allCases.map { AuditOperation.key($0).description} + [
            AuditOperation.listKeys, .setAlias, .deleteAlias, .importUnwrap, .issueToken, .revokeToken, .createBackup,
            .restoreKey, .initializeStore, .rotateKEK, .reserveEncryptions, .request].map(\.description))
        let names = try await service.auditTail(100).map(\.event.operation)
        #expect(names == ["init-store", "create", "reserve-encryptions", "encrypt", "set-alias", "delete-alias", "list"])
        #expect(names.allSatisfy(known.contains))
    }
}
