import KeywardCrypto

/// Where a store's trust starts: something that wraps and unwraps the storage KEK with a root
/// key the database never holds. Like age's `Recipient`/`Identity`, two methods carry it.
///
/// Conformers: `PassphraseRootOfTrust` (Argon2id), `KeyFileRootOfTrust` (a 0600 file).
public protocol RootOfTrust: Sendable {
    /// The kind recorded in the store header: `passphrase`, `key-file`, `pkcs11`.
    var kind: String { get }
    /// Public parameters recorded in the header so the store can be opened again (a KDF record,
    /// a key fingerprint, a token label). Never secret.
    var parameters: [UInt8] { get }
    /// Wraps a KEK under the root key.
    func wrap(_ kek: borrowing SecretBytes) throws(KeywardError) -> [UInt8]
    /// Unwraps a KEK; a wrong root key is `rootOfTrustRejected`.
    func unwrap(_ wrapped: [UInt8]) throws(KeywardError) -> SecretBytes
}
