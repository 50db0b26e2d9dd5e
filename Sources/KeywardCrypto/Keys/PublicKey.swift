import Crypto
import CryptoExtras
import Foundation

/// The public half of an asymmetric key, tagged with its spec.
///
/// `representation` is SubjectPublicKeyInfo DER for RSA, ECDSA/ECDH and Ed25519/X25519 keys, and
/// the raw encoding (FIPS 203/204, X-Wing draft) for ML-DSA, ML-KEM and X-Wing, which have no
/// settled X.509 form in swift-crypto. Public keys are not secret, but their integrity matters:
/// a `PublicKey` is only made from bytes that parse as a key of its spec.
public struct PublicKey: Sendable, Hashable {
    /// The key's spec.
    public let spec: KeySpec
    /// SPKI DER, or raw bytes for post-quantum specs (see the type's documentation).
    public let representation: [UInt8]

    /// Parses a public key of `spec` from SPKI DER (classical specs) or raw bytes (post-quantum
    /// specs). Raw forms are also accepted where they exist: 32 bytes for Ed25519/X25519, X9.63
    /// (compressed or uncompressed) points for ECDH/ECDSA.
    ///
    /// - Throws: `invalidPublicKey` when the bytes do not parse as a key of `spec`;
    ///   `unsupportedOperation` for symmetric specs, which have no public key.
    public init(spec: KeySpec, bytes: some ContiguousBytes) throws(KeywardCryptoError) {
        let raw = bytes.withUnsafeBytes { [UInt8]($0) }
        self.spec = spec
        let normalised = try mapping(.invalidPublicKey(spec: spec, reason: "the bytes are not a \(spec.rawValue) public key in the expected encoding")) {
            try PublicKey.normalise(spec: spec, raw)
        }
        // DER must be the canonical SubjectPublicKeyInfo with a named curve: explicit curve
        // parameters (which the parser would ignore) and non-canonical encodings are refused.
        if PublicKey.isDER(spec: spec, raw) && normalised != raw {
            throw .invalidPublicKey(spec: spec, reason: "the DER is not a canonical SubjectPublicKeyInfo for \(spec.rawValue) (named curve, uncompressed point)")
        }
        self.representation = normalised
    }

    /// Parses a PEM `PUBLIC KEY` block (classical specs only).
    public init(spec: KeySpec, pem: String) throws(KeywardCryptoError) {
        let der: [UInt8] = try mapping(.invalidPublicKey(spec: spec, reason: "not a PEM PUBLIC KEY block")) {
            let document = try PEMBlock(parsing: pem)
            guard document.label == "PUBLIC KEY" else { throw KeywardCryptoError.invalidPublicKey(spec: spec, reason: "PEM label is \(document.label), expected PUBLIC KEY") }
            return document.der
        }
        try self.init(spec: spec, bytes: der)
    }

    init(trusted spec: KeySpec, representation: [UInt8]) {
        self.spec = spec
        self.representation = representation
    }

    /// True for specs whose public key is carried as SPKI DER (and so also as PEM).
    public var hasDER: Bool {
        switch spec {
        case .mlDSA65, .mlDSA87, .mlKEM768, .mlKEM1024, .xWing: false
        default: true
        }
    }

    /// The PEM `PUBLIC KEY` form, for specs that have a DER form; nil for post-quantum specs.
    public var pem: String? {
        guard hasDER else { return nil }
        return PEMBlock(label: "PUBLIC KEY", der: representation).pemString
    }

    /// Whether `raw` is meant as DER: always for RSA, and for the other classical specs when it
    /// is not one of their raw lengths (32 bytes for 25519 keys, X9.63 points for NIST curves).
    static func isDER(spec: KeySpec, _ raw: [UInt8]) -> Bool {
        switch spec {
        case .ed25519, .x25519: return raw.count != 32
        case .ecdsaP256, .ecdsaP384, .ecdsaP521, .ecdhP256, .ecdhP384: return raw.first == 0x30
        case _ where spec.rsaBits != nil: return true
        default: return false
        }
    }

    private static func normalise(spec: KeySpec, _ raw: [UInt8]) throws -> [UInt8] {
        switch spec {
        case .aes256GCM, .aes128GCM, .chaCha20Poly1305, .hmacSHA256, .hmacSHA384, .hmacSHA512:
            throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .verify, reason: "a symmetric key has no public key")
        case .ecdsaP256: return try [UInt8](P256.Signing.PublicKey(anyEncoding: raw).derRepresentation)
        case .ecdsaP384: return try [UInt8](P384.Signing.PublicKey(anyEncoding: raw).derRepresentation)
        case .ecdsaP521: return try [UInt8](P521.Signing.PublicKey(anyEncoding: raw).derRepresentation)
        case .ecdhP256: return try [UInt8](P256.KeyAgreement.PublicKey(anyEncoding: raw).derRepresentation)
        case .ecdhP384: return try [UInt8](P384.KeyAgreement.PublicKey(anyEncoding: raw).derRepresentation)
        case .ed25519:
            let key = raw.count == 32
                ? try Curve25519.Signing.PublicKey(rawRepresentation: raw)
                : try Curve25519.Signing.PublicKey(derRepresentation: raw)
            return [UInt8](key.derRepresentation)
        case .x25519:
            let key = raw.count == 32
                ? try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
                : try Curve25519.KeyAgreement.PublicKey(derRepresentation: raw)
            return [UInt8](key.derRepresentation)
        case _ where spec.rsaBits != nil:
            let key = try _RSA.Signing.PublicKey(derRepresentation: raw)
            guard key.keySizeInBits == spec.rsaBits! else {
                throw KeywardCryptoError.invalidPublicKey(spec: spec, reason: "an RSA-\(key.keySizeInBits) key, expected RSA-\(spec.rsaBits!)")
            }
            return [UInt8](key.derRepresentation)
        case .mlDSA65: return [UInt8](try MLDSA65.PublicKey(rawRepresentation: raw).rawRepresentation)
        case .mlDSA87: return [UInt8](try MLDSA87.PublicKey(rawRepresentation: raw).rawRepresentation)
        case .mlKEM768: return [UInt8](try MLKEM768.PublicKey(rawRepresentation: raw).rawRepresentation)
        case .mlKEM1024: return [UInt8](try MLKEM1024.PublicKey(rawRepresentation: raw).rawRepresentation)
        case .xWing: return [UInt8](try XWingMLKEM768X25519.PublicKey(rawRepresentation: raw).rawRepresentation)
        default: throw KeywardCryptoError.invalidPublicKey(spec: spec, reason: "no public key form")
        }
    }
}

extension KeyMaterial {
    /// The public key of an asymmetric key.
    ///
    /// - Throws: `unsupportedOperation` for symmetric specs (AES, ChaCha20, HMAC).
    public func publicKey() throws(KeywardCryptoError) -> PublicKey {
        let spec = self.spec
        let representation: [UInt8] = try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
            try mapping(.invalidKeyMaterial(spec: spec, reason: "the stored private key does not parse")) {
                switch spec {
                case .aes256GCM, .aes128GCM, .chaCha20Poly1305, .hmacSHA256, .hmacSHA384, .hmacSHA512:
                    throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .verify, reason: "a symmetric key has no public key")
                case .ecdsaP256: return [UInt8](try P256.Signing.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .ecdsaP384: return [UInt8](try P384.Signing.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .ecdsaP521: return [UInt8](try P521.Signing.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .ecdhP256: return [UInt8](try P256.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .ecdhP384: return [UInt8](try P384.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .ed25519: return [UInt8](try Curve25519.Signing.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case .x25519: return [UInt8](try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.derRepresentation)
                case _ where spec.rsaBits != nil:
                    return [UInt8](try _RSA.Signing.PrivateKey(derRepresentation: raw).publicKey.derRepresentation)
                case .mlDSA65: return [UInt8](try MLDSA65.PrivateKey(seedRepresentation: raw, publicKey: nil).publicKey.rawRepresentation)
                case .mlDSA87: return [UInt8](try MLDSA87.PrivateKey(seedRepresentation: raw, publicKey: nil).publicKey.rawRepresentation)
                case .mlKEM768: return [UInt8](try MLKEM768.PrivateKey(seedRepresentation: raw, publicKey: nil).publicKey.rawRepresentation)
                case .mlKEM1024: return [UInt8](try MLKEM1024.PrivateKey(seedRepresentation: raw, publicKey: nil).publicKey.rawRepresentation)
                case .xWing: return [UInt8](try XWingMLKEM768X25519.PrivateKey(seedRepresentation: raw, publicKey: nil).publicKey.rawRepresentation)
                default: throw KeywardCryptoError.invalidKeyMaterial(spec: spec, reason: "no public key form")
                }
            }
        }
        return PublicKey(trusted: spec, representation: representation)
    }
}

extension P256.Signing.PublicKey {
    init(anyEncoding raw: [UInt8]) throws {
        if raw.first == 0x30 { try self.init(derRepresentation: raw) }
        else if raw.first == 0x04 { try self.init(x963Representation: raw) }
        else { try self.init(compressedRepresentation: raw) }
    }
}
extension P384.Signing.PublicKey {
    init(anyEncoding raw: [UInt8]) throws {
        if raw.first == 0x30 { try self.init(derRepresentation: raw) }
        else if raw.first == 0x04 { try self.init(x963Representation: raw) }
        else { try self.init(compressedRepresentation: raw) }
    }
}
extension P521.Signing.PublicKey {
    init(anyEncoding raw: [UInt8]) throws {
        if raw.first == 0x30 { try self.init(derRepresentation: raw) }
        else if raw.first == 0x04 { try self.init(x963Representation: raw) }
        else { try self.init(compressedRepresentation: raw) }
    }
}
extension P256.KeyAgreement.PublicKey {
    init(anyEncoding raw: [UInt8]) throws {
        if raw.first == 0x30 { try self.init(derRepresentation: raw) }
        else if raw.first == 0x04 { try self.init(x963Representation: raw) }
        else { try self.init(compressedRepresentation: raw) }
    }
}
extension P384.KeyAgreement.PublicKey {
    init(anyEncoding raw: [UInt8]) throws {
        if raw.first == 0x30 { try self.init(derRepresentation: raw) }
        else if raw.first == 0x04 { try self.init(x963Representation: raw) }
        else { try self.init(compressedRepresentation: raw) }
    }
}
