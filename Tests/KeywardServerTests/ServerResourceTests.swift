import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Keyward
import KeywardServiceTestSupport
@testable import KeywardServer
import KeywardServerTesting
import KeywardTestSupport
import Testing

/// A server's store files are closed once the server (in-process router or a live listener)
/// and its service are dropped: a process that starts servers repeatedly does not run out of
/// file descriptors.
@Suite("Resources a dropped server releases")
struct ServerResourceTests {
    /// Makes a server fixture, lets `use` answer a request through it, drops the fixture, and
    /// expects every file in its store's directory to be closed within two seconds.
    private func expectStoreClosed(after use: (ServerFixture) async throws -> Void) async throws {
        let temporary: TemporaryStore
        do {
            let fixture = try await ServerFixture.make()
            temporary = fixture.temporary
            try await use(fixture)
        }
        defer { temporary.remove() }
        #expect(try await OpenFiles.settled(inside: temporary.directory, atMost: 0) == 0)
    }

    @Test("a router answered an audited request, then the fixture was dropped: the store's files are closed")
    func droppedRouterClosesTheStore() async throws {
        try await expectStoreClosed { fixture in
            try await fixture.application().test(.router) { client in
                let reply = try await client.call(.post, "/v1/random", token: fixture.rootToken, #"{"count":8}"#)
                #expect(reply.status == .ok, "\(reply.text)")
            }
            #expect(OpenFiles.count(inside: fixture.directory) > 0)
        }
    }

    @Test("a live server answered an audited request and stopped, then the fixture was dropped: the store's files are closed")
    func droppedLiveServerClosesTheStore() async throws {
        try await expectStoreClosed { fixture in
            let live = try await LiveServer.start(fixture.server)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let reply = try await send(client, "\(live.url)/v1/random", token: fixture.rootToken, method: .POST, body: #"{"count":8}"#)
            #expect(reply.status == 200, "\(reply.text)")
            try await client.shutdown()
            try await live.stop()
        }
    }
}
