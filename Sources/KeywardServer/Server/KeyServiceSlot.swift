import Keyward
import Synchronization

/// The `KeyService` the server fronts, replaceable while it runs. When another process rotates
/// the store's KEK, the service that holds the old KEK stops writing (its writes are fenced,
/// `HeaderStore.fenceWrites`); `StoreWatcher` then opens the store again, unwrapping the new KEK
/// with the same root of trust, and puts the new service here. Requests already running finish
/// on the old one; every request after the swap uses the new one.
final class KeyServiceSlot: Sendable {
    private let service: Mutex<KeyService>

    /// A slot holding `service`.
    init(_ service: KeyService) { self.service = Mutex(service) }

    /// The service requests use now.
    var current: KeyService { service.withLock { $0 } }

    /// Puts `fresh` in place of the current service.
    func replace(_ fresh: KeyService) { service.withLock { $0 = fresh } }
}
