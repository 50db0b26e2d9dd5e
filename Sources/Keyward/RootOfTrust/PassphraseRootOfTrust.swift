import Foundation
import KeywardCrypto

/// A root key derived from a passphrase with Argon2id (or scrypt / PBKDF2-SHA-256 for FIPS
/// settings); the KDF record is stored in the header, the passphrase nowhere. The KEK is
/// wrapped with AES-KWP (RFC 5649) under the derived root key.
public final class PassphraseRootOfTrust: RootOfTrust {
    public let kind = "passphrase"
    public let parameters: [UInt8]
    private let rootKey: KeyWrappingRootKey

    /// Derives the root key for a new store with fresh `kdf` parameters (default: Argon2id,
    /// 64 MiB, t = 3, p = 4).
    public convenience init(newStoreWith passphrase: borrowing SecretBytes, kdf: KDFParameters = .argon2idDefault()) throws(KeywardError) {
        try self.init(passphrase: passphrase, kdf: kdf)
    }

    /// Derives the root key of an existing store from its recorded `parameters`.
    public convenience init(passphrase: borrowing SecretBytes, storedParameters: [UInt8]) throws(KeywardError) {
        let kdf = try CanonicalJSON.decode(KDFParameters.self, from: storedParameters, what: "the store's KDF record")
        try self.init(passphrase: passphrase, kdf: kdf)
    }

    private init(passphrase: borrowing SecretBytes, kdf: KDFParameters) throws(KeywardError) {
        self.parameters = try CanonicalJSON.encode(kdf)
        do {
            self.rootKey = KeyWrappingRootKey(try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: kdf), rejection: "the passphrase is wrong")
        } catch {
            throw .crypto(error)
        }
    }

    public func wrap(_ kek: borrowing SecretBytes) throws(KeywardError) -> [UInt8] { try rootKey.wrap(kek) }

    public func unwrap(_ wrapped: [UInt8]) throws(KeywardError) -> SecretBytes { try rootKey.unwrap(wrapped) }
}
