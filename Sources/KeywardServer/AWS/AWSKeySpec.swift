import Keyward
import KeywardCrypto

/// Keyward's key specs in AWS KMS's names: `KeySpec` with `KeyUsage`, and the algorithms each
/// serves.
enum AWSKeySpec {
    /// The Keyward spec for an AWS `KeySpec` and `KeyUsage`; nil when Keyward has none.
    static func keyward(_ spec: String, usage: String) -> KeySpec? {
        switch (spec, usage) {
        case ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"): .aes256GCM
        case ("HMAC_256", "GENERATE_VERIFY_MAC"): .hmacSHA256
        case ("HMAC_384", "GENERATE_VERIFY_MAC"): .hmacSHA384
        case ("HMAC_512", "GENERATE_VERIFY_MAC"): .hmacSHA512
        case ("ECC_NIST_P256", "SIGN_VERIFY"): .ecdsaP256
        case ("ECC_NIST_P384", "SIGN_VERIFY"): .ecdsaP384
        case ("ECC_NIST_P521", "SIGN_VERIFY"): .ecdsaP521
        case ("ECC_NIST_P256", "KEY_AGREEMENT"): .ecdhP256
        case ("ECC_NIST_P384", "KEY_AGREEMENT"): .ecdhP384
        case ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"): .ed25519
        case ("RSA_2048", "SIGN_VERIFY"): .rsa2048PSSSHA256
        case ("RSA_3072", "SIGN_VERIFY"): .rsa3072PSSSHA256
        case ("RSA_4096", "SIGN_VERIFY"): .rsa4096PSSSHA256
        case ("RSA_2048", "ENCRYPT_DECRYPT"): .rsa2048OAEPSHA256
        case ("RSA_3072", "ENCRYPT_DECRYPT"): .rsa3072OAEPSHA256
        case ("RSA_4096", "ENCRYPT_DECRYPT"): .rsa4096OAEPSHA256
        case ("ML_DSA_65", "SIGN_VERIFY"): .mlDSA65
        case ("ML_DSA_87", "SIGN_VERIFY"): .mlDSA87
        default: nil
        }
    }

    /// The AWS `KeySpec` of a Keyward spec (nil for specs AWS has no name for).
    static func aws(_ spec: KeySpec) -> String? {
        switch spec {
        case .aes256GCM: "SYMMETRIC_DEFAULT"
        case .hmacSHA256: "HMAC_256"
        case .hmacSHA384: "HMAC_384"
        case .hmacSHA512: "HMAC_512"
        case .ecdsaP256, .ecdhP256: "ECC_NIST_P256"
        case .ecdsaP384, .ecdhP384: "ECC_NIST_P384"
        case .ecdsaP521: "ECC_NIST_P521"
        case .ed25519: "ECC_NIST_EDWARDS25519"
        case _ where spec.rsaBits != nil: "RSA_\(spec.rsaBits ?? 0)"
        case .mlDSA65: "ML_DSA_65"
        case .mlDSA87: "ML_DSA_87"
        default: nil
        }
    }

    /// The AWS `KeyUsage` of a Keyward spec.
    static func usage(_ spec: KeySpec) -> String {
        switch spec.purpose {
        case .sign: "SIGN_VERIFY"
        case .mac: "GENERATE_VERIFY_MAC"
        case .keyAgreement: "KEY_AGREEMENT"
        default: "ENCRYPT_DECRYPT"
        }
    }

    /// The signing algorithms a spec serves, in AWS's names.
    static func signingAlgorithms(_ spec: KeySpec) -> [String] {
        switch spec {
        case .ecdsaP256: ["ECDSA_SHA_256"]
        case .ecdsaP384: ["ECDSA_SHA_384"]
        case .ecdsaP521: ["ECDSA_SHA_512"]
        case .ed25519: ["ED25519_SHA_512"]
        case _ where spec.rsaSignature != nil: [rsaSigningAlgorithm(spec.rsaSignature!)]
        case .mlDSA65, .mlDSA87: ["ML_DSA_SHAKE_256"]
        default: []
        }
    }

    /// The CreateKey tag that picks an RSA signing key's one algorithm (AWS's name).
    static let signingAlgorithmTag = "keyward:SigningAlgorithm"

    /// The RSA signing spec of `bits` whose algorithm AWS calls `name`.
    static func rsaSigning(bits: Int, _ name: String) -> KeySpec? {
        KeySpec.allCases.first { $0.rsaBits == bits && $0.rsaSignature.map(rsaSigningAlgorithm) == name }
    }

    /// AWS's name of an RSA signing scheme (`RSASSA_PSS_SHA_384`, `RSASSA_PKCS1_V1_5_SHA_256`).
    static func rsaSigningAlgorithm(_ scheme: RSASignatureScheme) -> String {
        let padding = scheme.padding == .pss ? "RSASSA_PSS" : "RSASSA_PKCS1_V1_5"
        return padding + "_SHA_" + String(scheme.hash.byteCount * 8)
    }

    /// The encryption algorithms a spec serves, in AWS's names.
    static func encryptionAlgorithms(_ spec: KeySpec) -> [String] {
        switch spec {
        case .aes256GCM: ["SYMMETRIC_DEFAULT"]
        case .rsa2048OAEPSHA256, .rsa3072OAEPSHA256, .rsa4096OAEPSHA256: ["RSAES_OAEP_SHA_256"]
        default: []
        }
    }

    /// The MAC algorithms a spec serves, in AWS's names.
    static func macAlgorithms(_ spec: KeySpec) -> [String] {
        switch spec {
        case .hmacSHA256: ["HMAC_SHA_256"]
        case .hmacSHA384: ["HMAC_SHA_384"]
        case .hmacSHA512: ["HMAC_SHA_512"]
        default: []
        }
    }

    /// AWS's `KeyState` and `Enabled` for a key: `PendingImport` while it waits for imported
    /// material (and is neither pending deletion nor destroyed).
    static func state(_ metadata: KeyMetadata) -> (state: String, enabled: Bool) {
        if metadata.awaitingMaterial == true, metadata.state != .pendingDestruction, metadata.state != .destroyed {
            return ("PendingImport", false)
        }
        return state(metadata.state)
    }

    /// AWS's `KeyState` and `Enabled` for a Keyward state.
    static func state(_ state: KeyState) -> (state: String, enabled: Bool) {
        switch state {
        case .active: ("Enabled", true)
        case .pendingDestruction: ("PendingDeletion", false)
        case .destroyed: ("Unavailable", false)
        default: ("Disabled", false)
        }
    }
}
