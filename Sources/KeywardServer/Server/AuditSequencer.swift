import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Chains the store's audit intake into the log (decision 0034) on the one node holding the
/// maintenance lease (`LeaseKeeper`): every `interval` it takes what waits, a batch per
/// transaction fenced by the lease's token, so a node paused past its lease chains nothing. At
/// graceful shutdown the holder drains the intake once more before it gives the lease up.
/// Nodes without the lease follow the chain as the store watcher reads it.
struct AuditSequencer: Service {
    let slot: KeyServiceSlot
    let lease: LeaseKeeper
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.sequence()
                try? await Task.sleep(for: self.interval)
            }
        }
        await sequence()
    }

    private func sequence() async {
        guard let held = lease.held else {
            slot.current.standDownAsAuditSequencer()
            return
        }
        do {
            _ = try await slot.current.sequenceAudit(under: held)
        } catch {
            if case .storage(.leaseLost) = error {
                logger.notice("audit sequencing stopped: the lease passed to another node", metadata: ["token": "\(held.token)"])
            } else {
                logger.error("audit sequencing failed", metadata: ["error": .string(error.description)])
            }
        }
    }
}
