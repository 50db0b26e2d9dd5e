import CBoringSSLDirect
import Crypto
import CryptoExtras
import Foundation

/// What gets signed: the message itself, or a digest the caller computed with the spec's hash.
public enum SigningInput: Sendable {
    /// The message; Keyward hashes it as the spec prescribes.
    case message([UInt8])
    /// A pre-computed digest: SHA-256 (32 bytes) for P-256 and RSA-PSS, SHA-384 (48) for P-384,
    /// SHA-512 (64) for P-521. Ed25519 and ML-DSA sign messages only.
    case digest([UInt8])
}

/// How an ECDSA signature is encoded. Other specs have one encoding and ignore this.
public enum ECDSASignatureEncoding: String, Sendable, Codable {
    /// ASN.1 DER `SEQUENCE { r, s }` (X.509, AWS KMS, OpenSSL). Keyward signs in DER.
    case der
    /// IEEE P1363 / raw `r || s` (JOSE, WebCrypto).
    case raw
}

extension ECDSASignatureEncoding {
    /// `signature`, a DER ECDSA signature (as Keyward signs) by a key of `spec`, as raw
    /// `r || s` of the curve's size (JOSE's form).
    ///
    /// - Throws: `unsupportedOperation` for a spec that is not ECDSA; `invalidParameter` for a
    ///   signature that is not DER of that curve.
    public static func raw(fromDER signature: [UInt8], spec: KeySpec) throws(KeywardCryptoError) -> [UInt8] {
        do {
            switch spec {
            case .ecdsaP256: return Array(try P256.Signing.ECDSASignature(derRepresentation: signature).rawRepresentation)
            case .ecdsaP384: return Array(try P384.Signing.ECDSASignature(derRepresentation: signature).rawRepresentation)
            case .ecdsaP521: return Array(try P521.Signing.ECDSASignature(derRepresentation: signature).rawRepresentation)
            default: break
            }
        } catch {
            throw .invalidParameter(name: "signature", reason: "not a DER ECDSA signature of \(spec.rawValue)")
        }
        throw .unsupportedOperation(spec: spec, operation: .sign, reason: "only ECDSA signatures have a raw r || s form")
    }
}

extension KeyMaterial {
    /// Signs `input`. ECDSA signatures are DER; RSA-PSS uses SHA-256, MGF1-SHA-256 and a 32-byte
    /// salt; ML-DSA is hedged (randomised) and takes an optional `context` of at most 255 bytes.
    ///
    /// - Throws: `wrongPurpose` for keys that do not sign; `unsupportedOperation` for a digest
    ///   with Ed25519 or ML-DSA, or a context with anything but ML-DSA; `invalidParameter` for a
    ///   digest of the wrong length or an oversized context.
    public func sign(_ input: SigningInput, context: [UInt8]? = nil) throws(KeywardCryptoError) -> [UInt8] {
        try spec.check(.sign)
        let spec = self.spec
        try SignatureScheme.checkContext(context, spec: spec, operation: .sign)
        return try secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
            try mapping(.primitiveFailure(operation: "signing with \(spec.rawValue)", reason: "the primitive refused the key or input")) {
                switch (spec, input) {
                case (.ecdsaP256, .message(let m)):
                    return try Self.signP256(digest: Array(SHA256.hash(data: m)), scalar: raw)
                case (.ecdsaP256, .digest(let d)):
                    return try Self.signP256(digest: Array(try PrecomputedDigest.sha256(d, spec: spec)), scalar: raw)
                case (.ecdsaP384, .message(let m)):
                    return [UInt8](try P384.Signing.PrivateKey(rawRepresentation: raw).signature(for: m).derRepresentation)
                case (.ecdsaP384, .digest(let d)):
                    return [UInt8](try P384.Signing.PrivateKey(rawRepresentation: raw).signature(for: try PrecomputedDigest.sha384(d, spec: spec)).derRepresentation)
                case (.ecdsaP521, .message(let m)):
                    return [UInt8](try P521.Signing.PrivateKey(rawRepresentation: raw).signature(for: m).derRepresentation)
                case (.ecdsaP521, .digest(let d)):
                    return [UInt8](try P521.Signing.PrivateKey(rawRepresentation: raw).signature(for: try PrecomputedDigest.sha512(d, spec: spec)).derRepresentation)
                case (.ed25519, .message(let m)):
                    guard let publicKey = ed25519PublicKey else {
                        return [UInt8](try Curve25519.Signing.PrivateKey(rawRepresentation: raw).signature(for: m))
                    }
                    return try Self.signEd25519(m, seed: raw, publicKey: publicKey)
                case (_, _) where spec.rsaSignature != nil:
                    return try Self.signRSA(input, spec: spec, der: raw)
                case (.mlDSA65, .message(let m)):
                    let key = try MLDSA65.PrivateKey(seedRepresentation: raw, publicKey: nil)
                    return [UInt8](try context.map { try key.signature(for: m, context: $0) } ?? key.signature(for: m))
                case (.mlDSA87, .message(let m)):
                    let key = try MLDSA87.PrivateKey(seedRepresentation: raw, publicKey: nil)
                    return [UInt8](try context.map { try key.signature(for: m, context: $0) } ?? key.signature(for: m))
                case (.ed25519, .digest), (.mlDSA65, .digest), (.mlDSA87, .digest):
                    throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .sign, reason: "this scheme signs whole messages only; pass the message")
                default:
                    throw KeywardCryptoError.wrongPurpose(spec: spec, operation: .sign)
                }
            }
        }
    }
}

extension KeyMaterial {
    /// A primitive that answered 0 (the `mapping` around it names the operation).
    private struct PrimitiveRefused: Error {}

    /// RSA signing as the spec's scheme says (padding, hash), from the PKCS #1 DER key.
    fileprivate static func signRSA(_ input: SigningInput, spec: KeySpec, der: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard let scheme = spec.rsaSignature else { throw PrimitiveRefused() }
        let key = try _RSA.Signing.PrivateKey(derRepresentation: der)
        let padding: _RSA.Signing.Padding = scheme.padding == .pss ? .PSS : .insecurePKCS1v1_5
        let signature: _RSA.Signing.RSASignature
        switch (scheme.hash, input) {
        case (.sha256, .message(let m)): signature = try key.signature(for: SHA256.hash(data: m), padding: padding)
        case (.sha256, .digest(let d)): signature = try key.signature(for: try PrecomputedDigest.sha256(d, spec: spec), padding: padding)
        case (.sha384, .message(let m)): signature = try key.signature(for: SHA384.hash(data: m), padding: padding)
        case (.sha384, .digest(let d)): signature = try key.signature(for: try PrecomputedDigest.sha384(d, spec: spec), padding: padding)
        case (.sha512, .message(let m)): signature = try key.signature(for: SHA512.hash(data: m), padding: padding)
        case (.sha512, .digest(let d)): signature = try key.signature(for: try PrecomputedDigest.sha512(d, spec: spec), padding: padding)
        }
        return [UInt8](signature.rawRepresentation)
    }

    /// Ed25519 with the stored public half: one scalar multiplication instead of two.
    fileprivate static func signEd25519(_ message: [UInt8], seed: UnsafeRawBufferPointer, publicKey: [UInt8]) throws -> [UInt8] {
        guard seed.count == 32, publicKey.count == 32 else { throw PrimitiveRefused() }
        var signature = [UInt8](repeating: 0, count: 64)
        let ok = message.withUnsafeBytes { message in
            keyward_ed25519_sign(&signature, message.bindMemory(to: UInt8.self).baseAddress, message.count,
                                 seed.bindMemory(to: UInt8.self).baseAddress, publicKey)
        }
        guard ok == 1 else { throw PrimitiveRefused() }
        return signature
    }

    /// ECDSA P-256 (DER) over a SHA-256 digest from the private scalar alone: the public point
    /// is not computed for each signature.
    fileprivate static func signP256(digest: [UInt8], scalar: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard digest.count == 32, scalar.count == 32 else { throw PrimitiveRefused() }
        var signature = [UInt8](repeating: 0, count: 72)
        var length = 0
        guard keyward_p256_sign_digest(&signature, &length, digest, scalar.bindMemory(to: UInt8.self).baseAddress) == 1 else {
            throw PrimitiveRefused()
        }
        return Array(signature.prefix(length))
    }
}

extension PublicKey {
    /// Verifies `signature` over `input`. A malformed signature is simply not valid (false);
    /// only misuse of the API throws.
    ///
    /// - Parameter encoding: for ECDSA, whether `signature` is DER (default) or raw `r || s`.
    /// - Throws: `wrongPurpose` for keys that do not sign; `unsupportedOperation` /
    ///   `invalidParameter` as for `KeyMaterial.sign`.
    public func verify(
        _ signature: [UInt8], for input: SigningInput, context: [UInt8]? = nil,
        encoding: ECDSASignatureEncoding = .der
    ) throws(KeywardCryptoError) -> Bool {
        try spec.check(.verify)
        let spec = self.spec
        try SignatureScheme.checkContext(context, spec: spec, operation: .verify)
        let key = representation
        do {
            switch (spec, input) {
            case (.ecdsaP256, _):
                let pub = try P256.Signing.PublicKey(derRepresentation: key)
                guard let sig = try? (encoding == .der ? P256.Signing.ECDSASignature(derRepresentation: signature) : P256.Signing.ECDSASignature(rawRepresentation: signature)) else { return false }
                switch input {
                case .message(let m): return pub.isValidSignature(sig, for: m)
                case .digest(let d): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha256(d, spec: spec))
                }
            case (.ecdsaP384, _):
                let pub = try P384.Signing.PublicKey(derRepresentation: key)
                guard let sig = try? (encoding == .der ? P384.Signing.ECDSASignature(derRepresentation: signature) : P384.Signing.ECDSASignature(rawRepresentation: signature)) else { return false }
                switch input {
                case .message(let m): return pub.isValidSignature(sig, for: m)
                case .digest(let d): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha384(d, spec: spec))
                }
            case (.ecdsaP521, _):
                let pub = try P521.Signing.PublicKey(derRepresentation: key)
                guard let sig = try? (encoding == .der ? P521.Signing.ECDSASignature(derRepresentation: signature) : P521.Signing.ECDSASignature(rawRepresentation: signature)) else { return false }
                switch input {
                case .message(let m): return pub.isValidSignature(sig, for: m)
                case .digest(let d): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha512(d, spec: spec))
                }
            case (.ed25519, .message(let m)):
                return try Curve25519.Signing.PublicKey(derRepresentation: key).isValidSignature(signature, for: m)
            case (_, _) where spec.rsaSignature != nil:
                guard let scheme = spec.rsaSignature else { return false }
                let pub = try _RSA.Signing.PublicKey(derRepresentation: key)
                let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
                let padding: _RSA.Signing.Padding = scheme.padding == .pss ? .PSS : .insecurePKCS1v1_5
                switch (scheme.hash, input) {
                case (.sha256, .message(let m)): return pub.isValidSignature(sig, for: SHA256.hash(data: m), padding: padding)
                case (.sha256, .digest(let d)): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha256(d, spec: spec), padding: padding)
                case (.sha384, .message(let m)): return pub.isValidSignature(sig, for: SHA384.hash(data: m), padding: padding)
                case (.sha384, .digest(let d)): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha384(d, spec: spec), padding: padding)
                case (.sha512, .message(let m)): return pub.isValidSignature(sig, for: SHA512.hash(data: m), padding: padding)
                case (.sha512, .digest(let d)): return pub.isValidSignature(sig, for: try PrecomputedDigest.sha512(d, spec: spec), padding: padding)
                }
            case (.mlDSA65, .message(let m)):
                let pub = try MLDSA65.PublicKey(rawRepresentation: key)
                return context.map { pub.isValidSignature(signature, for: m, context: $0) } ?? pub.isValidSignature(signature, for: m)
            case (.mlDSA87, .message(let m)):
                let pub = try MLDSA87.PublicKey(rawRepresentation: key)
                return context.map { pub.isValidSignature(signature, for: m, context: $0) } ?? pub.isValidSignature(signature, for: m)
            case (.ed25519, .digest), (.mlDSA65, .digest), (.mlDSA87, .digest):
                throw KeywardCryptoError.unsupportedOperation(spec: spec, operation: .verify, reason: "this scheme verifies whole messages only; pass the message")
            default:
                throw KeywardCryptoError.wrongPurpose(spec: spec, operation: .verify)
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw .invalidPublicKey(spec: spec, reason: "the stored public key does not parse")
        }
    }
}

enum SignatureScheme {
    static func checkContext(_ context: [UInt8]?, spec: KeySpec, operation: KeyOperation) throws(KeywardCryptoError) {
        guard let context else { return }
        guard spec == .mlDSA65 || spec == .mlDSA87 else {
            throw .unsupportedOperation(spec: spec, operation: operation, reason: "only ML-DSA takes a signing context")
        }
        guard context.count <= 255 else {
            throw .invalidParameter(name: "signing context", reason: "\(context.count) bytes; ML-DSA allows at most 255")
        }
    }
}

/// Wraps a caller-computed digest as swift-crypto's digest type, so the primitive signs it as is.
enum PrecomputedDigest {
    static func sha256(_ bytes: [UInt8], spec: KeySpec) throws(KeywardCryptoError) -> SHA256Digest {
        try make(bytes, SHA256Digest.self, spec: spec, hash: "SHA-256")
    }
    static func sha384(_ bytes: [UInt8], spec: KeySpec) throws(KeywardCryptoError) -> SHA384Digest {
        try make(bytes, SHA384Digest.self, spec: spec, hash: "SHA-384")
    }
    static func sha512(_ bytes: [UInt8], spec: KeySpec) throws(KeywardCryptoError) -> SHA512Digest {
        try make(bytes, SHA512Digest.self, spec: spec, hash: "SHA-512")
    }

    /// swift-crypto keeps digest constructors internal; its digest structs are exactly their
    /// bytes (a tuple of UInt64 words). The layout is checked here and by tests that sign a
    /// digest and verify the message.
    private static func make<D: Digest>(_ bytes: [UInt8], _ type: D.Type, spec: KeySpec, hash: String) throws(KeywardCryptoError) -> D {
        guard bytes.count == D.byteCount else {
            throw .invalidParameter(name: "digest", reason: "\(bytes.count) bytes; \(spec.rawValue) takes a \(D.byteCount)-byte \(hash) digest")
        }
        guard MemoryLayout<D>.size == D.byteCount else {
            throw .unsupportedOperation(spec: spec, operation: .sign, reason: "pre-computed digests are not available with this swift-crypto build")
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: D.self) }
    }
}
