import Foundation
import KeywardCrypto
import KeywardStorage

extension KeyService {
    /// Audits a front-end request that reached no key operation (refused credentials, malformed
    /// input, rate limits): `principal` as the front end knows it (or `anonymous`), the request
    /// `context`, the `outcome` and a `detail` that carries no secret. No authority is involved:
    /// this records, it grants nothing.
    ///
    /// - Throws: `auditUnavailable` when the entry cannot be written; the front end then fails
    ///   the request (fail-closed).
    public func auditRequest(principal: String, context: AuditContext, outcome: AuditOutcome, detail: String?) async throws(KeywardError) {
        var event = auditor.event(.request, principal: principal, context: context)
        event.outcome = outcome.rawValue
        event.detail = detail
        try await auditor.record(event)
    }

    /// Checks that the store answers (the server's readiness probe): reads the header.
    public func checkReady() async throws(KeywardError) {
        if let reason = auditor.log.retiredReason { throw .storeState(reason) }
        // Within 1 s: a load balancer's probe learns of a database that stopped answering
        // within 2 s, not after the store's full deadline.
        guard try await storing({ () async throws(StorageError) in try await store.isReady(within: .seconds(1)) }) else {
            throw .storeState("the store has no header")
        }
    }
}
