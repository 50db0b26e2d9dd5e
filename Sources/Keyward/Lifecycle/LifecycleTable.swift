/// Everything a caller can ask of a key, cryptographic or administrative.
public enum ServiceOperation: String, Sendable, Codable, CaseIterable {
    case encrypt, decrypt, reEncrypt = "re-encrypt", generateDataKey = "generate-data-key"
    case generateDataKeyPair = "generate-data-key-pair"
    case sign, verify, mac, verifyMAC = "verify-mac"
    case deriveSharedSecret = "derive-shared-secret", decapsulate
    case publicKey = "public-key", describe, export
    case rotate, enable, disable, deactivate
    case scheduleDestruction = "schedule-destruction", cancelDestruction = "cancel-destruction"
    case markCompromised = "mark-compromised", destroy
    case update
    /// Bringing material into a key created for it, or deleting that material (AWS's
    /// GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial).
    case importMaterial = "import-material"
    /// Creating, listing, retiring and revoking the key's grants (`KeyService.createGrant`).
    case manageGrants = "manage-grants"
    /// Setting or removing the key's own policy (`KeyPolicy`; AWS's PutKeyPolicy).
    case setKeyPolicy = "set-key-policy"
    /// Creating or importing a key (checked against the new key's aliases and tags).
    case create
    /// Random bytes from the service (names no key).
    case random
    /// Administration: issuing, listing and revoking API tokens (a token issued is never given
    /// more than its issuer holds).
    case manageTokens = "manage-tokens"
    /// Administration: reading, querying and verifying the audit log.
    case readAudit = "read-audit"
    /// Administration: verifying every record of the store.
    case verifyStore = "verify-store"
    /// Administration: rotating the storage KEK.
    case rotateKEK = "rotate-kek"
    /// Administration: the maintenance sweep's status, and running it.
    case maintenance
    /// Administration: a backup of every key, sealed to a recipient the server's operator
    /// pinned in its configuration (never one the caller chooses).
    case backup
    /// Administration: restoring a backup signed by a store the server's operator trusts into
    /// an empty store.
    case restore

    /// Administrative operations: they act on the store, not on a key, so only a rule on every
    /// key (`*`) grants them.
    public static let administrative: Set<ServiceOperation> = [.manageTokens, .readAudit, .verifyStore, .rotateKEK, .maintenance, .backup, .restore]

    /// Operations that act on no existing key, so no lifecycle state applies to them.
    public static let keyless: Set<ServiceOperation> = Set<ServiceOperation>([.create, .random]).union(administrative)
}

/// The one table that says which operation each lifecycle state allows. `KeyService` consults
/// it before every operation, and a test checks every cell.
public enum LifecycleTable {
    /// Whether `operation` is allowed on a key in `state`.
    public static func allows(_ operation: ServiceOperation, in state: KeyState) -> Bool {
        if ServiceOperation.keyless.contains(operation) { return false }
        switch state {
        case .preActive:
            return [.describe, .enable, .update, .importMaterial, .manageGrants, .setKeyPolicy, .scheduleDestruction, .markCompromised, .publicKey].contains(operation)
        case .active:
            return ![.enable, .cancelDestruction, .destroy].contains(operation)
        case .disabled:
            return [.describe, .enable, .update, .importMaterial, .manageGrants, .setKeyPolicy, .deactivate, .scheduleDestruction, .markCompromised, .publicKey].contains(operation)
        case .deactivated:
            return [.describe, .decrypt, .verify, .verifyMAC, .publicKey, .update, .manageGrants, .setKeyPolicy, .scheduleDestruction, .markCompromised].contains(operation)
        case .compromised:
            return [.describe, .decrypt, .verify, .verifyMAC, .publicKey, .update, .manageGrants, .setKeyPolicy, .scheduleDestruction].contains(operation)
        case .pendingDestruction:
            return [.describe, .cancelDestruction, .destroy, .manageGrants, .setKeyPolicy].contains(operation)
        case .destroyed:
            return [.describe].contains(operation)
        }
    }

    /// The state an administrative operation moves a key to, from `state`; nil for operations
    /// that do not change the state.
    public static func target(of operation: ServiceOperation, from state: KeyState) -> KeyState? {
        switch operation {
        case .enable: return .active
        case .disable: return .disabled
        case .deactivate: return .deactivated
        case .markCompromised: return .compromised
        case .scheduleDestruction: return .pendingDestruction
        case .destroy: return .destroyed
        case .cancelDestruction: return .disabled
        default: return nil
        }
    }
}
