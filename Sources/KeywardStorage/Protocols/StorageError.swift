import Foundation

/// Failures of the storage layer.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store file or database cannot be opened or created.
    case unavailable(String)
    /// A write lost a compare-and-swap race or broke a uniqueness rule.
    case conflict(String)
    /// The store already has a header.
    case alreadyInitialized
    /// A row does not have the shape the schema promises (edited or corrupted database).
    case corrupted(String)
    /// Any other database failure, with the database's message.
    case database(String)
    /// A write under a KEK another process has since rotated away (`HeaderStore.fenceWrites`):
    /// nothing was written; the process must open the store again to write.
    case staleKEK(String)
    /// A write fenced by a lease (`LeaseFence`) that has lapsed or passed to another node:
    /// nothing was written.
    case leaseLost(String)

    public var description: String {
        switch self {
        case .unavailable(let message): "key store unavailable: \(message)"
        case .conflict(let message): "conflicting update: \(message); retry the operation"
        case .alreadyInitialized: "the store is already initialised"
        case .corrupted(let message): "the key store is corrupted: \(message)"
        case .database(let message): "database error: \(message)"
        case .staleKEK(let message): "the store's KEK changed: \(message); restart this process (or open the store again) to write"
        case .leaseLost(let message): "the background-work lease was lost: \(message); another node holds it now, nothing was written"
        }
    }
}
