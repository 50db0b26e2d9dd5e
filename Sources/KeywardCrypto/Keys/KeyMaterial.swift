import Crypto
import CryptoExtras
import Foundation

/// The secret half of a key: its spec and its bytes in `SecretBytes`.
///
/// What the bytes hold, per spec (the "private representation", which is also what a sealed
/// key version stores):
/// - AES-256-GCM, ChaCha20-Poly1305: the 32-byte key.
/// - HMAC-SHA256/384/512: the key, 32/48/64 bytes when generated (16 to 1024 when imported).
/// - ECDSA and ECDH on P-256/P-384/P-521: the raw private scalar (32/48/66 bytes).
/// - Ed25519, X25519: the 32-byte private key.
/// - RSA: the PKCS#1 DER private key.
/// - ML-DSA-65/87, X-Wing: the 32-byte seed; ML-KEM-768/1024: the 64-byte seed (d || z).
///
/// Generation uses swift-crypto only, with the system's random source. The value is
/// non-copyable; when it ends, its bytes are wiped.
public struct KeyMaterial: ~Copyable, Sendable {
    /// The key's spec; fixes its purpose.
    public let spec: KeySpec
    /// The private representation described above.
    public let secret: SecretBytes

    /// Wraps existing secret bytes after checking that they form a valid key of `spec`.
    ///
    /// - Throws: `invalidKeyMaterial` naming the spec and what is wrong (length, encoding,
    ///   modulus size), never the bytes themselves.
    public init(spec: KeySpec, secret: consuming SecretBytes) throws(KeywardCryptoError) {
        try KeyMaterial.validate(spec: spec, secret: secret)
        var publicKey: [UInt8]? = nil
        if spec == .ed25519 {
            publicKey = try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
                try mapping(.invalidKeyMaterial(spec: spec, reason: "not a 32-byte Ed25519 seed")) {
                    [UInt8](try Curve25519.Signing.PrivateKey(rawRepresentation: raw).publicKey.rawRepresentation)
                }
            }
        }
        self.spec = spec
        self.ed25519PublicKey = publicKey
        self.secret = secret
    }

    /// The public half of an Ed25519 key (not secret), kept so that signing does not derive it
    /// again each time; nil for other specs.
    let ed25519PublicKey: [UInt8]?

    /// Imports key bytes supplied by a caller (BYOK), or opened from the store or a backup.
    /// Accepts the private representation above; RSA also accepts PKCS#8 DER and PEM, which are
    /// normalised to PKCS#1 DER in locked memory (`RSAPrivateKeyDER`) and parsed in place.
    public init(spec: KeySpec, importing bytes: some ContiguousBytes) throws(KeywardCryptoError) {
        if spec.rsaBits != nil {
            var normalised: SecretBytes?
            do {
                try bytes.withUnsafeBytes { raw in normalised = try RSAPrivateKeyDER.pkcs1(raw, spec: spec) }
            } catch let error as KeywardCryptoError {
                throw error
            } catch {
                throw .invalidKeyMaterial(spec: spec, reason: "not an RSA private key in PKCS#1 DER, PKCS#8 DER or PEM")
            }
            guard let der = normalised.take() else {
                throw .invalidKeyMaterial(spec: spec, reason: "not an RSA private key in PKCS#1 DER, PKCS#8 DER or PEM")
            }
            try self.init(spec: spec, secret: der)
        } else {
            try self.init(spec: spec, secret: SecretBytes(copyingBytesOf: bytes))
        }
    }

    /// Generates a new key of `spec` with swift-crypto and the system random source.
    public static func generate(_ spec: KeySpec) throws(KeywardCryptoError) -> KeyMaterial {
        let secret: SecretBytes
        switch spec {
        case .aes256GCM, .chaCha20Poly1305, .hmacSHA256, .aes128GCM, .hmacSHA384, .hmacSHA512:
            guard let count = spec.symmetricKeyBytes else { throw .primitiveFailure(operation: "key generation", reason: "\(spec) has no symmetric key length") }
            secret = try .random(count: count)
        case .ecdsaP256, .ecdhP256:
            secret = try copyOut(spec) { P256.Signing.PrivateKey().rawRepresentation }
        case .ecdsaP384, .ecdhP384:
            secret = try copyOut(spec) { P384.Signing.PrivateKey().rawRepresentation }
        case .ecdsaP521:
            secret = try copyOut(spec) { P521.Signing.PrivateKey().rawRepresentation }
        case .ed25519:
            secret = try copyOut(spec) { Curve25519.Signing.PrivateKey().rawRepresentation }
        case .x25519:
            secret = try copyOut(spec) { Curve25519.KeyAgreement.PrivateKey().rawRepresentation }
        case _ where spec.rsaBits != nil:
            let bits = spec.rsaBits ?? 0
            secret = try copyOut(spec) {
                try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits)).derRepresentation
            }
        case .mlDSA65:
            secret = try copyOut(spec) { try MLDSA65.PrivateKey().seedRepresentation }
        case .mlDSA87:
            secret = try copyOut(spec) { try MLDSA87.PrivateKey().seedRepresentation }
        case .mlKEM768:
            secret = try copyOut(spec) { try MLKEM768.PrivateKey().seedRepresentation }
        case .mlKEM1024:
            secret = try copyOut(spec) { try MLKEM1024.PrivateKey().seedRepresentation }
        case .xWing:
            secret = try copyOut(spec) { try XWingMLKEM768X25519.PrivateKey().seedRepresentation }
        default:
            throw .unsupportedOperation(spec: spec, operation: .sign, reason: "no generator for this spec")
        }
        return try KeyMaterial(spec: spec, secret: secret)
    }

    /// Runs `make`, copies its bytes into `SecretBytes` and wipes the temporary copy.
    private static func copyOut(_ spec: KeySpec, _ make: () throws -> Data) throws(KeywardCryptoError) -> SecretBytes {
        var data = try mapping(.primitiveFailure(operation: "generating a \(spec.rawValue) key", reason: "the primitive refused")) {
            try make()
        }
        defer { data.wipe() }
        return try SecretBytes(copying: data)
    }

    private static func validate(spec: KeySpec, secret: borrowing SecretBytes) throws(KeywardCryptoError) {
        func length(_ allowed: ClosedRange<Int>, _ what: String) throws(KeywardCryptoError) {
            guard allowed.contains(secret.count) else {
                throw .invalidKeyMaterial(spec: spec, reason: "expected \(what), got \(secret.count) bytes")
            }
        }
        switch spec {
        case .aes256GCM, .chaCha20Poly1305: try length(32...32, "a 32-byte key")
        case .aes128GCM: try length(16...16, "a 16-byte key")
        case .hmacSHA256, .hmacSHA384, .hmacSHA512: try length(16...1024, "a key of 16 to 1024 bytes")
        case .ed25519, .x25519: try length(32...32, "a 32-byte private key")
        case .mlDSA65, .mlDSA87, .xWing: try length(32...32, "a 32-byte seed")
        case .mlKEM768, .mlKEM1024: try length(64...64, "a 64-byte seed")
        default: break
        }
        // Parse with the primitive: catches scalars out of range, bad DER, wrong modulus sizes.
        try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) in
            try mapping(.invalidKeyMaterial(spec: spec, reason: "the bytes do not form a valid key")) {
                switch spec {
                case .ecdsaP256, .ecdhP256: _ = try P256.Signing.PrivateKey(rawRepresentation: raw)
                case .ecdsaP384, .ecdhP384: _ = try P384.Signing.PrivateKey(rawRepresentation: raw)
                case .ecdsaP521: _ = try P521.Signing.PrivateKey(rawRepresentation: raw)
                case _ where spec.rsaBits != nil:
                    let key = try _RSA.Signing.PrivateKey(derRepresentation: raw)
                    guard key.keySizeInBits == spec.rsaBits! else {
                        throw KeywardCryptoError.invalidKeyMaterial(
                            spec: spec, reason: "an RSA-\(key.keySizeInBits) key, expected RSA-\(spec.rsaBits!)")
                    }
                default: break
                }
            }
        }
    }
}

extension KeyMaterial {
    /// A commitment to this material: SHA-256 over `label`, `context` and the private
    /// representation, hashed in place. It lets a store check that material brought in later is
    /// the same, without keeping the material; key material is too random for the digest to be
    /// searched for.
    public func commitment(label: String, context: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(label.utf8))
        hasher.update(data: context)
        secret.withSecretBytes(InsecureSecretAccess.token) { raw in hasher.update(bufferPointer: raw) }
        return Array(hasher.finalize())
    }
}

extension Data {
    /// Overwrites the bytes with zeros, for temporaries that held secrets.
    mutating func wipe() {
        let count = self.count
        withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { keywardZeroize(base, count) }
        }
    }
}

