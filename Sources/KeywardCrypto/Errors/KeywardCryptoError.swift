/// Every failure `KeywardCrypto` reports.
///
/// Messages name the spec, the operation or the field at fault and say what to do; they never
/// carry key bytes, plaintext, passphrases or derived secrets.
public enum KeywardCryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The ciphertext is malformed, was altered, or was made under another key, version or
    /// encryption context. Deliberately one case: a caller learns nothing about which check failed
    /// beyond the `reason`, which names only public structure (lengths, format bytes, key ids).
    case invalidCiphertext(reason: String)
    /// The key's spec serves another purpose (one key, one purpose).
    case wrongPurpose(spec: KeySpec, operation: KeyOperation)
    /// The operation fits the key's purpose, but this spec does not offer this form of it
    /// (for example signing a pre-computed digest with Ed25519).
    case unsupportedOperation(spec: KeySpec, operation: KeyOperation, reason: String)
    /// Imported or stored key material does not form a valid key of the given spec.
    case invalidKeyMaterial(spec: KeySpec, reason: String)
    /// A public key (own or peer) cannot be parsed or is not on the expected curve.
    case invalidPublicKey(spec: KeySpec, reason: String)
    /// An argument is out of range or malformed.
    case invalidParameter(name: String, reason: String)
    /// Key-derivation parameters are below Keyward's minimums.
    case weakKDFParameters(reason: String)
    /// A spec name that Keyward does not know.
    case unknownSpec(String)
    /// Locked, non-dumpable memory for key bytes could not be had.
    case secureMemoryUnavailable(reason: String)
    /// The underlying primitive failed in a way the inputs do not explain.
    case primitiveFailure(operation: String, reason: String)

    public var description: String {
        switch self {
        case .invalidCiphertext(let reason):
            return "invalid ciphertext: \(reason)"
        case .wrongPurpose(let spec, let operation):
            return "key spec \(spec.rawValue) is for \(spec.purpose.rawValue), not \(operation.rawValue); use a key created for \(operation.purpose.rawValue)"
        case .unsupportedOperation(let spec, let operation, let reason):
            return "\(operation.rawValue) is not available for key spec \(spec.rawValue): \(reason)"
        case .invalidKeyMaterial(let spec, let reason):
            return "invalid key material for \(spec.rawValue): \(reason)"
        case .invalidPublicKey(let spec, let reason):
            return "invalid public key for \(spec.rawValue): \(reason)"
        case .invalidParameter(let name, let reason):
            return "invalid \(name): \(reason)"
        case .weakKDFParameters(let reason):
            return "key-derivation parameters refused: \(reason)"
        case .unknownSpec(let name):
            return "unknown key spec '\(name)'; known specs: \(KeySpec.allCases.map(\.rawValue).joined(separator: ", "))"
        case .secureMemoryUnavailable(let reason):
            return "cannot allocate locked memory for key bytes: \(reason)"
        case .primitiveFailure(let operation, let reason):
            return "\(operation) failed: \(reason)"
        }
    }
}

/// Runs `body`, passing `KeywardCryptoError`s through and turning any other error into `mapped`.
@inline(__always)
func mapping<T>(
    _ mapped: @autoclosure () -> KeywardCryptoError,
    _ body: () throws -> T
) throws(KeywardCryptoError) -> T {
    do {
        return try body()
    } catch let error as KeywardCryptoError {
        throw error
    } catch {
        throw mapped()
    }
}
