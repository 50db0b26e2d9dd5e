import Crypto
import Foundation

/// Private keys for TLS certificates that Keyward issues itself (the development CA and the
/// certificates it signs). They are not Keyward keys: they live in PEM files beside the
/// certificates, as TLS servers and clients expect.
public enum TLSPrivateKey {
    /// A fresh P-256 private key as PKCS#8 PEM.
    public static func generateP256PEM() -> String {
        P256.Signing.PrivateKey().pemRepresentation
    }
}
