import AsyncHTTPClient
import Foundation
import Keyward
import KeywardServer
import KeywardServerTesting
import KeywardServiceTestSupport
import KeywardStorage
import Testing

/// A second writer on the same store file (the CLI beside a running server): its changes reach
/// the server through the store generation, without waiting for any cache to expire.
@Suite("Another process's changes reach a running server")
struct CrossProcessTests {
    @Test("a key disabled, an alias removed and a token revoked by another process apply at once, well inside the 300 s key cache TTL")
    func secondWriter() async throws {
        let fixture = try await ServerFixture.make { $0.tokenCacheSeconds = 300 }
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app"]), actor: .owner("test")).metadata.id.description
        let app = try await fixture.token(["encrypt:*"], principal: "app")
        let live = try await LiveServer.start(fixture.server)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let base = "http://127.0.0.1:\(live.port)"
        func status(_ path: String, _ token: String) async throws -> Int {
            try await send(client, base + path, token: token, method: .POST, body: #"{"plaintext":"AQID"}"#).status
        }
        /// Polls up to 5 s (bounded) for `expected`; the note quotes how long it took.
        func eventually(_ path: String, _ token: String, is expected: Int) async throws -> Bool {
            for _ in 0..<50 {
                if try await status(path, token) == expected { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        // Warm every cache: the key, its alias, the token.
        #expect(try await status("/v1/keys/app/encrypt", app.text) == 200)
        #expect(try await status("/v1/keys/\(key)/encrypt", fixture.rootToken) == 200)

        // The other process: the same file, its own connection and KeyService, as `keyward` would open it.
        let keyFile = fixture.directory.appendingPathComponent("root.key").path
        let other = try await KeyService.open(store: try SQLiteKeyStore(path: fixture.directory.appendingPathComponent("store.db").path),
                                              root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })

        try await other.revokeToken(app.record.id, actor: .owner("cli"))
        #expect(try await eventually("/v1/keys/\(key)/encrypt", app.text, is: 401), "the revoked token still works")

        try await other.deleteAlias("app", actor: .owner("cli"))
        #expect(try await eventually("/v1/keys/app/encrypt", fixture.rootToken, is: 404), "the removed alias still resolves")

        _ = try await other.transition(key: key, .disable, actor: .owner("cli"))
        #expect(try await eventually("/v1/keys/\(key)/encrypt", fixture.rootToken, is: 409), "the disabled key still encrypts")
        try await client.shutdown()
        try await live.stop()
    }

    @Test("a KEK rotated by another process stops the running server with the reason, not a false tamper alarm, and the store stays intact")
    func kekRotatedElsewhere() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let live = try await LiveServer.start(fixture.server)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let base = "http://127.0.0.1:\(live.port)"
        #expect(try await send(client, base + "/v1/keys/\(key)/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#).status == 200)

        let keyFile = fixture.directory.appendingPathComponent("root.key").path
        let storePath = fixture.directory.appendingPathComponent("store.db").path
        let other = try await KeyService.open(store: try SQLiteKeyStore(path: storePath), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        _ = try await other.rotateKEK(root: try KeyFileRootOfTrust(path: keyFile), actor: .owner("cli"))

        // Within the watcher's poll the server stops, saying why (bounded wait of 5 s).
        var status = 0
        var text = ""
        for _ in 0..<50 {
            let reply = try await send(client, base + "/v1/keys/\(key)/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#)
            (status, text) = (reply.status, reply.text)
            if status == 503 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let reply = (status: status, text: text)
        // The first refusal may come from the KEK fence in the write transaction (before the
        // watcher has looked): either way it names the rotation and raises no tamper alarm.
        #expect(reply.status == 503 && (reply.text.contains("rotated by another process") || reply.text.contains("another process rotated"))
                && !reply.text.contains("integrity"), "\(reply.status) \(reply.text)")
        var ready = 0
        for _ in 0..<50 {
            ready = try await send(client, base + "/v1/ready", token: nil).status
            if ready == 503 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(ready == 503)
        try await client.shutdown()
        try await live.stop()

        // A restart (a new KeyService on the file) unwraps the new KEK; nothing was harmed.
        let restarted = try await KeyService.open(store: try SQLiteKeyStore(path: storePath), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        #expect(try await restarted.verifyStore().isIntact)
        #expect(try await restarted.encrypt([1], key: key, actor: .owner("test")).version == 1)
    }

    @Test("a KEK rotated by another process is taken up by the running server: writes go on under the new KEK, old ciphertexts decrypt, no restart, no tamper alarm")
    func kekRotatedElsewhereTakenUp() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let keyFile = fixture.directory.appendingPathComponent("root.key").path
        let storePath = fixture.directory.appendingPathComponent("store.db").path
        let open: @Sendable () async throws(KeywardError) -> KeyService = { () async throws(KeywardError) -> KeyService in
            let store: SQLiteKeyStore
            do throws(StorageError) { store = try SQLiteKeyStore(path: storePath) } catch { throw .storage(error) }
            return try await KeyService.open(store: store, root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        }
        let server = try KeywardServer(service: fixture.service, configuration: fixture.server.configuration, reopen: open)
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["app"]), actor: .owner("test")).metadata.id.description
        let live = try await LiveServer.start(server)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let base = "http://127.0.0.1:\(live.port)"
        let sealed = try await send(client, base + "/v1/keys/app/encrypt", token: fixture.rootToken, method: .POST, body: #"{"plaintext":"AQID"}"#)
        #expect(sealed.status == 200)
        let ciphertext = try #require((try JSONSerialization.jsonObject(with: Data(sealed.text.utf8)) as? [String: Any])?["ciphertext"] as? String)

        let other = try await open()
        let rotated = try await other.rotateKEK(root: try KeyFileRootOfTrust(path: keyFile), actor: .owner("cli"))

        // Within the watcher's poll the server writes again, under the new KEK (bounded: 5 s).
        var created = 0
        var alarms: [String] = []
        for attempt in 0..<50 {
            let reply = try await send(client, base + "/v1/keys", token: fixture.rootToken, method: .POST, body: #"{"aliases":["after-\#(attempt)"]}"#)
            created = reply.status
            if reply.text.contains("integrity") { alarms.append(reply.text) }
            if created == 201 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(created == 201, "the server did not take up the rotated KEK")
        #expect(alarms.isEmpty, "\(alarms)")
        #expect(server.service.header.activeKEK == rotated.header.activeKEK)
        let opened = try await send(client, base + "/v1/keys/\(key)/decrypt", token: fixture.rootToken, method: .POST, body: #"{"ciphertext":"\#(ciphertext)"}"#)
        #expect(opened.status == 200 && opened.text.contains("AQID"), "\(opened.text)")
        #expect(try await send(client, base + "/v1/ready", token: nil).status == 200)
        try await client.shutdown()
        try await live.stop()
        // Everything the server wrote after the swap verifies under the new KEK.
        #expect(try await open().verifyStore().isIntact)
    }
}
