/// What a key is for. Every `KeySpec` has exactly one purpose (one key, one purpose), and every
/// `KeyOperation` belongs to exactly one purpose.
public enum KeyPurpose: String, Sendable, Codable, CaseIterable {
    /// Encrypt and decrypt (symmetric AEAD, or RSA-OAEP).
    case encrypt
    /// Compute and verify message authentication codes.
    case mac
    /// Sign and verify.
    case sign
    /// Derive a shared secret with a peer's public key (ECDH, X25519).
    case keyAgreement = "key-agreement"
    /// Key encapsulation: encapsulate to the public key, decapsulate with the private key.
    case kem
}

/// An operation a caller asks of a key; `KeySpec.check(_:)` refuses one of another purpose.
public enum KeyOperation: String, Sendable, Codable, CaseIterable {
    case encrypt, decrypt
    case sign, verify
    case mac, verifyMAC = "verify-mac"
    case deriveSharedSecret = "derive-shared-secret"
    case encapsulate, decapsulate

    /// The purpose this operation belongs to.
    public var purpose: KeyPurpose {
        switch self {
        case .encrypt, .decrypt: .encrypt
        case .sign, .verify: .sign
        case .mac, .verifyMAC: .mac
        case .deriveSharedSecret: .keyAgreement
        case .encapsulate, .decapsulate: .kem
        }
    }
}
