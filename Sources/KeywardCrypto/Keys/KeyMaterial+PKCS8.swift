import Crypto
import CryptoExtras
import Foundation

extension KeyMaterial {
    /// The private key as PKCS #8 DER (`PrivateKeyInfo`), the form AWS KMS and most tools
    /// exchange private keys in, in locked memory. For ECDSA/ECDH (P-256, P-384, P-521),
    /// Ed25519, X25519 and RSA keys.
    ///
    /// - Throws: `invalidKeyMaterial` for symmetric, HMAC and post-quantum keys.
    public func pkcs8() throws(KeywardCryptoError) -> SecretBytes {
        let spec = self.spec
        var der = try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> Data in
            do {
                switch spec {
                case .ecdsaP256, .ecdhP256: return try P256.Signing.PrivateKey(rawRepresentation: raw).pkcs8DERRepresentation
                case .ecdsaP384, .ecdhP384: return try P384.Signing.PrivateKey(rawRepresentation: raw).pkcs8DERRepresentation
                case .ecdsaP521: return try P521.Signing.PrivateKey(rawRepresentation: raw).pkcs8DERRepresentation
                case .ed25519: return try Curve25519.Signing.PrivateKey(rawRepresentation: raw).pkcs8DERRepresentation
                case .x25519: return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).pkcs8DERRepresentation
                case _ where spec.rsaBits != nil:
                    return try _RSA.Signing.PrivateKey(derRepresentation: raw).pkcs8DERRepresentation
                default: throw KeywardCryptoError.invalidKeyMaterial(spec: spec, reason: "symmetric, HMAC and post-quantum keys have no PKCS #8 form here")
                }
            } catch let error as KeywardCryptoError {
                throw error
            } catch {
                throw .invalidKeyMaterial(spec: spec, reason: "the key does not encode as PKCS #8")
            }
        }
        defer { der.wipe() }
        return try SecretBytes(copying: der)
    }
}
