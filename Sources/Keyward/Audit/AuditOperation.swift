/// Every operation an audit entry can name: the closed set, so no entry is labelled by a string
/// made up at its call site.
public enum AuditOperation: Sendable, Hashable, CustomStringConvertible {
    /// An operation on keys, as access policies name it.
    case key(ServiceOperation)
    /// A page of the key list.
    case listKeys
    /// Creating or moving an alias.
    case setAlias
    /// Removing an alias.
    case deleteAlias
    /// Unwrapping imported material with a store-issued wrapping key.
    case importUnwrap
    /// Issuing an API token.
    case issueToken
    /// Revoking an API token.
    case revokeToken
    /// Replacing an API token's policy.
    case changeTokenPolicy
    /// Writing a backup bundle.
    case createBackup
    /// Restoring one key from a backup bundle.
    case restoreKey
    /// Creating the store.
    case initializeStore
    /// Rotating the storage KEK.
    case rotateKEK
    /// Reserving a block of a version's encryption budget (the version row's new revision is
    /// anchored, so an older row cannot be put back to reuse nonces).
    case reserveEncryptions
    /// The audit sequencer refusing an intake row whose MAC fails (forged or edited): the row is
    /// not chained, and this entry, naming it, is chained in its place.
    case rejectIntake
    /// A front-end request that reached no key operation (refused credentials, malformed input,
    /// rate limits, system routes).
    case request

    /// The name stored in the audit entry.
    public var description: String {
        switch self {
        case .key(let operation): operation.rawValue
        case .listKeys: "list"
        case .setAlias: "set-alias"
        case .deleteAlias: "delete-alias"
        case .importUnwrap: "import-unwrap"
        case .issueToken: "token-issue"
        case .revokeToken: "token-revoke"
        case .changeTokenPolicy: "token-policy"
        case .createBackup: "backup-create"
        case .restoreKey: "restore"
        case .initializeStore: "init-store"
        case .rotateKEK: "kek-rotate"
        case .reserveEncryptions: "reserve-encryptions"
        case .rejectIntake: "audit-intake-rejected"
        case .request: "request"
        }
    }
}
