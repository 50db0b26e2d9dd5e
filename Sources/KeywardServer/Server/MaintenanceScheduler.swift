import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Runs the cluster's background work every `interval` while the server runs, on the one node
/// holding the maintenance lease (`LeaseKeeper`): the maintenance sweep
/// (`KeyService.runMaintenance(under:)`: due destructions, scheduled rotations, deleting the
/// material of destroyed keys once every node has seen their destruction) and, every
/// `verifyInterval`, a full verification of the store. Every write of that work is fenced by
/// the lease's token. Nodes without the lease do nothing but wait to take it over. Stops at
/// graceful shutdown. With audit retention, the same node archives and removes old audit
/// entries hourly.
struct MaintenanceScheduler: Service {
    /// Between audit retention runs.
    static let retentionInterval: Duration = .seconds(3600)

    let slot: KeyServiceSlot
    let interval: Duration
    /// Between verifications of the whole store; nil: never.
    let verifyInterval: Duration?
    /// Audit retention: days entries stay, and the archive directory; nil keeps them all. Runs
    /// hourly (`retentionInterval`).
    let retention: (days: Int, archive: String)?
    /// The lease the work runs under; nil for a server that is no cluster node (no node id),
    /// which runs it unleased.
    let lease: LeaseKeeper?
    /// Where each sweep's result is kept for `/v1/admin/maintenance`.
    let log: MaintenanceLog
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var verified: ContinuousClock.Instant? = nil
            var retained: ContinuousClock.Instant? = nil
            // The lease keeper's first attempt is under way as this starts: waiting for it (up to
            // 2 s) lets the node that takes the lease verify the store at startup, while it is
            // quiet, rather than an interval later under load.
            if let lease {
                let started = ContinuousClock.now
                while lease.held == nil, ContinuousClock.now - started < .seconds(2), !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            while !Task.isCancelled {
                let held = lease?.held
                if lease == nil || held != nil {
                    await sweep(held)
                    if let verifyInterval, verified.map({ ContinuousClock.now - $0 >= verifyInterval }) ?? true {
                        await verify()
                        verified = ContinuousClock.now
                    }
                    if let retention, retained.map({ ContinuousClock.now - $0 >= Self.retentionInterval }) ?? true {
                        await retain(retention, held)
                        retained = ContinuousClock.now
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    private func sweep(_ held: Lease?) async {
        do {
            let service = slot.current
            let report = if let held { try await service.runMaintenance(under: held) } else { try await service.runMaintenance() }
            log.record(report)
            if report.destroyed > 0 || report.rotated > 0 || report.purged > 0 {
                logger.notice("maintenance", metadata: ["destroyed": "\(report.destroyed)", "rotated": "\(report.rotated)",
                                                        "purged": "\(report.purged)", "keys": "\(report.keys)"])
            }
            for failure in report.failures { logger.error("maintenance failed", metadata: ["failure": .string(failure)]) }
        } catch {
            logger.error("maintenance sweep failed", metadata: ["error": .string(error.description)])
        }
    }

    /// Archives and removes the audit entries older than the retention period.
    private func retain(_ retention: (days: Int, archive: String), _ held: Lease?) async {
        do {
            let result = try await slot.current.runAuditRetention(keepingDays: retention.days, archive: retention.archive, under: held)
            if let through = result.through {
                logger.notice("audit retention", metadata: ["through": "\(through)", "entries": "\(result.entries)",
                                                            "segments": .array(result.segments.map { .string($0) })])
            }
        } catch {
            logger.error("audit retention failed", metadata: ["error": .string(error.description)])
        }
    }

    /// Verifies every record and the audit chain; a finding is logged as critical (it means
    /// the store was edited outside Keyward) and kept for `/v1/admin/maintenance`.
    private func verify() async {
        do {
            let result = try await slot.current.verifyStore(inBackground: true)
            log.record(result)
            if result.isIntact {
                logger.notice("periodic verification: the store is intact", metadata: ["keys": "\(result.keys)", "auditEntries": "\(result.audit.entries)"])
            } else {
                for problem in result.allProblems {
                    logger.critical("periodic verification found a problem", metadata: ["problem": .string(problem)])
                }
            }
        } catch {
            logger.error("periodic verification failed", metadata: ["error": .string(error.description)])
        }
    }
}
