import Foundation
import KeywardCrypto

/// Encryption to an RSA-OAEP key: the bare RSA-OAEP-SHA-256 ciphertext any OAEP
/// implementation produces and opens (as AWS KMS's RSAES_OAEP_SHA_256), not Keyward's
/// ciphertext format. It names no key, so decryption names the key; the key's newest version
/// encrypts, and decryption tries the versions from the newest down to the minimum decryption
/// version. No encryption context: RSA-OAEP has none.
extension KeyService {
    /// Encrypts a short `plaintext` (at most the modulus size minus 66 bytes) to the RSA-OAEP
    /// key's newest version.
    public func encryptAsymmetric(_ plaintext: [UInt8], key reference: String, actor: Caller) async throws(KeywardError) -> EncryptResult {
        try await withUsableKey(reference, .encrypt, purpose: .encrypt, caller: actor) { (key, event) throws(KeywardError) -> EncryptResult in
            try requireRSA(key)
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            event.version = version.number
            do throws(KeywardCryptoError) {
                return EncryptResult(ciphertext: try version.material.publicKey().encrypt(plaintext), keyID: key.row.id, version: version.number)
            } catch {
                throw .crypto(error)
            }
        }
    }

    /// Decrypts an RSA-OAEP-SHA-256 ciphertext made to the key's public key (any version it
    /// may still decrypt with). One error for every failure: no padding oracle.
    public func decryptAsymmetric(_ ciphertext: [UInt8], key reference: String, actor: Caller) async throws(KeywardError) -> DecryptResult {
        try await withUsableKey(reference, .decrypt, purpose: .decrypt, caller: actor) { (key, event) throws(KeywardError) -> DecryptResult in
            try requireRSA(key)
            var number = key.metadata.currentVersion
            while number >= key.metadata.minDecryptionVersion, number >= 1 {
                let version = try await records.loadVersion(key, number)
                if let plaintext = try? version.material.decryptOAEP(ciphertext) {
                    event.version = number
                    return DecryptResult(plaintext: plaintext, keyID: key.row.id, version: number)
                }
                number -= 1
            }
            throw .crypto(.invalidCiphertext(reason: "RSA-OAEP decryption failed"))
        }
    }

    private func requireRSA(_ key: LoadedKey) throws(KeywardError) {
        guard key.metadata.spec.rsaBits != nil else {
            throw .crypto(.unsupportedOperation(spec: key.metadata.spec, operation: .encrypt,
                                                reason: "only RSA-OAEP keys encrypt asymmetrically; symmetric keys use encrypt and decrypt"))
        }
    }
}
