import Foundation
import KeywardCrypto

/// How an audited call ended.
public enum AuditOutcome: String, Sendable, CaseIterable {
    /// It did what was asked.
    case ok
    /// It was refused: policy, lifecycle state, purpose, integrity, bad input.
    case denied
    /// It failed for a reason of the service's own (storage, audit).
    case error
}

/// Writes `KeyService`'s audit entries: one per call, made from the caller and a closed
/// ``AuditOperation``, and durable before the call's result is returned (fail-closed: a call
/// whose entry cannot be written fails with `auditUnavailable`).
struct Auditor: Sendable {
    let log: AuditLog
    let clock: any KeywardClock

    /// A new entry for `caller` (its principal and request context); marks the request's receipt.
    func event(_ operation: AuditOperation, caller: Caller, key: KeyID? = nil, version: UInt32? = nil) -> AuditEvent {
        event(operation, principal: caller.principal, context: caller.context, key: key, version: version)
    }

    /// A new entry naming `principal` with the request `context`, for entries that carry no
    /// authority (a front end's own record of a request); marks the request's receipt.
    func event(_ operation: AuditOperation, principal: String, context: AuditContext, key: KeyID? = nil, version: UInt32? = nil) -> AuditEvent {
        context.receipt?.mark()
        return AuditEvent(time: clock.now, actor: principal, operation: operation.description, keyID: key, version: version,
                          requestID: context.requestID, peer: context.peer, route: context.route)
    }

    /// Runs `body` and audits it: an `ok` entry when it succeeds (the result is returned only
    /// once the entry is durable), a `denied` or `error` entry when it fails.
    func audited<T: ~Copyable>(
        _ operation: AuditOperation, caller: Caller, key: KeyID?,
        _ body: (inout AuditEvent) async throws(KeywardError) -> T
    ) async throws(KeywardError) -> T {
        var event = event(operation, caller: caller, key: key)
        let result: T
        do {
            result = try await body(&event)
        } catch {
            throw await refusal(event, await log.explainingRotation(error))
        }
        try await log.record(event)
        return result
    }

    /// Records `event` as having failed with `error` and returns the error to throw: `error`
    /// itself once its entry is durable, or `auditUnavailable` when the entry cannot be written.
    /// Fail-closed on refusals too: a denial the log could not keep is a 503, never a 403.
    func refusal(_ event: AuditEvent, _ error: KeywardError) async -> KeywardError {
        do throws(KeywardError) {
            try await record(failed: event, error)
            return error
        } catch {
            return error
        }
    }

    /// Records `event` as having failed with `error`.
    func record(failed event: AuditEvent, _ error: KeywardError) async throws(KeywardError) {
        var event = event
        event.outcome = (error.isDenial ? AuditOutcome.denied : .error).rawValue
        event.detail = error.description
        try await log.record(event)
    }

    /// Records `event` as it is.
    func record(_ event: AuditEvent) async throws(KeywardError) {
        try await log.record(event)
    }
}

extension KeywardError {
    /// Failures that are refusals (state, purpose, integrity, bad ciphertext) rather than faults.
    var isDenial: Bool {
        switch self {
        case .storage, .auditUnavailable: false
        default: true
        }
    }
}
