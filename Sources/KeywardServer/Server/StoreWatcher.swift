import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Picks up what other processes change in the store (a key disabled or marked compromised with
/// the CLI, an alias moved, a token revoked, the KEK rotated): every 250 ms it asks
/// `KeyService.refreshFromStore`, which compares the store's generation with the last one seen
/// and drops the cached keys when it moved; then the verified tokens are forgotten too. When the
/// KEK was rotated elsewhere and `reopen` is given, it opens the store again and swaps the new
/// service in (`KeyServiceSlot`), so the server goes on writing under the new KEK. Stops at
/// graceful shutdown.
///
/// After a poll that saw a change, and at least once a second, the node writes its heartbeat
/// with the generation it has caught up with (`KeyService.reportHeartbeat`), which a destruction
/// waits for on every live node before it deletes key material (`DestructionBarrier`).
///
/// Each successful poll confirms the caches (keys in `KeyService`, verified tokens here) as of
/// when it began; with a coherence bound (`KeyService.Options.coherenceBound`,
/// `TokenAuthenticator.coherenceBound`, 1 s in `keyward serve`), a node whose polls fail or
/// stall stops answering from its caches once the bound passes, and reads through instead.
struct StoreWatcher: Service {
    let slot: KeyServiceSlot
    let tokens: TokenAuthenticator
    let reopen: (@Sendable () async throws(KeywardError) -> KeyService)?
    let logger: Logger
    static let interval = Duration.milliseconds(250)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var polls = 0
            while !Task.isCancelled {
                do throws(KeywardError) {
                    let asked = DispatchTime.now().uptimeNanoseconds
                    let service = slot.current
                    let changed = try await service.refreshFromStore()
                    if changed { tokens.forgetAll() }
                    tokens.confirm(asked)
                    polls += 1
                    // The heartbeat says what this node has caught up with (a destruction
                    // waits for it): at once after a change, otherwise once a second.
                    if changed || polls % 4 == 0 { try await service.reportHeartbeat() }
                } catch {
                    logger.warning("store generation could not be read", metadata: ["error": .string(error.description)])
                }
                await adoptRotatedKEK()
                try? await Task.sleep(for: Self.interval)
            }
        }
    }

    /// Swaps in a service opened on the rotated store, when the current one holds a KEK another
    /// process retired. A failure (the root of trust unavailable, say) is logged and tried again
    /// at the next poll; meanwhile requests get 503 with the reason.
    private func adoptRotatedKEK() async {
        let stale = slot.current
        guard let reopen, stale.kekRotatedElsewhere else { return }
        do throws(KeywardError) {
            let fresh = try await reopen()
            slot.replace(fresh)
            tokens.forgetAll()
            logger.notice("took up the KEK another process rotated", metadata: ["kek": .string(fresh.header.activeKEK.description)])
        } catch {
            logger.error("the store could not be opened again under its new KEK", metadata: ["error": .string(error.description)])
        }
    }
}
