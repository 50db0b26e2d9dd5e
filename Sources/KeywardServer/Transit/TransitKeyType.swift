import KeywardCrypto

/// Transit's key type names and Keyward's specs.
enum TransitKeyType {
    /// The Keyward spec of a Transit `type`; nil for a type Keyward does not offer.
    static func spec(_ type: String) -> KeySpec? {
        switch type {
        case "aes256-gcm96": .aes256GCM
        case "aes128-gcm96": .aes128GCM
        case "chacha20-poly1305": .chaCha20Poly1305
        case "ed25519": .ed25519
        case "ecdsa-p256": .ecdsaP256
        case "ecdsa-p384": .ecdsaP384
        case "ecdsa-p521": .ecdsaP521
        case "rsa-2048": .rsa2048PSSSHA256
        case "rsa-3072": .rsa3072PSSSHA256
        case "rsa-4096": .rsa4096PSSSHA256
        case "hmac": .hmacSHA256
        case "ml-dsa-65": .mlDSA65
        case "ml-dsa-87": .mlDSA87
        // Keyward's post-quantum KEMs (no Transit operation uses them: a client encapsulates to
        // the key's public key, and the native API decapsulates).
        case "ml-kem-768": .mlKEM768
        case "ml-kem-1024": .mlKEM1024
        case "x-wing": .xWing
        default: nil
        }
    }

    /// The spec of a Transit `type` created with a Keyward extension: `hash_algorithm` and
    /// `signature_algorithm` at creation choose the one scheme an RSA key signs with (pss or
    /// pkcs1v15 over sha2-256/384/512) and the hash an HMAC key uses, since a Keyward key has one
    /// algorithm for life. Nil when neither is given; a choice a type cannot take is an error.
    static func spec(_ type: String, hash: String?, signatureAlgorithm: String?) throws(APIError) -> KeySpec? {
        guard hash != nil || signatureAlgorithm != nil, let base = spec(type) else { return nil }
        let digest: RSASignatureScheme.Hash?
        switch hash {
        case nil: digest = nil
        case "sha2-256": digest = .sha256
        case "sha2-384": digest = .sha384
        case "sha2-512": digest = .sha512
        default: throw TransitError.invalid("hash_algorithm \(hash!.prefix(40)) at creation: sha2-256, sha2-384 or sha2-512")
        }
        if let bits = base.rsaBits, base.purpose == .sign {
            let padding: RSASignatureScheme.Padding
            switch signatureAlgorithm ?? "pss" {
            case "pss": padding = .pss
            case "pkcs1v15": padding = .pkcs1v15
            default: throw TransitError.invalid("signature_algorithm \(signatureAlgorithm!.prefix(40)): pss or pkcs1v15")
            }
            return KeySpec.rsaSigning(bits: bits, RSASignatureScheme(padding: padding, hash: digest ?? .sha256))
        }
        if base == .hmacSHA256, signatureAlgorithm == nil {
            switch digest {
            case .sha384?: return .hmacSHA384
            case .sha512?: return .hmacSHA512
            default: return .hmacSHA256
            }
        }
        throw TransitError.invalid("hash_algorithm and signature_algorithm at creation choose the scheme of rsa-* signing keys and the hash of hmac keys, not of \(type.prefix(40))")
    }

    /// The Transit `type` of a Keyward spec (Keyward's own name, lowercased, for specs Transit
    /// has none for).
    static func name(_ spec: KeySpec) -> String {
        switch spec {
        case .aes256GCM: "aes256-gcm96"
        case .aes128GCM: "aes128-gcm96"
        case .chaCha20Poly1305: "chacha20-poly1305"
        case .ed25519: "ed25519"
        case .ecdsaP256: "ecdsa-p256"
        case .ecdsaP384: "ecdsa-p384"
        case .ecdsaP521: "ecdsa-p521"
        case .hmacSHA256, .hmacSHA384, .hmacSHA512: "hmac"
        case _ where spec.rsaBits != nil: "rsa-\(spec.rsaBits ?? 0)"
        default: spec.rawValue.lowercased()
        }
    }

    /// The Transit hash name (`hash_algorithm`, HMAC's `algorithm`) a key of `spec` hashes with;
    /// nil for schemes with no hash to choose (Ed25519, ML-DSA).
    static func hash(_ spec: KeySpec) -> String? {
        if let scheme = spec.rsaSignature { return name(scheme.hash) }
        switch spec {
        case .ecdsaP256, .hmacSHA256: return "sha2-256"
        case .ecdsaP384, .hmacSHA384: return "sha2-384"
        case .ecdsaP521, .hmacSHA512: return "sha2-512"
        default: return nil
        }
    }

    /// Transit's `signature_algorithm` of an RSA signing spec (`pss` or `pkcs1v15`).
    static func signatureAlgorithm(_ spec: KeySpec) -> String? {
        spec.rsaSignature.map { $0.padding == .pss ? "pss" : "pkcs1v15" }
    }

    private static func name(_ hash: RSASignatureScheme.Hash) -> String {
        switch hash {
        case .sha256: "sha2-256"
        case .sha384: "sha2-384"
        case .sha512: "sha2-512"
        }
    }
}
