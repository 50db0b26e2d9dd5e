import Keyward
import Logging
import ServiceLifecycle

/// Picks up what other processes change in the store (a key disabled or marked compromised with
/// the CLI, an alias moved, a token revoked): every 250 ms it asks `KeyService.refreshFromStore`,
/// which compares the store's generation with the last one seen and drops the cached keys when it
/// moved; then the verified tokens are forgotten too. Stops at graceful shutdown.
struct StoreWatcher: Service {
    let service: KeyService
    let tokens: TokenAuthenticator
    let logger: Logger
    static let interval = Duration.milliseconds(250)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do throws(KeywardError) {
                    if try await service.refreshFromStore() { tokens.forgetAll() }
                } catch {
                    logger.warning("store generation could not be read", metadata: ["error": .string(error.description)])
                }
                try? await Task.sleep(for: Self.interval)
            }
        }
    }
}
