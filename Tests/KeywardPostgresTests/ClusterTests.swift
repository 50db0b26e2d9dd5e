import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Keyward
import KeywardCrypto
import KeywardServer
import KeywardServerTesting
import KeywardStorage
import Testing

/// Several `keyward serve` nodes on one store (PostgreSQL; SQLite as several processes on one
/// file): a change made through one node is honoured by the others within a second, for each
/// kind of change, with their caches warm (so the cache, not a cold read, is what is tested).
@Suite("Several nodes on one store")
struct ClusterTests {
    /// One node: a key service opened on the store, served on a loopback port.
    struct Node {
        let service: KeyService
        let server: LiveServer
        let url: String
    }

    static let options = KeyService.Options(coherenceBound: 1)

    static func node(_ service: KeyService, _ database: TestDatabase) async throws -> Node {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.insecureHTTP = true
        configuration.rateLimit.requestsPerSecond = 0
        let keyFile = database.keyFile
        let reopen: @Sendable () async throws(KeywardError) -> KeyService = { () async throws(KeywardError) -> KeyService in
            let store: any KeyStore
            do { store = try await database.open() } catch { throw .storage(.unavailable("\(error)")) }
            return try await KeyService.open(store: store, root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) }, options: options)
        }
        let server = try await LiveServer.start(KeywardServer(service: service, configuration: configuration, reopen: reopen))
        return Node(service: service, server: server, url: server.url)
    }

    /// A JSON request; the status and the decoded object.
    static func call(_ url: String, _ method: String, _ path: String, token: String, body: [String: Any]? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    /// Asks `check` of each node every 20 ms until it holds on all of them, and returns when
    /// the last answer that did not yet honour the change was asked for.
    ///
    /// That is the figure the coherence bound promises: a node answers from its caches only while
    /// its last poll of the store began less than the bound ago, so no request a node begins a
    /// bound after the change may get the old answer. A request asked before that may still be
    /// answered later (its audit entry waits behind the other nodes' on a loaded machine); it is
    /// counted by when it was asked, not when its answer came. Fails when a request asked 3 s
    /// after the change still gets the old answer, or when the nodes have not all answered the
    /// new way 30 s after it.
    ///
    /// A failure names, for each node still giving the old answer, the store generation its
    /// watcher last caught up with against the store's own, and what `explain` adds (the reply).
    static func lastStale(_ what: String, on nodes: [Node], database: TestDatabase, explain: (Node) async -> String = { _ in "" },
                          _ check: (Node) async throws -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        var pending = Array(nodes.indices)
        var lastStale = Duration.zero
        var slowest = Duration.zero
        while lastStale < .seconds(3), start.duration(to: .now) < .seconds(30) {
            var still: [Int] = []
            for index in pending {
                let asked = start.duration(to: .now)
                let honoured = try await check(nodes[index])
                slowest = max(slowest, start.duration(to: .now) - asked)
                if !honoured {
                    lastStale = max(lastStale, asked)
                    still.append(index)
                }
            }
            if still.isEmpty {
                if slowest > .seconds(1) { print("coherence: \(what): the slowest answer took \(slowest)") }
                return lastStale
            }
            pending = still
            try await Task.sleep(for: .milliseconds(20))
        }
        let generation = (try? await database.scalar("SELECT value FROM store_generation WHERE id = 1")) ?? "unreadable"
        var stale: [String] = []
        for index in pending {
            stale.append("node \(index) (\(nodes[index].url)) caught up with generation \(nodes[index].service.caughtUpGeneration)\(await explain(nodes[index]))")
        }
        let message = "\(what): a request asked \(lastStale) after the change got the old answer (slowest answer \(slowest)); "
            + "the store is at generation \(generation); \(stale.joined(separator: "; "))"
        Issue.record(Comment(rawValue: message))
        return max(lastStale, .seconds(3))
    }

    @Test("coherence with three nodes: disable, compromise, scheduled destruction, alias move, token revocation, key rotation and KEK rotation on one node are honoured by both others within 1 s",
          arguments: StoreBackend.available)
    func coherence(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        try KeyFileRootOfTrust.generate(at: database.keyFile)
        let first = try await KeyService.initialize(store: try await database.open(), root: KeyFileRootOfTrust(path: database.keyFile), actor: .owner("t"), options: Self.options)
        let a = try await Self.node(first, database)
        var others: [Node] = []
        for _ in 0..<2 {
            others.append(try await Self.node(try await database.node(options: Self.options), database))
        }
        let owner = Caller.owner("t")
        let root = try await first.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: owner).text
        let plaintext = ["plaintext": "AQID"]
        func encrypts(_ key: String, on node: Node, token: String = root) async throws -> (Int, [String: Any]) {
            try await Self.call(node.url, "POST", "/v1/keys/\(key)/encrypt", token: token, body: plaintext)
        }
        /// Whether `check` holds on every other node.
        func everywhere(_ check: (Node) async throws -> Bool) async throws -> Bool {
            for node in others where try await !check(node) { return false }
            return true
        }
        /// When the last request that still got the old answer was asked, over the other nodes.
        func lastStale(_ what: String, _ check: (Node) async throws -> Bool) async throws -> Duration {
            try await Self.lastStale(what, on: others, database: database, check)
        }
        var figures: [String: Duration] = [:]

        // Lifecycle changes: each key is warm on the other nodes (one good encryption) before A changes it.
        for (name, path, body) in [("disable", "disable", [String: Any]()), ("mark compromised", "mark-compromised", [:]),
                                   ("schedule destruction", "schedule-destruction", ["waitingDays": 7] as [String: Any])] {
            let key = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
            #expect(try await everywhere { try await encrypts(key, on: $0).0 == 200 })
            let (status, reply) = try await Self.call(a.url, "POST", "/v1/keys/\(key)/\(path)", token: root, body: body)
            #expect(status == 200, "\(name) on A: \(status) \(reply)")
            figures[name] = try await Self.lastStale(name, on: others, database: database, explain: { node in
                let state = (try? await database.scalar("SELECT state FROM keys WHERE id = \(database.literal(KeyID(parsing: key)!.bytes))")) ?? "unreadable"
                let reply = (try? await encrypts(key, on: node)).map { "\($0.0) \($0.1)" } ?? "no reply"
                return ", answers \(reply) for key \(key); the key's row says \(state)"
            }) { try await encrypts(key, on: $0).0 != 200 }
        }

        // Alias move.
        let one = try await first.createKey(CreateKeyRequest(aliases: ["moving"]), actor: owner).metadata.id.description
        let two = try await first.createKey(CreateKeyRequest(), actor: owner).metadata.id.description
        #expect(try await everywhere { try await encrypts("moving", on: $0).1["keyId"] as? String == one })
        let moved = try await Self.call(a.url, "PUT", "/v1/aliases/moving", token: root, body: ["key": two])
        #expect(moved.0 == 200, "alias move on A: \(moved)")
        figures["alias move"] = try await lastStale("alias move") { try await encrypts("moving", on: $0).1["keyId"] as? String == two }

        // Key rotation.
        #expect(try await everywhere { try await encrypts(two, on: $0).1["version"] as? Int == 1 })
        #expect(try await Self.call(a.url, "POST", "/v1/keys/\(two)/rotate", token: root).0 == 200)
        figures["key rotation"] = try await lastStale("key rotation") { try await encrypts(two, on: $0).1["version"] as? Int == 2 }

        // Token revocation: the other nodes have verified (and cached) the token before A revokes it.
        let app = try await first.issueToken(principal: "app", policy: .everything, lifetime: nil, actor: owner)
        #expect(try await everywhere { try await encrypts(two, on: $0, token: app.text).0 == 200 })
        try await first.revokeToken(app.record.id, actor: owner)
        figures["token revocation"] = try await lastStale("token revocation") { try await encrypts(two, on: $0, token: app.text).0 == 401 }

        // KEK rotation: the other nodes take up the new KEK and go on writing (a create) under it.
        let rotated = try await first.rotateKEK(root: KeyFileRootOfTrust(path: database.keyFile), actor: owner)
        figures["KEK rotation"] = try await lastStale("KEK rotation") {
            try await Self.call($0.url, "POST", "/v1/keys", token: root, body: ["spec": "AES-256-GCM"]).0 == 201
        }
        #expect(try await rotated.verifyStore().isIntact)
        #expect(try await rotated.verifyAudit().isIntact, "the audit chain written by the three nodes does not verify")

        for (name, figure) in figures.sorted(by: { $0.key < $1.key }) {
            print("coherence[\(backend.rawValue)] \(name): last old answer asked at \(figure)")
            #expect(figure < .seconds(1), "\(name): a request asked \(figure) after the change still got the old answer")
        }
        try await a.server.stop()
        for node in others { try await node.server.stop() }
    }

    @Test("nonce budgets hold across nodes: two nodes encrypting under one key at once each reserve blocks from the store, and no block is handed out twice",
          arguments: StoreBackend.available)
    func reservationBlocksAreDisjoint(_ backend: StoreBackend) async throws {
        let database = try await backend.makeDatabase()
        defer { database.remove() }
        let options = KeyService.Options(encryptionReservationBlock: 4)
        try KeyFileRootOfTrust.generate(at: database.keyFile)
        let first = try await KeyService.initialize(store: try await database.open(), root: KeyFileRootOfTrust(path: database.keyFile), actor: .owner("t"), options: options)
        let second = try await database.node(options: options)
        let key = try await first.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let perNode = 40
        // Two nodes chaining one audit log directly race for its head (serving nodes on
        // PostgreSQL use the intake instead; SQLite has no intake): a batch that keeps losing
        // for 2 s is refused with auditUnavailable, "retry the operation". On a loaded test
        // process that happened, so each node retries such a refusal, a bounded number of times,
        // as a client would. The blocks below must still be disjoint and cover every encryption.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in [first, second] {
                group.addTask {
                    var retries = 0
                    for _ in 0..<perNode {
                        while true {
                            do {
                                _ = try await node.encrypt([1], key: key, actor: .owner("t"))
                                break
                            } catch KeywardError.auditUnavailable(let why) where retries < 10 {
                                retries += 1
                                print("nonce budgets[\(backend.rawValue)]: encryption refused by a lost audit race (\(why)); retrying")
                            } catch KeywardError.storage(.conflict(let why)) where retries < 10 {
                                // A reservation that lost the version row to the other node eight
                                // times in a row (each retry after a random wait) is refused with
                                // "retry the operation", as a client would.
                                retries += 1
                                print("nonce budgets[\(backend.rawValue)]: encryption refused by a lost reservation race (\(why)); retrying")
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Every reservation is a block of 4 after the stored total: the totals the audit log
        // records are 4, 8, 12, ... once each, whichever node wrote them. A block reserved ahead
        // in the background is audited after its row commits, so one may still be on its way
        // when the encryptions end: the log is read again (for at most 3 s) until none is.
        var totals: [Int] = []
        let start = ContinuousClock.now
        repeat {
            totals = try await first.auditTail(10_000).map(\.event).filter { $0.operation == "reserve-encryptions" }
                .compactMap { $0.detail?.split(separator: " ").first.flatMap { Int($0) } }
            if totals.sorted() == Array(stride(from: 4, through: 4 * totals.count, by: 4)) { break }
            try await Task.sleep(for: .milliseconds(50))
        } while start.duration(to: .now) < .seconds(3)
        #expect(Set(totals).count == totals.count, "a block was reserved twice: \(totals.sorted())")
        #expect(totals.sorted() == Array(stride(from: 4, through: 4 * totals.count, by: 4)), "\(totals.sorted())")
        // Together the blocks cover every encryption made.
        #expect(4 * totals.count >= 2 * perNode, "\(totals.count) blocks for \(2 * perNode) encryptions")
        #expect(try await first.verifyAudit().isIntact)
    }
}
