import Foundation
import Keyward
import Logging
import ServiceLifecycle
import Synchronization

/// Holds, or waits for, the cluster's maintenance lease (`MaintenanceLease`): every third of
/// `duration` it takes or renews the lease in the store, so exactly one node runs the
/// background work, and another takes it over within `duration` of the holder's death or
/// pause. At graceful shutdown it gives the lease up, so the work moves at once.
///
/// `held` is the lease only while this node may start work under it: renewed less than
/// `duration` ago by this process's monotonic clock (which counts time spent paused). A
/// node that wakes past that starts nothing; what it was already doing is stopped by the
/// fencing token each of its writes checks (`LeaseFence`).
final class LeaseKeeper: Service, Sendable {
    let slot: KeyServiceSlot
    let duration: Duration
    let logger: Logger
    private let state = Mutex<(lease: Lease, renewed: ContinuousClock.Instant)?>(nil)

    init(slot: KeyServiceSlot, duration: Duration, logger: Logger) {
        self.slot = slot
        self.duration = duration
        self.logger = logger
    }

    /// The lease, while this node holds it and may start work under it.
    var held: Lease? {
        state.withLock { current in
            guard let current, ContinuousClock.now - current.renewed < duration else { return nil }
            return current.lease
        }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.renew()
                try? await Task.sleep(for: self.duration / 3)
            }
        }
        if let lease = state.withLock({ $0?.lease }) {
            try? await slot.current.releaseLease(lease)
            logger.notice("released the maintenance lease", metadata: ["token": "\(lease.token)"])
        }
    }

    private func renew() async {
        let asked = ContinuousClock.now
        let before = state.withLock { $0?.lease }
        do throws(KeywardError) {
            let lease = try await slot.current.acquireLease(MaintenanceLease.name, duration: duration)
            state.withLock { $0 = lease.map { ($0, asked) } }
            if let lease, before?.token != lease.token {
                logger.notice("took the maintenance lease: this node runs the cluster's background work", metadata: ["token": "\(lease.token)"])
            } else if lease == nil, let before {
                logger.notice("lost the maintenance lease to another node", metadata: ["token": "\(before.token)"])
            }
        } catch {
            logger.warning("the maintenance lease could not be renewed", metadata: ["error": .string(error.description)])
        }
    }
}
