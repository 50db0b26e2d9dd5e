import Keyward
import Logging
import ServiceLifecycle

/// Runs `KeyService.runMaintenance()` every `interval` while the server runs, so keys are
/// destroyed and rotated on schedule whether or not any request touches them. Stops at
/// graceful shutdown.
struct MaintenanceScheduler: Service {
    let slot: KeyServiceSlot
    let interval: Duration
    /// Where each sweep's result is kept for `/v1/admin/maintenance`.
    let log: MaintenanceLog
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sweep()
                try? await Task.sleep(for: interval)
            }
        }
    }

    private func sweep() async {
        do {
            let report = try await slot.current.runMaintenance()
            log.record(report)
            if report.destroyed > 0 || report.rotated > 0 {
                logger.notice("maintenance", metadata: ["destroyed": "\(report.destroyed)", "rotated": "\(report.rotated)", "keys": "\(report.keys)"])
            }
            for failure in report.failures { logger.error("maintenance failed", metadata: ["failure": .string(failure)]) }
        } catch {
            logger.error("maintenance sweep failed", metadata: ["error": .string(error.description)])
        }
    }
}
