import Synchronization
import Testing
@testable import KeywardServer

@Suite("Authorization header parsing")
struct BearerTokenTests {
    @Test("the bearer scheme is matched without case, spaces after it are skipped, anything else is no token")
    func parsing() {
        #expect(AuthenticationMiddleware.bearerToken("Bearer kw_abc") == "kw_abc")
        #expect(AuthenticationMiddleware.bearerToken("bEaReR    kw_abc def") == "kw_abc def")
        #expect(AuthenticationMiddleware.bearerToken("BEARER x") == "x")
        for header in ["Bearer", "Bearer ", "Bearer     ", "Basic dXNlcjpwdw==", "Bearer\tkw_abc", "Bearerxkw_abc", "Beare kw_abc", "", "Bëarer kw"] {
            #expect(AuthenticationMiddleware.bearerToken(header) == nil, "\(header)")
        }
    }
}

@Suite("Request ids")
struct RequestIDTests {
    @Test("a request id is the process prefix, a dash and the counter in at least 8 lowercase hex digits")
    func spelling() {
        let prefix = RequestIDMiddleware.prefix
        #expect(prefix.utf8.count == 8 && prefix.utf8.allSatisfy { Array("0123456789abcdef".utf8).contains($0) })
        #expect(RequestIDMiddleware.id(0) == prefix + "-00000000")
        #expect(RequestIDMiddleware.id(0x2e) == prefix + "-0000002e")
        #expect(RequestIDMiddleware.id(0xffff_ffff) == prefix + "-ffffffff")
        #expect(RequestIDMiddleware.id(0x1_2345_6789) == prefix + "-123456789")
        #expect(RequestIDMiddleware.id(.max) == prefix + "-ffffffffffffffff")
        let first = RequestIDMiddleware.nextID(), second = RequestIDMiddleware.nextID()
        #expect(first != second && first.hasPrefix(prefix + "-") && first.utf8.count == 17)
    }
}

@Suite("Token cache")
struct TokenCacheTests {
    @Test("a cached token keeps working between checks; once revoked it is refused within the cache TTL, through the background re-check")
    func revocationWithinTTL() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let issued = try await fixture.token(["*:*"])
        let tokens = TokenAuthenticator(slot: KeyServiceSlot(fixture.service), ttl: .milliseconds(400))
        let cachedAt = ContinuousClock.now
        #expect(try await tokens.authenticate(issued.text, attempt: .free).name.contains(issued.record.id.description))
        try await fixture.service.revokeToken(issued.record.id, actor: .owner("test"))
        // Cached: the revocation is not seen yet (checked only when the machine was quick enough
        // to get here within half the TTL; a loaded CI machine may not be).
        let cached = try? await tokens.authenticate(issued.text, attempt: .free)
        if cachedAt.duration(to: .now) < .milliseconds(150) {
            #expect(cached?.name.contains(issued.record.id.description) == true)
        }
        let revokedAt = ContinuousClock.now
        var refusedAfter: Duration?
        for _ in 0..<300 {
            do {
                _ = try await tokens.authenticate(issued.text, attempt: .free)
            } catch {
                #expect(error.code == "unauthenticated" && error.message.contains("revoked"), "\(error.message)")
                refusedAfter = revokedAt.duration(to: .now)
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let after = try #require(refusedAfter, "the revoked token was still accepted after 3 s")
        // Within the TTL, with slack for a loaded machine.
        #expect(after < .milliseconds(400) + .seconds(2), "\(after)")
    }

    @Test("concurrent requests with an uncached token share one lookup and spend one attempt of the peer's budget; each request with a bad token spends one")
    func concurrentLookups() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let issued = try await fixture.token(["*:*"])
        let tokens = TokenAuthenticator(slot: KeyServiceSlot(fixture.service), ttl: .seconds(5))
        // A budget of one attempt outstanding: charging every request before its lookup (as a
        // pool of new connections with one good token would be) refuses all but the first.
        let ledger = AttemptLedger(budget: 1)
        let names = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<32 { group.addTask { try await tokens.authenticate(issued.text, attempt: ledger.attempt).name } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(names.count == 32 && Set(names).count == 1)
        #expect(ledger.charged == 1 && ledger.outstanding == 0)
        await #expect(throws: APIError.self) { _ = try await tokens.authenticate("kw_0123_nope", attempt: .free) }
        let spent = AttemptLedger(budget: 100)
        let unknown = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (try? await tokens.authenticate(issued.text + "x", attempt: spent.attempt)) == nil } }
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(unknown == 8)
        // Joining a lookup that fails is paid for like starting one.
        #expect(spent.outstanding == 8)
    }
}

/// Counts the attempts a `TokenAuthenticator` charges and refunds, refusing past `budget`.
final class AttemptLedger: Sendable {
    private let state: Mutex<(charged: Int, refunded: Int)> = Mutex((0, 0))
    let budget: Int
    init(budget: Int) { self.budget = budget }
    var charged: Int { state.withLock { $0.charged } }
    var outstanding: Int { state.withLock { $0.charged - $0.refunded } }
    var attempt: TokenAuthenticator.Attempt {
        .init(charge: { () throws(APIError) in
            try self.state.withLock { (state) throws(APIError) in
                guard state.charged - state.refunded < self.budget else { throw APIError.tooManyFailures(1) }
                state.charged += 1
            }
        }, refund: { self.state.withLock { $0.refunded += 1 } })
    }
}

extension TokenAuthenticator.Attempt {
    /// Lookups paid for by nobody (tests of the cache alone).
    static var free: Self { .init(charge: {}, refund: {}) }
}
