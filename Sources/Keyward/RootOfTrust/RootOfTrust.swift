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

/// A root key held in `SecretBytes` that wraps KEKs with AES-KWP (RFC 5649): what the
/// passphrase and key-file roots of trust share.
struct KeyWrappingRootKey: Sendable {
    private let box: SecretBox
    /// What to say when unwrapping fails (the root key is not the store's).
    let rejection: String

    init(_ key: consuming SecretBytes, rejection: String) {
        self.box = SecretBox(key)
        self.rejection = rejection
    }

    func wrap(_ kek: borrowing SecretBytes) throws(KeywardError) -> [UInt8] {
        do { return try KeyWrap.wrap(kek, kek: box.secret, mode: .rfc5649) } catch { throw .crypto(error) }
    }

    func unwrap(_ wrapped: [UInt8]) throws(KeywardError) -> SecretBytes {
        do { return try KeyWrap.unwrap(wrapped, kek: box.secret, mode: .rfc5649) } catch { throw .rootOfTrustRejected(rejection) }
    }

    /// Runs `body` with the root key's bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(KeywardCryptoError) -> R) throws(KeywardCryptoError) -> R {
        try box.secret.withSecretBytes(InsecureSecretAccess.token, body)
    }
}

/// Secret bytes held by reference.
final class SecretBox: Sendable {
    let secret: SecretBytes
    init(_ secret: consuming SecretBytes) { self.secret = secret }
}
