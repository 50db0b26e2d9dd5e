import Foundation

/// A key's algorithm and parameters. Fixed at creation, bound into every sealed record and
/// ciphertext, and tied to exactly one `KeyPurpose`.
///
/// The raw values are the stable names used in the CLI, the API and storage.
public enum KeySpec: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    // encrypt (symmetric AEAD)
    /// AES-256 in GCM mode, 96-bit random nonces, 128-bit tags. The default symmetric spec.
    case aes256GCM = "AES-256-GCM"
    /// ChaCha20-Poly1305 (RFC 8439), 96-bit random nonces, 128-bit tags.
    case chaCha20Poly1305 = "CHACHA20-POLY1305"
    /// AES-128 in GCM mode, 96-bit random nonces, 128-bit tags (128-bit security strength; for
    /// clients that ask for it, such as Transit's aes128-gcm96).
    case aes128GCM = "AES-128-GCM"
    // encrypt (asymmetric)
    /// RSA-2048 with OAEP, SHA-256 and MGF1-SHA-256.
    case rsa2048OAEPSHA256 = "RSA-2048-OAEP-SHA256"
    /// RSA-3072 with OAEP, SHA-256 and MGF1-SHA-256.
    case rsa3072OAEPSHA256 = "RSA-3072-OAEP-SHA256"
    /// RSA-4096 with OAEP, SHA-256 and MGF1-SHA-256.
    case rsa4096OAEPSHA256 = "RSA-4096-OAEP-SHA256"
    // mac
    /// HMAC with SHA-256; 32-byte keys and tags.
    case hmacSHA256 = "HMAC-SHA256"
    /// HMAC with SHA-384; 48-byte keys and tags.
    case hmacSHA384 = "HMAC-SHA384"
    /// HMAC with SHA-512; 64-byte keys and tags.
    case hmacSHA512 = "HMAC-SHA512"
    // sign
    /// ECDSA on P-256 with SHA-256.
    case ecdsaP256 = "ECDSA-P256-SHA256"
    /// ECDSA on P-384 with SHA-384.
    case ecdsaP384 = "ECDSA-P384-SHA384"
    /// ECDSA on P-521 with SHA-512.
    case ecdsaP521 = "ECDSA-P521-SHA512"
    /// Ed25519 (RFC 8032, pure).
    case ed25519 = "ED25519"
    /// RSA-2048 with PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt.
    case rsa2048PSSSHA256 = "RSA-2048-PSS-SHA256"
    /// RSA-3072 with PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt.
    case rsa3072PSSSHA256 = "RSA-3072-PSS-SHA256"
    /// RSA-4096 with PSS, SHA-256, MGF1-SHA-256 and a 32-byte salt.
    case rsa4096PSSSHA256 = "RSA-4096-PSS-SHA256"
    /// RSA-2048 with PSS, SHA-384, MGF1-SHA-384 and a 48-byte salt.
    case rsa2048PSSSHA384 = "RSA-2048-PSS-SHA384"
    /// RSA-3072 with PSS, SHA-384, MGF1-SHA-384 and a 48-byte salt.
    case rsa3072PSSSHA384 = "RSA-3072-PSS-SHA384"
    /// RSA-4096 with PSS, SHA-384, MGF1-SHA-384 and a 48-byte salt.
    case rsa4096PSSSHA384 = "RSA-4096-PSS-SHA384"
    /// RSA-2048 with PSS, SHA-512, MGF1-SHA-512 and a 64-byte salt.
    case rsa2048PSSSHA512 = "RSA-2048-PSS-SHA512"
    /// RSA-3072 with PSS, SHA-512, MGF1-SHA-512 and a 64-byte salt.
    case rsa3072PSSSHA512 = "RSA-3072-PSS-SHA512"
    /// RSA-4096 with PSS, SHA-512, MGF1-SHA-512 and a 64-byte salt.
    case rsa4096PSSSHA512 = "RSA-4096-PSS-SHA512"
    /// RSA-2048 with PKCS #1 v1.5 signatures over SHA-256 (RSASSA-PKCS1-v1_5, for peers that
    /// need it: JWS RS256, AWS KMS's RSASSA_PKCS1_V1_5_SHA_256).
    case rsa2048PKCS1SHA256 = "RSA-2048-PKCS1-SHA256"
    /// RSA-3072 with PKCS #1 v1.5 signatures over SHA-256.
    case rsa3072PKCS1SHA256 = "RSA-3072-PKCS1-SHA256"
    /// RSA-4096 with PKCS #1 v1.5 signatures over SHA-256.
    case rsa4096PKCS1SHA256 = "RSA-4096-PKCS1-SHA256"
    /// RSA-2048 with PKCS #1 v1.5 signatures over SHA-384.
    case rsa2048PKCS1SHA384 = "RSA-2048-PKCS1-SHA384"
    /// RSA-3072 with PKCS #1 v1.5 signatures over SHA-384.
    case rsa3072PKCS1SHA384 = "RSA-3072-PKCS1-SHA384"
    /// RSA-4096 with PKCS #1 v1.5 signatures over SHA-384.
    case rsa4096PKCS1SHA384 = "RSA-4096-PKCS1-SHA384"
    /// RSA-2048 with PKCS #1 v1.5 signatures over SHA-512.
    case rsa2048PKCS1SHA512 = "RSA-2048-PKCS1-SHA512"
    /// RSA-3072 with PKCS #1 v1.5 signatures over SHA-512.
    case rsa3072PKCS1SHA512 = "RSA-3072-PKCS1-SHA512"
    /// RSA-4096 with PKCS #1 v1.5 signatures over SHA-512.
    case rsa4096PKCS1SHA512 = "RSA-4096-PKCS1-SHA512"
    /// ML-DSA-65 (FIPS 204), hedged signing, optional context string.
    case mlDSA65 = "ML-DSA-65"
    /// ML-DSA-87 (FIPS 204), hedged signing, optional context string.
    case mlDSA87 = "ML-DSA-87"
    // key agreement
    /// X25519 (RFC 7748).
    case x25519 = "X25519"
    /// ECDH on P-256.
    case ecdhP256 = "ECDH-P256"
    /// ECDH on P-384.
    case ecdhP384 = "ECDH-P384"
    // kem
    /// ML-KEM-768 (FIPS 203).
    case mlKEM768 = "ML-KEM-768"
    /// ML-KEM-1024 (FIPS 203).
    case mlKEM1024 = "ML-KEM-1024"
    /// X-Wing: ML-KEM-768 combined with X25519 (draft-connolly-cfrg-xwing-kem).
    case xWing = "X-WING"

    /// The spec used when none is named.
    public static let defaultSymmetric = KeySpec.aes256GCM

    /// The one purpose of keys of this spec.
    public var purpose: KeyPurpose {
        switch self {
        case .aes256GCM, .aes128GCM, .chaCha20Poly1305, .rsa2048OAEPSHA256, .rsa3072OAEPSHA256, .rsa4096OAEPSHA256:
            .encrypt
        case .hmacSHA256, .hmacSHA384, .hmacSHA512:
            .mac
        case .ecdsaP256, .ecdsaP384, .ecdsaP521, .ed25519, .rsa2048PSSSHA256, .rsa3072PSSSHA256,
             .rsa4096PSSSHA256, .rsa2048PSSSHA384, .rsa3072PSSSHA384, .rsa4096PSSSHA384, .rsa2048PSSSHA512,
             .rsa3072PSSSHA512, .rsa4096PSSSHA512, .rsa2048PKCS1SHA256, .rsa3072PKCS1SHA256, .rsa4096PKCS1SHA256,
             .rsa2048PKCS1SHA384, .rsa3072PKCS1SHA384, .rsa4096PKCS1SHA384, .rsa2048PKCS1SHA512, .rsa3072PKCS1SHA512,
             .rsa4096PKCS1SHA512, .mlDSA65, .mlDSA87:
            .sign
        case .x25519, .ecdhP256, .ecdhP384:
            .keyAgreement
        case .mlKEM768, .mlKEM1024, .xWing:
            .kem
        }
    }

    /// True for specs whose key is one secret (AEAD and HMAC keys); false for key pairs.
    public var isSymmetric: Bool {
        switch self {
        case .aes256GCM, .aes128GCM, .chaCha20Poly1305, .hmacSHA256, .hmacSHA384, .hmacSHA512: true
        default: false
        }
    }

    /// The length in bytes of a generated key of a symmetric spec (AEAD: the cipher's key; HMAC:
    /// the hash's output, as RFC 2104 recommends); nil for key pairs.
    public var symmetricKeyBytes: Int? {
        switch self {
        case .aes256GCM, .chaCha20Poly1305, .hmacSHA256: 32
        case .aes128GCM: 16
        case .hmacSHA384: 48
        case .hmacSHA512: 64
        default: nil
        }
    }

    /// The RSA modulus size in bits, for RSA specs.
    public var rsaBits: Int? {
        switch self {
        case .rsa2048OAEPSHA256, .rsa2048PSSSHA256, .rsa2048PSSSHA384, .rsa2048PSSSHA512,
             .rsa2048PKCS1SHA256, .rsa2048PKCS1SHA384, .rsa2048PKCS1SHA512: 2048
        case .rsa3072OAEPSHA256, .rsa3072PSSSHA256, .rsa3072PSSSHA384, .rsa3072PSSSHA512,
             .rsa3072PKCS1SHA256, .rsa3072PKCS1SHA384, .rsa3072PKCS1SHA512: 3072
        case .rsa4096OAEPSHA256, .rsa4096PSSSHA256, .rsa4096PSSSHA384, .rsa4096PSSSHA512,
             .rsa4096PKCS1SHA256, .rsa4096PKCS1SHA384, .rsa4096PKCS1SHA512: 4096
        default: nil
        }
    }

    /// How an RSA signing spec signs (nil for every other spec).
    public var rsaSignature: RSASignatureScheme? {
        switch self {
        case .rsa2048PSSSHA256, .rsa3072PSSSHA256, .rsa4096PSSSHA256: .init(padding: .pss, hash: .sha256)
        case .rsa2048PSSSHA384, .rsa3072PSSSHA384, .rsa4096PSSSHA384: .init(padding: .pss, hash: .sha384)
        case .rsa2048PSSSHA512, .rsa3072PSSSHA512, .rsa4096PSSSHA512: .init(padding: .pss, hash: .sha512)
        case .rsa2048PKCS1SHA256, .rsa3072PKCS1SHA256, .rsa4096PKCS1SHA256: .init(padding: .pkcs1v15, hash: .sha256)
        case .rsa2048PKCS1SHA384, .rsa3072PKCS1SHA384, .rsa4096PKCS1SHA384: .init(padding: .pkcs1v15, hash: .sha384)
        case .rsa2048PKCS1SHA512, .rsa3072PKCS1SHA512, .rsa4096PKCS1SHA512: .init(padding: .pkcs1v15, hash: .sha512)
        default: nil
        }
    }

    /// The RSA signing spec of a modulus size, padding and hash, if Keyward has it.
    public static func rsaSigning(bits: Int, _ scheme: RSASignatureScheme) -> KeySpec? {
        allCases.first { $0.rsaBits == bits && $0.rsaSignature == scheme }
    }

    /// Parses a spec name, case-insensitively (`aes-256-gcm`, `ML-DSA-65`).
    public init(named name: String) throws(KeywardCryptoError) {
        guard let spec = KeySpec.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(name) == .orderedSame }) else {
            throw .unknownSpec(name)
        }
        self = spec
    }

    /// Throws `wrongPurpose` unless `operation` belongs to this spec's purpose.
    public func check(_ operation: KeyOperation) throws(KeywardCryptoError) {
        guard operation.purpose == purpose else {
            throw .wrongPurpose(spec: self, operation: operation)
        }
    }

    public var description: String { rawValue }
}

/// An RSA signing spec's padding and hash. A PSS salt is as long as the digest, and MGF1 uses
/// the same hash (RFC 8017; what AWS KMS, JOSE PS256/384/512 and Vault Transit's pss expect).
public struct RSASignatureScheme: Sendable, Hashable {
    /// The signature padding.
    public enum Padding: Sendable, Hashable {
        /// RSASSA-PSS.
        case pss
        /// RSASSA-PKCS1-v1_5.
        case pkcs1v15
    }

    /// The hash the message is digested with.
    public enum Hash: Sendable, Hashable {
        case sha256, sha384, sha512

        /// The digest length in bytes.
        public var byteCount: Int {
            switch self {
            case .sha256: 32
            case .sha384: 48
            case .sha512: 64
            }
        }
    }

    public var padding: Padding
    public var hash: Hash

    /// A scheme of this padding and hash.
    public init(padding: Padding, hash: Hash) {
        self.padding = padding
        self.hash = hash
    }
}
