import Crypto
import Foundation
import Keyward
import Synchronization

/// Checks bearer tokens through `KeyService.authenticate`, and remembers a verified token for a
/// few seconds so that a busy client costs one store read per interval, not one per request.
///
/// The cache is keyed by the token's SHA-256 (the store's own lookup key), never the token.
/// Expiry is checked on every hit; a revocation (`keyward token revoke`, another process) takes
/// effect within `ttl` (default 5 s).
final class TokenAuthenticator: Sendable {
    private struct Entry {
        let principal: Principal
        let expiresAt: Date?
        let cachedAt: ContinuousClock.Instant
    }

    let service: KeyService
    let ttl: Duration
    let capacity: Int
    private let entries = Mutex<[[UInt8]: Entry]>([:])

    init(service: KeyService, ttl: Duration, capacity: Int = 10_000) {
        self.service = service
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The principal a token authenticates as, or `unauthenticated`.
    func authenticate(_ text: String) async throws(APIError) -> Principal {
        let hash = Array(SHA256.hash(data: Array(text.utf8)))
        let now = ContinuousClock.now
        let cached = entries.withLock { entries -> Entry? in
            guard let entry = entries[hash] else { return nil }
            if entry.cachedAt.duration(to: now) > ttl || (entry.expiresAt.map { $0 <= Date() } ?? false) {
                entries[hash] = nil
                return nil
            }
            return entry
        }
        if let cached { return cached.principal }
        let record: TokenRecord
        do {
            record = try await service.authenticate(text)
        } catch {
            if case .unauthenticated = error { throw APIError.unauthenticated(error.description) }
            throw APIError(error)
        }
        let principal = Principal(name: "token:\(record.id):\(record.principal)", policy: record.policy)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[hash] = Entry(principal: principal, expiresAt: record.expiresAt, cachedAt: now)
        }
        return principal
    }
}
