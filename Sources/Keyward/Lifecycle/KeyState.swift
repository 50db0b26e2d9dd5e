/// A key's lifecycle state (NIST SP 800-57 Part 1, section 7).
///
/// ```
/// preActive -> active <-> disabled -> deactivated ...
/// any live state -> compromised
/// any live state -> pendingDestruction (7 to 30 days, cancelable) -> destroyed
/// ```
public enum KeyState: String, Sendable, Codable, CaseIterable {
    /// Created but not yet usable (for example imported material awaiting activation).
    case preActive = "pre-active"
    /// In use: the newest version encrypts and signs; all versions down to the minimum decrypt.
    case active
    /// Suspended by an operator; no cryptographic use until enabled again.
    case disabled
    /// Retired from protecting new data; may still decrypt and verify what it protected.
    case deactivated
    /// Suspected or known to be disclosed; only decrypt and verify, to migrate data away.
    case compromised
    /// Waiting out its destruction period; nothing but cancellation is allowed.
    case pendingDestruction = "pending-destruction"
    /// Material zeroized and deleted; only a tombstone remains.
    case destroyed
}
