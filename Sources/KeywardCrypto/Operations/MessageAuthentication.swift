import Crypto
import Foundation

extension KeyMaterial {
    /// The full-length HMAC tag of `message` (32, 48 or 64 bytes).
    ///
    /// - Throws: `wrongPurpose` for keys that are not HMAC keys.
    public func mac(_ message: some DataProtocol) throws(KeywardCryptoError) -> [UInt8] {
        try spec.check(.mac)
        let spec = self.spec
        return secret.withSecretBytes(InsecureSecretAccess.token) { raw in
            let key = SymmetricKey(data: raw)
            switch spec {
            case .hmacSHA384: return [UInt8](HMAC<SHA384>.authenticationCode(for: message, using: key))
            case .hmacSHA512: return [UInt8](HMAC<SHA512>.authenticationCode(for: message, using: key))
            default: return [UInt8](HMAC<SHA256>.authenticationCode(for: message, using: key))
            }
        }
    }

    /// Whether `tag` is this key's full-length HMAC of `message`, compared in constant time.
    /// A tag of the wrong length (including a truncated tag) is not valid.
    ///
    /// - Throws: `wrongPurpose` for keys that are not HMAC keys.
    public func verifyMAC(_ tag: some DataProtocol, for message: some DataProtocol) throws(KeywardCryptoError) -> Bool {
        try spec.check(.verifyMAC)
        let expected = try mac(message)
        return ConstantTime.equals(expected, [UInt8](tag))
    }
}
