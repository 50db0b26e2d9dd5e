import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Runs the cluster's background work every `interval` while the server runs, on the one node
/// holding the maintenance lease (`LeaseKeeper`): the maintenance sweep
/// (`KeyService.runMaintenance(under:)`: due destructions, scheduled rotations, deleting the
/// material of destroyed keys once every node has seen their destruction) and, every
/// `verifyInterval`, a verification of the store. Every write of that work is fenced by the
/// lease's token. Nodes without the lease do nothing but wait to take it over. Stops at
/// graceful shutdown. With audit retention, the same node archives and removes old audit
/// entries hourly.
///
/// Verification runs beside the sweep, not in its turn: a long walk of the audit log never
/// holds back a due destruction or rotation. It walks the audit chain from its start at
/// startup and every `fullVerifyInterval`, and in between resumes where the last walk of this
/// process ended (`AuditWalkPoint`), so that its cost is what was written since, not the size
/// of the whole log; every record is checked each time.
struct MaintenanceScheduler: Service {
    /// Between audit retention runs.
    static let retentionInterval: Duration = .seconds(3600)

    let slot: KeyServiceSlot
    let interval: Duration
    /// Between verifications of the store; nil: never.
    let verifyInterval: Duration?
    /// Between verifications that walk the audit chain from its start; nil: every one does.
    let fullVerifyInterval: Duration?
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
            // The lease keeper's first attempt is under way as this starts: waiting for it (up to
            // 2 s) lets the node that takes the lease verify the store at startup, while it is
            // quiet, rather than an interval later under load.
            if let lease {
                let started = ContinuousClock.now
                while lease.held == nil, ContinuousClock.now - started < .seconds(2), !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await sweeps() }
                if let verifyInterval { group.addTask { await verifications(every: verifyInterval) } }
            }
        }
    }

    /// The sweep every `interval`, and audit retention hourly, while this node holds the lease.
    private func sweeps() async {
        var retained: ContinuousClock.Instant? = nil
        while !Task.isCancelled {
            let held = lease?.held
            if lease == nil || held != nil {
                await sweep(held)
                if let retention, retained.map({ ContinuousClock.now - $0 >= Self.retentionInterval }) ?? true {
                    await retain(retention, held)
                    retained = ContinuousClock.now
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// A verification every `every` while this node holds the lease (checked each `interval`).
    private func verifications(every: Duration) async {
        var verified: ContinuousClock.Instant? = nil
        var fullWalk: ContinuousClock.Instant? = nil
        // Where the last walk ended (of the store it walked: another store, after a restore,
        // ignores it and is walked whole).
        var resume: AuditWalkPoint? = nil
        while !Task.isCancelled {
            if lease == nil || lease?.held != nil, verified.map({ ContinuousClock.now - $0 >= every }) ?? true {
                let full = fullVerifyInterval.map { interval in fullWalk.map { ContinuousClock.now - $0 >= interval } ?? true } ?? true
                let point = full ? nil : resume
                if point == nil { fullWalk = ContinuousClock.now }
                resume = await verify(slot.current, resumingAfter: point)
                verified = ContinuousClock.now
            }
            try? await Task.sleep(for: interval)
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

    /// Verifies every record and the audit chain (past `point` when given); a finding is logged
    /// as critical (it means the store was edited outside Keyward) and kept for
    /// `/v1/admin/maintenance`. Returns where the audit walk ended, nil after a problem or a
    /// failure (the next verification then walks from the start).
    private func verify(_ service: KeyService, resumingAfter point: AuditWalkPoint?) async -> AuditWalkPoint? {
        do {
            let (result, walked) = try await service.verifyStore(inBackground: true, resumingAfter: point)
            log.record(result)
            if result.isIntact {
                logger.notice("periodic verification: the store is intact", metadata: [
                    "keys": "\(result.keys)", "auditEntries": "\(result.audit.entries)",
                    "auditWalk": "\(result.audit.resumedAfter.map { "resumed after #\($0)" } ?? "from the start")",
                ])
            } else {
                for problem in result.allProblems {
                    logger.critical("periodic verification found a problem", metadata: ["problem": .string(problem)])
                }
            }
            return walked
        } catch {
            // Stopped by a shutdown: nothing failed.
            if !Task.isCancelled { logger.error("periodic verification failed", metadata: ["error": .string(error.description)]) }
            return nil
        }
    }
}
