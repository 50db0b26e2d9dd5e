import KeywardCrypto
import KeywardStorage

/// Every failure the `Keyward` library reports, with a message a user can act on. Messages name
/// keys, aliases, versions, states and operations; never key bytes, plaintext or passphrases.
public enum KeywardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No key with this id or alias.
    case keyNotFound(String)
    /// The key's state does not allow the operation.
    case wrongState(key: KeyID, state: KeyState, operation: ServiceOperation)
    /// The key (or the version a ciphertext names) has been destroyed.
    case keyDestroyed(key: KeyID, version: UInt32?)
    /// The version is below the key's minimum decryption version, or does not exist.
    case versionUnavailable(key: KeyID, version: UInt32, reason: String)
    /// Data failed its integrity check: a stored record (an edited, swapped or replayed row), a
    /// backup or an audit segment. The message names which, and what is wrong with it.
    case integrityFailure(String)
    /// The store could not be opened with this root of trust (wrong passphrase, key file, token).
    case rootOfTrustRejected(String)
    /// A backup could not be opened with this passphrase or identity.
    case backupRejected(String)
    /// The store holds no header: it was never initialised.
    case storeEmpty
    /// The store is in a state that does not allow the call (already initialised, not empty).
    case storeState(String)
    /// An argument is invalid.
    case invalidArgument(String)
    /// The alias to create already names a key.
    case aliasTaken(String)
    /// The caller named a key (`named`, as it named it) and the ciphertext was made under
    /// another (`ciphertextKey`).
    case ciphertextKeyMismatch(ciphertextKey: KeyID, named: String)
    /// A quota is reached (the aliases of one key); the message says which and what to do.
    case limitExceeded(String)
    /// The audit entry could not be written, so the operation was not performed.
    case auditUnavailable(String)
    /// Not allowed by policy (export of a non-exportable key, signing key in plaintext, ...).
    case notPermitted(String)
    /// A presented credential is malformed, unknown, revoked or expired.
    case unauthenticated(String)
    /// The caller's policy does not grant the operation on this key.
    case accessDenied(principal: String, operation: ServiceOperation, key: String?)
    /// A failure of the cryptographic layer.
    case crypto(KeywardCryptoError)
    /// A failure of the storage layer.
    case storage(StorageError)

    /// How the store failed, for front ends that answer in their own protocol's terms without
    /// knowing the store's type; nil for every failure that is not the store's.
    public var storeFault: StoreFault? {
        guard case .storage(let error) = self else { return nil }
        switch error {
        case .conflict, .leaseLost: return .conflict
        case .unavailable, .staleKEK: return .unavailable
        case .corrupted: return .corrupted
        case .alreadyInitialized, .database: return .failed
        }
    }

    /// A store failure, as front ends answer it.
    public enum StoreFault: Sendable, Equatable {
        /// A concurrent change won a compare-and-swap race: retrying may succeed.
        case conflict
        /// The store cannot be reached now.
        case unavailable
        /// A row does not have the shape the schema promises.
        case corrupted
        /// Any other failure of the store.
        case failed
    }

    public var description: String {
        switch self {
        case .keyNotFound(let name): "no key '\(name)' in this store"
        case .wrongState(let key, let state, let operation): "key \(key) is \(state.rawValue), which does not allow \(operation.rawValue)"
        case .keyDestroyed(let key, let version): version.map { "version \($0) of key \(key) has been destroyed; data under it cannot be recovered" } ?? "key \(key) has been destroyed"
        case .versionUnavailable(let key, let version, let reason): "version \(version) of key \(key) is unavailable: \(reason)"
        case .integrityFailure(let what): "integrity check failed: \(what)"
        case .rootOfTrustRejected(let why): "cannot open the store: \(why)"
        case .backupRejected(let why): "cannot open the backup: \(why)"
        case .storeEmpty: "the store is empty (it has no header)"
        case .storeState(let why): why
        case .invalidArgument(let why): "invalid argument: \(why)"
        case .aliasTaken(let alias): "the alias \(alias) already exists"
        case .ciphertextKeyMismatch(let ciphertextKey, let named): "the ciphertext was made under key \(ciphertextKey), not \(named)"
        case .limitExceeded(let why): "limit exceeded: \(why)"
        case .auditUnavailable(let why): "the audit log could not be written, so the operation was refused: \(why)"
        case .notPermitted(let why): "not permitted: \(why)"
        case .unauthenticated(let why): "not authenticated: \(why)"
        case .accessDenied(let principal, let operation, let key):
            "\(principal) may not \(operation.rawValue)\(key.map { " with key \($0)" } ?? ""); its policy does not grant it"
        case .crypto(let error): error.description
        case .storage(let error): error.description
        }
    }
}

extension KeywardError {
    /// This error, with a refusal of key `id` naming it `reference` instead (the words the caller
    /// used for it); any other error unchanged. Nil `reference`: unchanged.
    func naming(_ id: KeyID, as reference: String?) -> KeywardError {
        guard let reference, case .accessDenied(let principal, let operation, let key) = self, key == id.description else { return self }
        return .accessDenied(principal: principal, operation: operation, key: reference)
    }
}
