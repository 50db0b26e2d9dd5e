import Foundation
import KeywardCrypto

/// A root key read from a file of exactly 32 random bytes, which must not be readable or
/// writable by group or others (mode 0600 or stricter). The header records the key's
/// fingerprint (SHA-256 of HKDF(key, "keyward/v1/key-file-id")), so a wrong file is named as such.
public final class KeyFileRootOfTrust: RootOfTrust {
    public let kind = "key-file"
    public let parameters: [UInt8]
    private let rootKey: KeyWrappingRootKey

    /// Reads the root key from `path`.
    ///
    /// - Throws: `rootOfTrustRejected` when the file is missing, not 32 bytes, or its permissions
    ///   are wider than 0600.
    public init(path: String) throws(KeywardError) {
        let (fd, size) = try SecretFile.open(path, "the key file", rejection: KeywardError.rootOfTrustRejected)
        defer { close(fd) }
        guard size == 32 else {
            throw .rootOfTrustRejected("the key file \(path) holds \(size) bytes; it must hold exactly 32 random bytes")
        }
        // Read straight into locked memory: the key never passes through an ordinary buffer.
        let secret: SecretBytes
        do {
            secret = try SecretBytes(count: 32) { buffer in
                var filled = 0
                while filled < 32 {
                    let got = read(fd, buffer.baseAddress! + filled, 32 - filled)
                    guard got > 0 else { throw KeywardError.rootOfTrustRejected("cannot read the key file \(path)") }
                    filled += got
                }
            }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .rootOfTrustRejected("cannot hold the key file's key: \(error)")
        }
        do {
            let key = KeyWrappingRootKey(secret, rejection: "this key file is not the one the store was created with")
            self.rootKey = key
            let fingerprint = try key.withBytes { (raw) throws(KeywardCryptoError) -> [UInt8] in
                let derived = try KeyDerivation.hkdf(.sha256, inputKeyMaterial: raw, salt: [UInt8](), info: Array("keyward/v1/key-file-id".utf8), outputByteCount: 16)
                return derived.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            }
            self.parameters = try CanonicalJSON.encode(["fingerprint": fingerprint.map { String(format: "%02x", $0) }.joined()])
        } catch let error as KeywardCryptoError {
            throw .crypto(error)
        } catch {
            throw .rootOfTrustRejected("\(error)")
        }
    }

    /// Writes a new key file of 32 random bytes with mode 0600; refuses to overwrite.
    public static func generate(at path: String) throws(KeywardError) {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw .invalidArgument("\(path) exists; refusing to overwrite a key file")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw .invalidArgument("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        do {
            let secret = try SecretBytes.random(count: 32)
            let written = secret.withSecretBytes(InsecureSecretAccess.token) { write(fd, $0.baseAddress, 32) }
            guard written == 32, fsync(fd) == 0 else { throw KeywardError.invalidArgument("cannot write \(path)") }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .invalidArgument("cannot write \(path): \(error)")
        }
    }

    public func wrap(_ kek: borrowing SecretBytes) throws(KeywardError) -> [UInt8] { try rootKey.wrap(kek) }

    public func unwrap(_ wrapped: [UInt8]) throws(KeywardError) -> SecretBytes { try rootKey.unwrap(wrapped) }
}
