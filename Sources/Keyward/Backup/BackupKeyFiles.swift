import Foundation
import KeywardCrypto

/// The text formats of the keys recipient backups use, read alike by the CLI and the server:
/// - a recipient public key (`keyward backup keygen`): `KEYWARD-PUBLIC-V1`, the spec (X25519 or
///   X-WING) and the raw key in base64, one per line; or an X25519 key in PEM;
/// - a recipient identity (the matching secret, kept offline or on the restoring server):
///   `KEYWARD-IDENTITY-V1`, the spec and the raw secret in base64;
/// - a store's backup signing public key (`keyward backup signer`): Ed25519 in PEM.
public enum BackupKeyFiles {
    /// A recipient public key from its file's text.
    public static func recipient(_ text: String) throws(KeywardError) -> PublicKey {
        let refusal = KeywardError.invalidArgument("not a backup recipient public key (from `keyward backup keygen`)")
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            do throws(KeywardCryptoError) { return try PublicKey(spec: .x25519, pem: text) } catch { throw refusal }
        }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 3, lines[0] == "KEYWARD-PUBLIC-V1", let raw = Data(base64Encoded: lines[2]),
              let spec = try? KeySpec(named: lines[1]), spec == .x25519 || spec == .xWing else { throw refusal }
        do throws(KeywardCryptoError) { return try PublicKey(spec: spec, bytes: [UInt8](raw)) } catch { throw refusal }
    }

    /// A recipient identity (secret) from its file's text.
    public static func identity(_ text: String) throws(KeywardError) -> KeyMaterial {
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.count >= 3, lines[0] == "KEYWARD-IDENTITY-V1", var secret = Data(base64Encoded: lines[2]).map([UInt8].init),
              let spec = try? KeySpec(named: lines[1]) else {
            throw .invalidArgument("not a Keyward backup identity (from `keyward backup keygen`)")
        }
        defer { SecureZero.wipe(&secret) }
        do throws(KeywardCryptoError) { return try KeyMaterial(spec: spec, importing: secret) } catch { throw .crypto(error) }
    }

    /// A store's backup signing public key from its PEM.
    public static func signer(_ pem: String) throws(KeywardError) -> PublicKey {
        do throws(KeywardCryptoError) { return try PublicKey(spec: .ed25519, pem: pem) } catch {
            throw .invalidArgument("not an Ed25519 public key in PEM (from `keyward backup signer`)")
        }
    }

    /// The text of a recipient identity file for `material` (an X25519 or X-Wing private key).
    /// The text holds the secret: write it only to a file of mode 0600.
    public static func identityText(_ material: borrowing KeyMaterial) -> String {
        let secret = material.secret.withSecretBytes(InsecureSecretAccess.token) { Data($0).base64EncodedString() }
        return "KEYWARD-IDENTITY-V1\n\(material.spec.rawValue)\n\(secret)\n"
    }

    /// The text of the public key file matching `material`.
    public static func recipientText(_ material: borrowing KeyMaterial) throws(KeywardError) -> String {
        let publicKey: PublicKey
        do throws(KeywardCryptoError) { publicKey = try material.publicKey() } catch { throw .crypto(error) }
        return publicKey.pem ?? "KEYWARD-PUBLIC-V1\n\(material.spec.rawValue)\n\(Data(publicKey.representation).base64EncodedString())\n"
    }
}
