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
    let capacity: Int
    private let state = Mutex(State())

    init(slot: KeyServiceSlot, ttl: Duration, capacity: Int = 10_000) {
        self.slot = slot
        self.ttl = ttl
        self.capacity = capacity
    }

    /// Forgets every verified token (the store changed: one may have been revoked or
    /// re-scoped by another process). Lookups under way finish and are not kept.
    func forgetAll() {
        state.withLock { state in
            state.entries.removeAll()
            state.lookups.removeAll()
        }
    }

    /// The principal a token authenticates as, or `unauthenticated`.
    /// The principal of a token verified within the TTL and not expired, from the cache alone
    /// (no store lookup; a busy token's background refresh may start); nil otherwise.
    func cached(_ text: String) -> Principal? {
        guard ttl > .zero else { return nil }
        let hash = SHA256Hash.hash(Array(text.utf8))
        let now = ContinuousClock.now
        return state.withLock { state -> Principal? in
            guard let entry = state.entries[hash] else { return nil }
            let age = entry.cachedAt.duration(to: now)
            guard age <= ttl, !(entry.expiresAt.map { $0 <= Date() } ?? false) else { return nil }
            if age > ttl / 2 && state.lookups[hash] == nil {
                state.lookups[hash] = startLookup(text, hash: hash)
            }
            return entry.principal
        }
    }

    func authenticate(_ text: String) async throws(APIError) -> Principal {
        let hash = SHA256Hash.hash(Array(text.utf8))
        guard ttl > .zero else { return try await lookUp(text).principal }
        let now = ContinuousClock.now
        enum Found { case cached(Principal), join(Task<Verified, any Error>) }
        let found = state.withLock { state -> Found in
            if let entry = state.entries[hash] {
                let age = entry.cachedAt.duration(to: now)
                let expired = entry.expiresAt.map { $0 <= Date() } ?? false
                if age <= ttl && !expired {
                    if age > ttl / 2 && state.lookups[hash] == nil {
                        state.lookups[hash] = startLookup(text, hash: hash)
                    }
                    return .cached(entry.principal)
                }
                state.entries[hash] = nil
            }
            if let running = state.lookups[hash] { return .join(running) }
            let task = startLookup(text, hash: hash)
            state.lookups[hash] = task
            return .join(task)
        }
        switch found {
        case .cached(let principal):
            return principal
        case .join(let task):
            do {
                return try await task.value.principal
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError("internal_error", .internalServerError, "the token could not be checked")
            }
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
        return Verified(principal: Principal(name: "token:\(record.id):\(record.principal)", policy: record.policy), expiresAt: record.expiresAt)
    }
}
