import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Chains the store's audit intake into the log (decision 0034) on the one node holding the
/// maintenance lease (`LeaseKeeper`): it takes what waits, a batch per transaction fenced by the
/// lease's token, so a node paused past its lease chains nothing. It looks again after `interval`
/// while it finds entries, and backs off to `idleInterval` while the intake stays empty (an
/// entry then waits at most that long). At graceful shutdown the holder drains the intake once
/// more before it gives the lease up. Nodes without the lease follow the chain as the store
/// watcher reads it.
struct AuditSequencer: Service {
    let slot: KeyServiceSlot
    let lease: LeaseKeeper
    let interval: Duration
    let idleInterval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait = self.interval
            while !Task.isCancelled {
                let taken = await self.sequence()
                wait = taken > 0 ? self.interval : min(wait * 2, self.idleInterval)
                try? await Task.sleep(for: wait)
            }
        }
        _ = await sequence()
    }

    /// One pass; returns how many intake rows it chained.
    private func sequence() async -> Int {
        guard let held = lease.held else {
            slot.current.standDownAsAuditSequencer()
            return 0
        }
        do {
            return try await slot.current.sequenceAudit(under: held)
        } catch {
            if case .storage(.leaseLost) = error {
                logger.notice("audit sequencing stopped: the lease passed to another node", metadata: ["token": "\(held.token)"])
            } else {
                logger.error("audit sequencing failed", metadata: ["error": .string(error.description)])
            }
            return 0
        }
    }
}
