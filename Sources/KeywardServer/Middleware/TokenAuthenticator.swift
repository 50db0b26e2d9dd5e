import Foundation
import Keyward
import KeywardCrypto
import Synchronization

/// Checks bearer tokens through `KeyService.authenticate`, and remembers a verified token for a
/// few seconds so that a busy client costs one store read per interval, not one per request.
///
/// The cache is keyed by the token's SHA-256 (the store's own lookup key), never the token.
/// Expiry is checked on every hit; a revocation (`keyward token revoke`, another process) takes
/// effect within `ttl` (default 5 s).
///
/// No request waits for the periodic re-check of a busy token: once an entry is older than half
/// of `ttl`, the first request to see it starts one lookup in the background and every request
/// goes on with the cached answer until the lookup replaces it (or, if it finds the token
/// revoked or gone, removes it). Only a token not cached, or cached longer than `ttl`, is looked
/// up on the request's path, and concurrent requests with that token share one lookup.
final class TokenAuthenticator: Sendable {
    private struct Entry {
        let principal: Principal
        let expiresAt: Date?
        let cachedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        /// Verified AWS access keys, by access key id.
        var awsKeys: [String: AWSKey] = [:]
        /// Lookups under way, by token hash: later requests for the same token join them.
        var lookups: [[UInt8]: Task<Verified, any Error>] = [:]
    }

    /// A lookup's answer: who the token is, and until when.
    private struct Verified: Sendable {
        let principal: Principal
        let expiresAt: Date?
    }

    let slot: KeyServiceSlot
    let ttl: Duration
    /// Half of `ttl`, past which a hit starts a refresh (worked out once: `Duration` division is 128-bit).
    private let refreshAge: Duration
    let capacity: Int
    /// With a bound, cached tokens are trusted only while the store watcher last confirmed the
    /// store (`confirm`) at most this long ago: a node that lost its database or was paused
    /// looks every token up again rather than honour one another node has since revoked.
    let coherenceBound: Duration?
    /// `coherenceBound` in nanoseconds, worked out once rather than per request.
    private let boundNanoseconds: UInt64?
    private let state = Mutex(State())
    /// When the watcher last confirmed the store, in `DispatchTime` uptime nanoseconds (0: never).
    private let confirmedAt = Atomic<UInt64>(0)

    init(slot: KeyServiceSlot, ttl: Duration, capacity: Int = 10_000, coherenceBound: Duration? = nil) {
        self.slot = slot
        self.ttl = ttl
        self.refreshAge = ttl / 2
        self.capacity = capacity
        self.coherenceBound = coherenceBound
        self.boundNanoseconds = coherenceBound.map { bound in
            let (seconds, attoseconds) = bound.components
            return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        }
    }

    /// Records that the store held no change the cache has not taken up as of `instant` (the
    /// watcher's poll began then and succeeded).
    func confirm(_ uptimeNanoseconds: UInt64) {
        confirmedAt.store(uptimeNanoseconds, ordering: .releasing)
    }

    /// Whether cached answers may be used now (see `coherenceBound`): one atomic load.
    private func coherent() -> Bool {
        guard let boundNanoseconds else { return true }
        let confirmed = confirmedAt.load(ordering: .acquiring)
        guard confirmed != 0 else { return false }
        return DispatchTime.now().uptimeNanoseconds &- confirmed <= boundNanoseconds
    }

    /// Forgets every verified token (the store changed: one may have been revoked or
    /// re-scoped by another process). Lookups under way finish and are not kept.
    func forgetAll() {
        state.withLock { state in
            state.entries.removeAll()
            state.lookups.removeAll()
            state.awsKeys.removeAll()
        }
    }

    /// The principal of a token verified within the TTL and not expired, from the cache alone
    /// (no store lookup; a busy token's background refresh may start); nil otherwise.
    func cached(_ text: String) -> Principal? {
        guard ttl > .zero else { return nil }
        guard coherent() else { return nil }
        let now = ContinuousClock.now
        let hash = SHA256Hash.hash(utf8: text)
        return state.withLock { state -> Principal? in
            guard let entry = state.entries[hash] else { return nil }
            let age = entry.cachedAt.duration(to: now)
            guard age <= ttl, !(entry.expiresAt.map { $0 <= Date() } ?? false) else { return nil }
            if age > refreshAge && state.lookups[hash] == nil {
                state.lookups[hash] = startLookup(text, hash: hash)
            }
            return entry.principal
        }
    }

    /// The principal a token authenticates as, or `unauthenticated`.
    ///
    /// `attempt` pays for store lookups: the request that starts a lookup is charged before it
    /// (`attempt.charge`, whose error stops it) and refunded when the token is good; a request
    /// that joins a lookup already under way for the same token costs nothing unless that lookup
    /// refuses the token, and is charged then. So a client opening many connections at once with
    /// one good token spends one attempt, and a peer repeating a bad token still spends its budget.
    func authenticate(_ text: String, attempt: Attempt) async throws(APIError) -> Principal {
        let hash = SHA256Hash.hash(utf8: text)
        guard ttl > .zero else {
            try attempt.charge()
            let principal = try await lookUp(text).principal
            attempt.refund()
            return principal
        }
        let now = ContinuousClock.now
        let trusted = coherent()
        enum Found { case cached(Principal), join(Task<Verified, any Error>), started(Task<Verified, any Error>) }
        let found = try state.withLock { state throws(APIError) -> Found in
            if trusted, let entry = state.entries[hash] {
                let age = entry.cachedAt.duration(to: now)
                let expired = entry.expiresAt.map { $0 <= Date() } ?? false
                if age <= ttl && !expired {
                    if age > refreshAge && state.lookups[hash] == nil {
                        state.lookups[hash] = startLookup(text, hash: hash)
                    }
                    return .cached(entry.principal)
                }
                state.entries[hash] = nil
            }
            if let running = state.lookups[hash] { return .join(running) }
            try attempt.charge()
            let task = startLookup(text, hash: hash)
            state.lookups[hash] = task
            return .started(task)
        }
        switch found {
        case .cached(let principal):
            return principal
        case .started(let task):
            let principal = try await Self.outcome(of: task)
            attempt.refund()
            return principal
        case .join(let task):
            do {
                return try await Self.outcome(of: task)
            } catch {
                // The shared lookup refused the token: this request pays for its attempt too.
                // Its 429, if the budget is spent, is the answer the next attempt would get.
                try? attempt.charge()
                throw error
            }
        }
    }

    /// Paying for token lookups out of a peer's failed-authentication budget.
    struct Attempt {
        /// Takes one attempt, or throws the refusal (429) when none is left.
        let charge: () throws(APIError) -> Void
        /// Gives the attempt back: it succeeded.
        let refund: () -> Void
    }

    /// The principal a lookup found, or its refusal as an `APIError`.
    private static func outcome(of task: Task<Verified, any Error>) async throws(APIError) -> Principal {
        do {
            return try await task.value.principal
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError("internal_error", .internalServerError, "the token could not be checked")
        }
    }

    /// One store lookup of `text`, which caches its answer (or drops the entry when the token is
    /// refused) and then stops being the token's lookup under way. Called under the state lock.
    private func startLookup(_ text: String, hash: [UInt8]) -> Task<Verified, any Error> {
        Task { [self] () async throws -> Verified in
            let started = ContinuousClock.now
            do {
                let verified = try await lookUp(text)
                state.withLock { state in
                    state.lookups[hash] = nil
                    if state.entries.count >= capacity && state.entries[hash] == nil { state.entries.removeAll(keepingCapacity: true) }
                    state.entries[hash] = Entry(principal: verified.principal, expiresAt: verified.expiresAt, cachedAt: started)
                }
                return verified
            } catch {
                state.withLock { state in
                    state.lookups[hash] = nil
                    state.entries[hash] = nil
                }
                throw error
            }
        }
    }

    /// Reads and checks the token in the store.
    private func lookUp(_ text: String) async throws(APIError) -> Verified {
        let record: TokenRecord
        do {
            record = try await slot.current.authenticate(text)
        } catch {
            if case .unauthenticated = error { throw APIError.unauthenticated(error.description) }
            throw APIError(error)
        }
        return Verified(principal: Principal(name: "token:\(record.id):\(record.principal)", policy: record.policy, expiresAt: record.expiresAt), expiresAt: record.expiresAt)
    }

    // MARK: AWS access keys

    /// A verified AWS access key: its principal, its secret, and the day's signing keys derived
    /// from it (`AWSSigningKey`), so a busy key costs one HMAC per request, not five.
    final class AWSKey: Sendable {
        let principal: Principal
        let expiresAt: Date?
        let cachedAt: ContinuousClock.Instant
        private let secret: AWSSecret
        private let signingKeys = Mutex<[String: AWSSigningKey]>([:])

        init(principal: Principal, expiresAt: Date?, cachedAt: ContinuousClock.Instant, secret: AWSSecret) {
            self.principal = principal
            self.expiresAt = expiresAt
            self.cachedAt = cachedAt
            self.secret = secret
        }

        /// The signing key for `date` and `region` (kept for the last few scopes asked).
        func signingKey(date: String, region: String) throws(APIError) -> AWSSigningKey {
            let scope = date + "/" + region
            if let found = signingKeys.withLock({ $0[scope] }) { return found }
            let key: AWSSigningKey
            do { key = try AWSSigningKey(secret: secret.secret, date: date, region: region, service: "kms") } catch { throw APIError(KeywardError.crypto(error)) }
            signingKeys.withLock { keys in
                if keys.count >= 4 { keys.removeAll() }
                keys[scope] = key
            }
            return key
        }
    }

    /// The AWS access key `accessKeyID`, from the cache (within the TTL and the coherence
    /// bound) or the store; `UnrecognizedClientException` when it is unknown, revoked or
    /// expired. A store lookup is paid for by `attempt`, as a token lookup is.
    func awsKey(_ accessKeyID: String, attempt: Attempt) async throws(APIError) -> AWSKey {
        let now = ContinuousClock.now
        if ttl > .zero, coherent(), let entry = state.withLock({ $0.awsKeys[accessKeyID] }),
           entry.cachedAt.duration(to: now) <= ttl, !(entry.expiresAt.map { $0 <= Date() } ?? false) {
            return entry
        }
        try attempt.charge()
        let checked: AWSSecret
        do {
            checked = try await slot.current.authenticateAWS(accessKeyID)
        } catch {
            if case .unauthenticated = error { throw AWSFault.unrecognizedClient("the security token included in the request is invalid: \(error.description)") }
            throw APIError(error)
        }
        attempt.refund()
        let record = checked.record
        let entry = AWSKey(principal: Principal(name: "aws:\(accessKeyID):\(record.principal)", policy: record.policy, expiresAt: record.expiresAt),
                           expiresAt: record.expiresAt, cachedAt: now, secret: checked)
        if ttl > .zero {
            state.withLock { state in
                if state.awsKeys.count >= capacity { state.awsKeys.removeAll(keepingCapacity: true) }
                state.awsKeys[accessKeyID] = entry
            }
        }
        return entry
    }
}
