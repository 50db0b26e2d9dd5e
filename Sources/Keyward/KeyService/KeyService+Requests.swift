import Foundation
import KeywardCrypto
import KeywardStorage

extension KeyService {
    /// Audits a front-end request that reached no key operation (refused credentials, malformed
    /// input, rate limits): the caller's principal, request id, peer and route, with `outcome`
    /// (`denied` or `error`) and a `detail` that carries no secret.
    ///
    /// - Throws: `auditUnavailable` when the entry cannot be written; the front end then fails
    ///   the request (fail-closed).
    public func auditRequest(_ caller: Caller, operation: String, outcome: String, detail: String?) async throws(KeywardError) {
        var event = caller.event(time: clock.now, operation: operation)
        event.outcome = outcome
        event.detail = detail
        try await audit.record(event)
    }

    /// Checks that the store answers (the server's readiness probe): reads the header.
    public func checkReady() async throws(KeywardError) {
        guard try await storing({ () async throws(StorageError) in try await store.header() }) != nil else {
            throw .storeState("the store has no header")
        }
    }
}
