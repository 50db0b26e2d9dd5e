import Foundation
import Keyward
import KeywardServiceTestSupport
import KeywardCrypto
import Testing

@Suite("Lifecycle")
struct LifecycleTests {
    /// Puts a new key of `spec` into `state`.
    static func key(in state: KeyState, spec: KeySpec, _ fixture: StoreFixture) async throws -> String {
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(spec: spec, initialState: state == .preActive ? .preActive : .active), actor: .owner("t")).metadata.id.description
        switch state {
        case .preActive, .active: break
        case .disabled: _ = try await service.transition(key: id, .disable, actor: .owner("t"))
        case .deactivated: _ = try await service.transition(key: id, .deactivate, actor: .owner("t"))
        case .compromised: _ = try await service.transition(key: id, .markCompromised, actor: .owner("t"))
        case .pendingDestruction: _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 30, actor: .owner("t"))
        case .destroyed:
            _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
            fixture.manualClock.advance(by: 8 * 86_400)
            _ = try await service.describe(key: id, actor: .owner("t"))
            fixture.manualClock.advance(by: -8 * 86_400)
        }
        #expect(try await service.describe(key: id, actor: .owner("t")).metadata.state == state)
        return id
    }

    /// A spec whose purpose fits `operation`.
    static func specFor(_ operation: ServiceOperation) -> KeySpec {
        switch operation {
        case .sign, .verify: .ecdsaP256
        case .mac, .verifyMAC: .hmacSHA256
        case .deriveSharedSecret: .x25519
        case .decapsulate: .mlKEM768
        default: .aes256GCM
        }
    }

    /// Puts a fresh key for `operation` into `state` and performs the operation.
    static func perform(_ operation: ServiceOperation, state: KeyState, _ fixture: StoreFixture) async throws -> KeywardError?? {
        let service = fixture.service
        let spec = specFor(operation)
        // Material made while the key was active, for the "use" half of decrypt / verify.
        let id = try await key(in: .active, spec: spec, fixture)
        let ciphertext = spec == .aes256GCM ? try await service.encrypt([1], key: id, actor: .owner("t")).ciphertext : []
        let signature = spec == .ecdsaP256 ? try await service.sign(.message([1]), key: id, actor: .owner("t")).signature : []
        let tag = spec == .hmacSHA256 ? try await service.mac([1], key: id, actor: .owner("t")).tag : []
        let encapsulated = spec == .mlKEM768 ? try await service.publicKey(key: id, actor: .owner("t")).encapsulate().encapsulated : []
        // Move it to the state under test.
        let service2 = service
        switch state {
        case .preActive: return nil // pre-active keys are made fresh below
        case .active: break
        case .disabled: _ = try await service2.transition(key: id, .disable, actor: .owner("t"))
        case .deactivated: _ = try await service2.transition(key: id, .deactivate, actor: .owner("t"))
        case .compromised: _ = try await service2.transition(key: id, .markCompromised, actor: .owner("t"))
        case .pendingDestruction: _ = try await service2.transition(key: id, .scheduleDestruction, actor: .owner("t"))
        case .destroyed:
            _ = try await service2.transition(key: id, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
            fixture.manualClock.advance(by: 8 * 86_400)
        }
        defer { if state == .destroyed { fixture.manualClock.advance(by: -8 * 86_400) } }
        return .some(await call(operation, id: id, ciphertext: ciphertext, signature: signature, tag: tag, encapsulated: encapsulated, service))
    }

    static func call(_ operation: ServiceOperation, id: String, ciphertext: [UInt8], signature: [UInt8], tag: [UInt8], encapsulated: [UInt8], _ service: KeyService) async -> KeywardError? {
        let peer = try! KeyMaterial.generate(.x25519).publicKey()
        return await keywardError { () async throws(KeywardError) in
            switch operation {
            case .encrypt: _ = try await service.encrypt([1], key: id, actor: .owner("t"))
            case .decrypt: _ = try await service.decrypt(ciphertext, actor: .owner("t"))
            case .reEncrypt: _ = try await service.reEncrypt(ciphertext, destinationKey: id, actor: .owner("t"))
            case .generateDataKey: _ = try await service.generateDataKeyWithoutPlaintext(key: id, actor: .owner("t"))
            case .generateDataKeyPair: _ = try await service.generateDataKeyPair(key: id, pairSpec: .ed25519, actor: .owner("t"))
            case .sign: _ = try await service.sign(.message([1]), key: id, actor: .owner("t"))
            case .verify: _ = try await service.verify(signature, for: .message([1]), key: id, actor: .owner("t"))
            case .mac: _ = try await service.mac([1], key: id, actor: .owner("t"))
            case .verifyMAC: _ = try await service.verifyMAC(tag, for: [1], key: id, actor: .owner("t"))
            case .deriveSharedSecret: _ = try await service.deriveSharedSecret(key: id, peer: peer, actor: .owner("t"))
            case .decapsulate: _ = try await service.decapsulate(encapsulated, key: id, actor: .owner("t"))
            case .publicKey: _ = try await service.publicKey(key: id, actor: .owner("t"))
            case .describe: _ = try await service.describe(key: id, actor: .owner("t"))
            case .export: _ = try await service.exportKey(key: id, actor: .owner("t"))
            case .rotate: _ = try await service.rotate(key: id, actor: .owner("t"))
            case .update: _ = try await service.update(key: id, description: "x", actor: .owner("t"))
            case .importMaterial: _ = try await service.deleteImportedMaterial(key: id, actor: .owner("t"))
            case .manageGrants: _ = try await service.listGrants(key: id, actor: .owner("t"))
            case .setKeyPolicy: _ = try await service.setKeyPolicy(nil, key: id, actor: .owner("t"))
            case .enable, .disable, .deactivate, .scheduleDestruction, .cancelDestruction, .markCompromised:
                _ = try await service.transition(key: id, operation, actor: .owner("t"))
            case .destroy, .create, .random, .manageTokens, .readAudit, .verifyStore, .rotateKEK, .maintenance, .backup, .restore: break
            }
        }
    }

    @Test("every cell of the lifecycle table: the service allows exactly what the table allows", arguments: KeyState.allCases)
    func everyCell(state: KeyState) async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        for operation in ServiceOperation.allCases where operation != .destroy && !ServiceOperation.keyless.contains(operation) {
            let outcome: KeywardError?
            if state == .preActive {
                let id = try await Self.key(in: .preActive, spec: Self.specFor(operation), fixture)
                // A well-formed ciphertext naming the pre-active key, so decrypt reaches the state check.
                let header = CiphertextHeader(keyID: try KeyID(string: id), version: 1, algorithm: .aes256GCM).bytes
                let ciphertext = header + [UInt8](repeating: 0, count: 28)
                outcome = await Self.call(operation, id: id, ciphertext: ciphertext, signature: [1], tag: [1], encapsulated: [UInt8](repeating: 0, count: 1088), fixture.service)
            } else {
                outcome = try await Self.perform(operation, state: state, fixture) ?? nil
            }
            let allowed = LifecycleTable.allows(operation, in: state)
            let refusedByState: Bool = switch outcome {
            case .wrongState?, .keyDestroyed?: true
            default: false
            }
            if allowed {
                // Allowed cells may still fail for other reasons (export of a non-exportable
                // key), but never because of the state.
                #expect(!refusedByState, "\(operation.rawValue) in \(state.rawValue) should be allowed, got \(String(describing: outcome))")
            } else {
                #expect(refusedByState, "\(operation.rawValue) in \(state.rawValue) should be refused by state, got \(String(describing: outcome))")
            }
        }
    }

    @Test("destruction: 7 to 30 days, cancelable; afterwards old ciphertexts fail with key destroyed")
    func destruction() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let sealed = try await service.encrypt([1, 2], key: id, actor: .owner("t")).ciphertext
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 6, actor: .owner("t")) } != nil)
        #expect(await keywardError { () async throws(KeywardError) in _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 31, actor: .owner("t")) } != nil)
        let scheduled = try await service.transition(key: id, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
        #expect(scheduled.metadata.destructionDate == fixture.manualClock.now.addingTimeInterval(7 * 86_400))
        #expect(try await service.transition(key: id, .cancelDestruction, actor: .owner("t")).metadata.state == .disabled)
        _ = try await service.transition(key: id, .enable, actor: .owner("t"))
        #expect(try await service.decrypt(sealed, actor: .owner("t")).plaintext == [1, 2])
        _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 7, actor: .owner("t"))
        fixture.manualClock.advance(by: 7 * 86_400 + 1)
        let error = await keywardError { () async throws(KeywardError) in _ = try await service.decrypt(sealed, actor: .owner("t")) }
        guard case .keyDestroyed = error else { Issue.record("expected keyDestroyed, got \(String(describing: error))"); return }
        #expect(error?.description.contains("destroyed") == true)
        // The material is gone from the file: every version row's sealed blob is empty.
        let rows = try fixture.fetch("SELECT length(sealed) AS n FROM key_versions")
        #expect(rows.allSatisfy { ($0["n"] as Int64?) == 0 })
        // A fresh process sees the tombstone too.
        let reopened = try await fixture.reopen()
        guard case .keyDestroyed = await keywardError({ () async throws(KeywardError) in _ = try await reopened.decrypt(sealed, actor: .owner("t")) }) else {
            Issue.record("reopened store did not report key destroyed"); return
        }
    }

    @Test("a transition that requires a tag is refused, changing nothing, when the key as the transition reads it lacks the tag or has another value")
    func transitionRequiringATag() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(tags: ["deletable": "no"]), actor: .owner("t")).metadata.id.description
        let requirement = TagRequirement(name: "deletable", value: "yes", refusal: "the key is not deletable")
        for tags in [["deletable": "no"], [:]] {
            _ = try await service.update(key: id, tags: tags, actor: .owner("t"))
            let error = await keywardError { () async throws(KeywardError) in
                _ = try await service.transition(key: id, .scheduleDestruction, waitingDays: 7, requiring: requirement, actor: .owner("t"))
            }
            guard case .invalidArgument(let why) = error else { Issue.record("expected invalidArgument, got \(String(describing: error))"); return }
            #expect(why == "the key is not deletable")
            #expect(try await service.describe(key: id, actor: .owner("t")).metadata.state == .active)
        }
        _ = try await service.update(key: id, tagChanges: TagChanges(set: ["deletable": "yes"]), actor: .owner("t"))
        let scheduled = try await service.transition(key: id, .scheduleDestruction, waitingDays: 7, requiring: requirement, actor: .owner("t"))
        #expect(scheduled.metadata.state == .pendingDestruction)
    }

    @Test("rotation: new versions encrypt, old ones decrypt down to the minimum decryption version")
    func rotation() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(rotationPeriodDays: 30), actor: .owner("t")).metadata.id.description
        let v1 = try await service.encrypt([1], key: id, actor: .owner("t"))
        #expect(try await service.rotate(key: id, actor: .owner("t")).metadata.currentVersion == 2)
        let v2 = try await service.encrypt([2], key: id, actor: .owner("t"))
        #expect(v1.version == 1 && v2.version == 2)
        #expect(try await service.decrypt(v1.ciphertext, actor: .owner("t")).plaintext == [1])
        let moved = try await service.reEncrypt(v1.ciphertext, destinationKey: id, actor: .owner("t"))
        #expect(moved.version == 2)
        _ = try await service.update(key: id, minDecryptionVersion: 2, actor: .owner("t"))
        guard case .versionUnavailable = await keywardError({ () async throws(KeywardError) in _ = try await service.decrypt(v1.ciphertext, actor: .owner("t")) }) else {
            Issue.record("version 1 still decrypts below the minimum"); return
        }
        // The rotation period rotates automatically once due.
        fixture.manualClock.advance(by: 31 * 86_400)
        #expect(try await service.encrypt([3], key: id, actor: .owner("t")).version == 3)
    }

    @Test("a version rotates before its random-nonce encryption limit")
    func encryptionLimit() async throws {
        let fixture = try await StoreFixture.make(options: KeyService.Options(encryptionReservationBlock: 4, encryptionLimit: 8))
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        var versions: [UInt32] = []
        for _ in 0..<20 { versions.append(try await service.encrypt([0], key: id, actor: .owner("t")).version) }
        #expect(versions.prefix(8).allSatisfy { $0 == 1 })
        #expect(versions[8] == 2)
        #expect(Set(versions).count >= 3)
        // Reservations are persisted before use: a fresh process never reuses a version's budget.
        let reserved = try fixture.fetch("SELECT body FROM key_versions WHERE version = 1")[0]["body"] as Data?
        #expect(String(decoding: reserved ?? Data(), as: UTF8.self).contains("\"encryptionsReserved\":8"))
    }

    @Test("a batch counts every item against the version's encryption limit")
    func batchCountsEachItem() async throws {
        let fixture = try await StoreFixture.make(options: KeyService.Options(encryptionReservationBlock: 16, encryptionLimit: 32))
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let items = (0..<10).map { EncryptItem([UInt8($0)]) }
        var versions: [UInt32] = []
        for _ in 0..<4 {
            let results = try await service.encryptBatch(items, key: id, actor: .owner("t"))
            versions.append(try results[0].get().version)
        }
        // 30 items fit under the limit of 32; the fourth batch of 10 needs a new version.
        #expect(versions == [1, 1, 1, 2])
        let tooMany = (0..<17).map { EncryptItem([UInt8($0)]) }
        guard case .invalidArgument = await keywardError({ () async throws(KeywardError) in _ = try await service.encryptBatch(tooMany, key: id, actor: .owner("t")) }) else {
            Issue.record("a batch larger than a reservation block was accepted"); return
        }
    }

    @Test("the next reservation block is written before the current one runs out, and nothing reserved is skipped")
    func reservationAhead() async throws {
        let fixture = try await StoreFixture.make(options: KeyService.Options(encryptionReservationBlock: 8, encryptionLimit: 1_000))
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        func stored() throws -> String {
            let body = try fixture.fetch("SELECT body FROM key_versions WHERE version = 1")[0]["body"] as Data?
            return String(decoding: body ?? Data(), as: UTF8.self)
        }
        func waitFor(_ text: String) async throws -> Bool {
            for _ in 0..<200 {
                if try stored().contains(text) { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        // 5 of 8 used: under half a block left, so the next block is reserved while 3 remain.
        for _ in 0..<5 { #expect(try await service.encrypt([0], key: id, actor: .owner("t")).version == 1) }
        #expect(try await waitFor("\"encryptionsReserved\":16"))
        // 16 encryptions reserve exactly 24: the remainder of each block is used, not skipped.
        for _ in 0..<11 { #expect(try await service.encrypt([0], key: id, actor: .owner("t")).version == 1) }
        #expect(try await waitFor("\"encryptionsReserved\":24"))
        try await Task.sleep(for: .milliseconds(100))
        #expect(try stored().contains("\"encryptionsReserved\":24"))
    }
}


@Suite("Concurrent maintenance")
struct ConcurrentMaintenanceTests {
    @Test("many callers arriving when a rotation is due all succeed, and the key rotates once")
    func concurrentDueRotation() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(rotationPeriodDays: 1), actor: .owner("t")).metadata.id.description
        _ = try await service.encrypt([1], key: id, actor: .owner("t"))
        fixture.manualClock.advance(by: 86_401)
        let versions = try await withThrowingTaskGroup(of: UInt32.self) { group in
            for _ in 0..<16 { group.addTask { try await service.encrypt([2], key: id, actor: .owner("t")).version } }
            var all: [UInt32] = []
            for try await version in group { all.append(version) }
            return all
        }
        #expect(versions.count == 16 && Set(versions) == [2])
        #expect(try await service.describe(key: id, actor: .owner("t")).metadata.currentVersion == 2)
    }

    @Test("attack: callers tagging one key at once never lose each other's tags, and none is told to retry: an update that collides reads the key again and reapplies itself")
    func concurrentTagChangesKeepEveryTag() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        let service = fixture.service
        let id = try await service.createKey(CreateKeyRequest(tags: ["kept": "yes", "gone": "soon"]), actor: .owner("t")).metadata.id.description
        let failures = await withTaskGroup(of: String?.self) { group in
            for index in 0..<24 {
                group.addTask {
                    do throws(KeywardError) {
                        _ = try await service.update(key: id, tagChanges: TagChanges(set: ["t\(index)": "v"], remove: index == 0 ? ["gone"] : []), actor: .owner("t"))
                        return nil
                    } catch {
                        return "t\(index): \(error)"
                    }
                }
            }
            var all: [String] = []
            for await failure in group { if let failure { all.append(failure) } }
            return all
        }
        #expect(failures.isEmpty, "\(failures)")
        let tags = try await service.describe(key: id, actor: .owner("t")).metadata.tags
        #expect(tags == Dictionary(uniqueKeysWithValues: (0..<24).map { ("t\($0)", "v") }).merging(["kept": "yes"]) { $1 }, "\(tags.keys.sorted())")
        #expect(TagChanges(set: ["a": "2", "c": "3"], remove: ["a", "b"]).applied(to: ["a": "1", "b": "1", "d": "4"]) == ["a": "2", "c": "3", "d": "4"])
    }
}
