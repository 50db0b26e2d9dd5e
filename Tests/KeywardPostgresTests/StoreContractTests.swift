import Foundation
import Keyward
import KeywardCrypto
import KeywardPostgres
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// The `KeyStore` contract and the key service on top of it, on each backend: what holds on the
/// embedded SQLite file must hold on PostgreSQL.
@Suite("Store contract on every backend")
struct StoreContractTests {
    @Test("the key service creates, uses, rotates, lists, aliases and verifies keys; a reopened store sees them all", arguments: StoreBackend.available)
    func serviceRoundTrip(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let service = try await database.initialize()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["orders"], tags: ["team": "pay"]), actor: owner).metadata.id.description
        let other = try await service.createKey(CreateKeyRequest(spec: .hmacSHA256), actor: owner).metadata.id.description
        let sealed = try await service.encrypt(Array("hello".utf8), key: "orders", context: ["tenant": "a"], actor: owner)
        _ = try await service.rotate(key: id, actor: owner)
        #expect(try await service.encrypt([1], key: id, actor: owner).version == 2)
        #expect(try await service.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: owner).plaintext == Array("hello".utf8))
        try await service.setAlias("billing", key: other, actor: owner)
        try await service.setAlias("billing", key: id, actor: owner)
        try await service.deleteAlias("orders", actor: owner)
        _ = try await service.transition(key: other, .disable, actor: owner)
        let tagged = try await service.listKeys(tag: ("team", "pay"), actor: owner)
        #expect(tagged.keys.map(\.metadata.id.description) == [id])
        let issued = try await service.issueToken(principal: "app", policy: AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]), lifetime: nil, actor: owner)
        #expect(try await service.authenticate(issued.text).principal == "app")
        try await service.revokeToken(issued.record.id, actor: owner)
        #expect(try await service.verifyStore().isIntact)
        #expect(try await service.verifyAudit().isIntact)

        let reopened = try await database.node()
        #expect(try await reopened.describe(key: "billing", actor: owner).metadata.id.description == id)
        #expect(try await reopened.describe(key: other, actor: owner).metadata.state == .disabled)
        #expect(try await reopened.decrypt(sealed.ciphertext, context: ["tenant": "a"], actor: owner).plaintext == Array("hello".utf8))
        await #expect(throws: KeywardError.self) { _ = try await reopened.authenticate(issued.text) }
        #expect(try await reopened.verifyStore().isIntact)
    }

    @Test("audit retention: the pruned log continues after its checkpoint on every node; pruning the newest entry or going back is a conflict that removes nothing", arguments: StoreBackend.available)
    func auditPruning(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let service = try await database.initialize()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["orders"]), actor: owner).metadata.id.description
        let sealed = try await service.encrypt([1, 2], key: id, actor: owner)
        let archive = database.directory.appendingPathComponent("archive").path
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        let through = try #require(try await service.pruneAudit(olderThan: Date().addingTimeInterval(60), archive: archive, actor: owner).through)
        #expect(try await service.verifyAudit().isIntact)

        let store = try await database.open()
        #expect(try await store.auditCheckpoint()?.sequence == through)
        #expect(try await store.auditEntries(after: 0, limit: 1).first?.sequence == through + 1)
        let head = try #require(try await store.auditHead())
        let checkpoint = try #require(try await store.auditCheckpoint())
        await #expect(throws: StorageError.self) { try await store.pruneAudit(AuditCheckpointRow(sequence: head.sequence, body: [1], signature: [2])) }
        await #expect(throws: StorageError.self) { try await store.pruneAudit(AuditCheckpointRow(sequence: through, body: [1], signature: [2])) }
        let checkpointAfter = try await store.auditCheckpoint(), headAfter = try await store.auditHead()
        #expect(checkpointAfter == checkpoint && headAfter == head, "a refused pruning changed the log")

        let node = try await database.node()
        #expect(try await node.decrypt(sealed.ciphertext, actor: owner).plaintext == [1, 2])
        _ = try await node.rotate(key: "orders", actor: owner)
        #expect(try await node.verifyStore().isIntact)
        #expect(try await service.verifyAudit().isIntact)
    }

    @Test("stale revisions, duplicate versions, taken aliases and audit gaps are conflicts that write nothing", arguments: StoreBackend.available)
    func conflicts(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let store = try await database.open()
        let id = KeyID()
        let key = KeyRow(id: id, body: [1], revision: 1, mac: [2], spec: "AES-256-GCM", state: "active", createdAt: Date(timeIntervalSince1970: 1_800_000_000.5), tags: ["a": "b"])
        let version = VersionRow(keyID: id, version: 1, kekID: KeyID(), sealed: [3], body: [4], revision: 1, mac: [5])
        try await store.insertKey(key, firstVersion: version, aliases: [AliasRow(name: "a", keyID: id, revision: 1, mac: [6])])
        #expect(try await store.key(id) == key)
        #expect(try await store.versions(id) == [version])
        await #expect(throws: StorageError.self) { try await store.updateKey(key, expectedRevision: 7) }
        var next = key
        next.revision = 2
        await #expect(throws: StorageError.self) { try await store.insertVersion(version, key: next, expectedRevision: 1) }
        #expect(try await store.key(id)?.revision == 1, "the failed rotation changed the key row")
        await #expect(throws: StorageError.self) {
            try await store.insertKey(KeyRow(id: KeyID(), body: [], revision: 1, mac: [], spec: "", state: "", createdAt: Date(), tags: [:]),
                                      firstVersion: nil, aliases: [AliasRow(name: "a", keyID: id, revision: 1, mac: [])])
        }
        #expect(try await store.keyCount() == 1, "a create whose alias was taken left its key behind")
        await #expect(throws: StorageError.self) { try await store.putAlias(AliasRow(name: "a", keyID: id, revision: 2, mac: []), expectedRevision: 5) }
        await #expect(throws: StorageError.self) { try await store.deleteAlias("a", expectedRevision: 5) }
        let gap = AuditRow(sequence: 2, body: [], previousHash: [], hash: [], mac: [], keyID: nil, time: Date())
        await #expect(throws: StorageError.self) { try await store.appendAudit([gap]) }
        let first = AuditRow(sequence: 1, body: [1], previousHash: [0], hash: [1], mac: [], keyID: id, anchors: [RevisionAnchorRow(record: [9], revision: 1, deleted: false)], time: Date())
        let duplicate = AuditRow(sequence: 1, body: [2], previousHash: [0], hash: [2], mac: [], keyID: nil, time: Date())
        await #expect(throws: StorageError.self) { try await store.appendAudit([first, duplicate]) }
        #expect(try await store.auditHead() == nil, "a batch with a duplicate sequence was partly written")
        try await store.appendAudit([first])
        let snapshot = try await store.anchorSnapshot()
        #expect(snapshot.head?.sequence == 1 && snapshot.head?.keyID == id)
        #expect(snapshot.anchors == [RevisionAnchorRow(record: [9], revision: 1, deleted: false)])
        await #expect(throws: StorageError.self) { try await store.appendAudit([first]) }
    }

    @Test("every administrative change moves the generation other nodes watch; an encryption does not", arguments: StoreBackend.available)
    func generation(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let service = try await database.initialize()
        let store = try await database.open()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        var seen = try await store.generation()
        func moved(_ what: String) async throws {
            let now = try await store.generation()
            #expect(now > seen, "\(what) did not move the generation")
            seen = now
        }
        try await service.setAlias("x", key: id, actor: owner); try await moved("an alias")
        _ = try await service.transition(key: id, .disable, actor: owner); try await moved("a disable")
        _ = try await service.transition(key: id, .enable, actor: owner); try await moved("an enable")
        _ = try await service.encrypt([1], key: id, actor: owner)
        #expect(try await store.generation() == seen, "an encryption moved the generation")
        let issued = try await service.issueToken(principal: "p", policy: AccessPolicy(rules: [AccessRule(operations: Set(ServiceOperation.allCases), keys: .any)]), lifetime: nil, actor: owner)
        try await service.revokeToken(issued.record.id, actor: owner); try await moved("a token revocation")
        _ = try await service.rotate(key: id, actor: owner); try await moved("a key rotation")
    }

    @Test("attack: a key row, a sealed version and a token edited in the database are refused; the store verifier names them", arguments: StoreBackend.available)
    func tamperedRowsRefused(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let service = try await database.initialize()
        let owner = Caller.owner("t")
        let key = try await service.createKey(CreateKeyRequest(), actor: owner).metadata.id
        let issued = try await service.issueToken(principal: "p", policy: AccessPolicy(rules: [AccessRule(operations: [.encrypt], keys: .any)]), lifetime: nil, actor: owner)
        // Widen the token's policy: its body names the rules; swap in another token's body.
        let wide = try await service.issueToken(principal: "p", policy: AccessPolicy(rules: [AccessRule(operations: Set(ServiceOperation.allCases), keys: .any)]), lifetime: nil, actor: owner)
        try await database.execute("UPDATE tokens SET body = (SELECT body FROM tokens WHERE id = \(database.literal(wide.record.id.bytes))) WHERE id = \(database.literal(issued.record.id.bytes))")
        let fresh = try await database.node()
        await #expect(throws: KeywardError.self) { _ = try await fresh.authenticate(issued.text) }
        // Flip the key's state in its queryable column and its body's bytes.
        try await database.execute("UPDATE keys SET state = 'destroyed' WHERE id = \(database.literal(key.bytes))")
        let error = await keywardError { () async throws(KeywardError) in _ = try await fresh.describe(key: key.description, actor: owner) }
        guard case .integrityFailure? = error else { Issue.record("an edited key row was accepted: \(String(describing: error))"); return }
        let report = try await fresh.verifyStore()
        #expect(!report.isIntact)
        #expect(report.problems.contains { $0.contains(key.description) }, "\(report.problems)")
    }

    @Test("the KEK rotates on every backend: old ciphertexts still decrypt, a node still on the old KEK cannot write, the store verifies", arguments: StoreBackend.available)
    func kekRotationFencesStaleNodes(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let service = try await database.initialize()
        let owner = Caller.owner("t")
        let id = try await service.createKey(CreateKeyRequest(aliases: ["k"]), actor: owner).metadata.id.description
        let sealed = try await service.encrypt([7, 7], key: id, actor: owner)
        let stale = try await database.node()
        // Warm: the stale node's next encryption needs no row write, only its audit append.
        _ = try await stale.encrypt([1], key: id, actor: owner)
        let rotated = try await service.rotateKEK(root: KeyFileRootOfTrust(path: database.keyFile), actor: owner)
        let staleAppend = await keywardError { () async throws(KeywardError) in _ = try await stale.encrypt([2], key: id, actor: owner) }
        #expect(staleAppend != nil, "a node on the retired KEK appended an audit entry")
        #expect(try await rotated.decrypt(sealed.ciphertext, actor: owner).plaintext == [7, 7])
        let refused = await keywardError { () async throws(KeywardError) in _ = try await stale.createKey(CreateKeyRequest(aliases: ["late"]), actor: owner) }
        #expect(refused != nil, "a node on the retired KEK created a key")
        let again = try await database.node()
        #expect(try await again.verifyStore().isIntact)
        await #expect(throws: KeywardError.self) { _ = try await again.describe(key: "late", actor: owner) }
    }

    @Test("a restore writes every key or none, into an empty store or, adding keys, into one holding none of them nor their aliases", arguments: StoreBackend.available)
    func restoreIsAtomic(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let store = try await database.open()
        let first = KeyID(), second = KeyID()
        func rows(_ id: KeyID, alias: String) -> RestoredKey {
            RestoredKey(key: KeyRow(id: id, body: [1], revision: 1, mac: [1], spec: "AES-256-GCM", state: "active", createdAt: Date(), tags: [:]),
                        versions: [VersionRow(keyID: id, version: 1, kekID: KeyID(), sealed: [1], body: [1], revision: 1, mac: [1])],
                        aliases: [AliasRow(name: alias, keyID: id, revision: 1, mac: [1])])
        }
        // Two keys claiming one alias: the second collides, so nothing lands.
        await #expect(throws: StorageError.self) { try await store.restoreKeys([rows(first, alias: "same"), rows(second, alias: "same")]) }
        #expect(try await store.keyCount() == 0)
        try await store.restoreKeys([rows(first, alias: "a"), rows(second, alias: "b")])
        #expect(try await store.keyCount() == 2)
        await #expect(throws: StorageError.self) { try await store.restoreKeys([rows(KeyID(), alias: "c")]) }
        // Adding keys to a store that holds others: a key it holds, or an alias it holds, refuses
        // the whole call; new keys under new aliases go in together.
        let third = KeyID(), fourth = KeyID()
        for clash in [[rows(third, alias: "c"), rows(first, alias: "d")], [rows(third, alias: "c"), rows(fourth, alias: "a")]] {
            do {
                try await store.restoreKeys(clash, intoEmptyStore: false)
                Issue.record("a restore over an existing key or alias was written")
            } catch {
                guard case .conflict = error else { Issue.record("expected a conflict, got \(error)"); continue }
            }
            let count = try await store.keyCount(), written = try await store.key(third)
            #expect(count == 2 && written == nil)
        }
        try await store.restoreKeys([rows(third, alias: "c"), rows(fourth, alias: "d")], intoEmptyStore: false)
        let count = try await store.keyCount(), named = try await store.alias("d")
        #expect(count == 4 && named?.keyID == fourth)
    }
}

@Suite("Coherence bound")
struct CoherenceBoundTests {
    @Test("a node's first poll of the store drops what it cached before: a key another node disabled in between is refused",
          arguments: StoreBackend.available)
    func firstPollDropsUnconfirmedCache(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let first = try await database.initialize()
        let owner = Caller.owner("t")
        let key = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        let second = try await database.node()
        _ = try await second.encrypt([1], key: key, actor: owner)
        _ = try await first.transition(key: key, .disable, actor: owner)
        #expect(try await second.refreshFromStore(), "the first poll did not count as a change")
        let refused = await keywardError { () async throws(KeywardError) in _ = try await second.encrypt([1], key: key, actor: owner) }
        #expect(refused != nil, "the node served a key disabled before its first poll from its cache")
    }

    @Test("a node whose store watcher has not confirmed the store within the bound reads through its cache: another node's disable is honoured; without the bound the cache would have served it",
          arguments: StoreBackend.available)
    func staleCacheReadsThrough(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let first = try await database.initialize()
        let owner = Caller.owner("t")
        let keyFile = database.keyFile
        func open(bound: TimeInterval?, clock: ManualClock) async throws -> KeyService {
            try await KeyService.open(store: try await database.open(), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) },
                                      clock: clock, options: KeyService.Options(coherenceBound: bound))
        }
        let boundedClock = ManualClock(), unboundedClock = ManualClock()
        let bounded = try await open(bound: 1, clock: boundedClock)
        let unbounded = try await open(bound: nil, clock: unboundedClock)
        let key = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        _ = try await bounded.refreshFromStore()
        _ = try await unbounded.refreshFromStore()
        _ = try await bounded.encrypt([1], key: key, actor: owner)
        _ = try await unbounded.encrypt([1], key: key, actor: owner)
        _ = try await first.transition(key: key, .disable, actor: owner)
        // No poll happens (the watcher is lost or the node paused) while two seconds pass.
        boundedClock.advance(by: 2)
        unboundedClock.advance(by: 2)
        let refused = await keywardError { () async throws(KeywardError) in _ = try await bounded.encrypt([1], key: key, actor: owner) }
        #expect(refused != nil, "the bounded node served a disabled key from a cache older than its bound")
        // The control: the same cache without the bound still serves the disabled key, which is
        // what the bound exists to prevent.
        let served = await keywardError { () async throws(KeywardError) in _ = try await unbounded.encrypt([1], key: key, actor: owner) }
        #expect(served == nil)
    }
}
