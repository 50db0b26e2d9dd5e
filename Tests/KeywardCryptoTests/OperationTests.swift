import Crypto
import Foundation
import KeywardCrypto
import Synchronization
import Testing

@Suite("Operations per spec")
struct OperationTests {
    static let signingSpecs = KeySpec.allCases.filter { $0.purpose == .sign }
    static let digestSpecs: [(KeySpec, @Sendable ([UInt8]) -> [UInt8])] = [
        (.ecdsaP256, { Array(SHA256.hash(data: $0)) }),
        (.ecdsaP384, { Array(SHA384.hash(data: $0)) }),
        (.ecdsaP521, { Array(SHA512.hash(data: $0)) }),
        (.rsa2048PSSSHA256, { Array(SHA256.hash(data: $0)) }),
        (.rsa3072PSSSHA384, { Array(SHA384.hash(data: $0)) }),
        (.rsa2048PKCS1SHA512, { Array(SHA512.hash(data: $0)) }),
    ]

    /// PKCS #8 of two RSA keys per modulus size, generated once: generation is slow in debug
    /// builds, and the RSA signing specs of one size differ only in how they sign.
    private static let rsaPool = Mutex<[Int: [[UInt8]]]>([:])

    /// A key of `spec`; the `index`th shared key of its size for RSA specs (0 or 1).
    static func key(_ spec: KeySpec, _ index: Int = 0) throws -> KeyMaterial {
        guard let bits = spec.rsaBits else { return try KeyMaterial.generate(spec) }
        let pkcs8 = try rsaPool.withLock { pool throws -> [UInt8] in
            if pool[bits] == nil {
                let base = try #require(KeySpec.rsaSigning(bits: bits, .init(padding: .pss, hash: .sha256)))
                pool[bits] = try (0..<2).map { _ in try KeyMaterial.generate(base).pkcs8().withSecretBytes(InsecureSecretAccess.token) { Array($0) } }
            }
            return pool[bits]![index]
        }
        return try KeyMaterial(spec: spec, importing: pkcs8)
    }

    @Test("every signing spec signs and verifies; a changed message or signature does not verify", arguments: signingSpecs)
    func signAndVerify(spec: KeySpec) throws {
        let key = try Self.key(spec)
        let publicKey = try key.publicKey()
        let message = Array("the quick brown fox".utf8)
        let signature = try key.sign(.message(message))
        #expect(try publicKey.verify(signature, for: .message(message)))
        #expect(try !publicKey.verify(signature, for: .message(message + [0])))
        var bad = signature
        bad[bad.count / 2] ^= 1
        #expect(try !publicKey.verify(bad, for: .message(message)))
        #expect(try !publicKey.verify([], for: .message(message)))
        // The public key survives a round trip through its encoding.
        let reparsed = try PublicKey(spec: spec, bytes: publicKey.representation)
        #expect(try reparsed.verify(signature, for: .message(message)))
        if let pem = publicKey.pem {
            #expect(try PublicKey(spec: spec, pem: pem) == publicKey)
        }
        // Another key's public key does not verify it.
        let other = try Self.key(spec, 1).publicKey()
        #expect(try !other.verify(signature, for: .message(message)))
    }

    @Test("a signature over a pre-computed digest verifies over the message", arguments: [0, 1, 2, 3, 4, 5])
    func digestSigning(index: Int) throws {
        let (spec, hash) = Self.digestSpecs[index]
        let key = try Self.key(spec)
        let message = Array("digest me".utf8)
        let signature = try key.sign(.digest(hash(message)))
        #expect(try key.publicKey().verify(signature, for: .message(message)))
        #expect(try key.publicKey().verify(key.sign(.message(message)), for: .digest(hash(message))))
        #expect(throws: KeywardCryptoError.self) { try key.sign(.digest([1, 2, 3])) }
    }

    @Test("RSA keys of one modulus sign as their spec says: a PSS signature does not verify as PKCS #1 v1.5 or under another hash, and the reverse")
    func rsaSchemesAreDistinct() throws {
        let message = Array("one key, one algorithm".utf8)
        let specs: [KeySpec] = [.rsa2048PSSSHA256, .rsa2048PSSSHA384, .rsa2048PSSSHA512, .rsa2048PKCS1SHA256, .rsa2048PKCS1SHA384, .rsa2048PKCS1SHA512]
        for signer in specs {
            let signature = try Self.key(signer).sign(.message(message))
            for verifier in specs {
                let valid = try Self.key(verifier).publicKey().verify(signature, for: .message(message))
                #expect(valid == (signer == verifier), "\(signer) signature checked as \(verifier)")
            }
            // PKCS #1 v1.5 is deterministic; PSS is salted.
            let again = try Self.key(signer).sign(.message(message))
            #expect((again == signature) == (signer.rsaSignature?.padding == .pkcs1v15))
        }
        #expect(KeySpec.rsaSigning(bits: 3072, .init(padding: .pkcs1v15, hash: .sha384)) == .rsa3072PKCS1SHA384)
        #expect(KeySpec.rsaSigning(bits: 1024, .init(padding: .pss, hash: .sha256)) == nil)
    }

    @Test("Ed25519 and ML-DSA refuse digests; only ML-DSA takes a context")
    func digestAndContextLimits() throws {
        for spec in [KeySpec.ed25519, .mlDSA65] {
            let key = try KeyMaterial.generate(spec)
            do {
                _ = try key.sign(.digest([UInt8](repeating: 0, count: 32)))
                Issue.record("\(spec) signed a digest")
            } catch {
                guard case .unsupportedOperation = error else { Issue.record("wrong error \(error)"); return }
            }
        }
        let ml = try KeyMaterial.generate(.mlDSA87)
        let sig = try ml.sign(.message([1]), context: Array("app".utf8))
        #expect(try ml.publicKey().verify(sig, for: .message([1]), context: Array("app".utf8)))
        #expect(try !ml.publicKey().verify(sig, for: .message([1]), context: Array("other".utf8)))
        #expect(try !ml.publicKey().verify(sig, for: .message([1])))
        #expect(throws: KeywardCryptoError.self) { try ml.sign(.message([1]), context: [UInt8](repeating: 0, count: 256)) }
        let ec = try KeyMaterial.generate(.ecdsaP256)
        #expect(throws: KeywardCryptoError.self) { try ec.sign(.message([1]), context: [1]) }
    }

    @Test("ECDSA verifies both DER and raw r||s encodings")
    func ecdsaEncodings() throws {
        let key = try KeyMaterial.generate(.ecdsaP384)
        let der = try key.sign(.message([5]))
        let raw = try P384.Signing.ECDSASignature(derRepresentation: der).rawRepresentation
        #expect(try key.publicKey().verify(Array(raw), for: .message([5]), encoding: .raw))
        #expect(try !key.publicKey().verify(Array(raw), for: .message([5]), encoding: .der))
    }

    @Test("HMAC: full-length tags verify in constant time; altered or truncated tags do not", arguments: [KeySpec.hmacSHA256, .hmacSHA384, .hmacSHA512])
    func mac(spec: KeySpec) throws {
        let key = try KeyMaterial.generate(spec)
        let tag = try key.mac(Array("msg".utf8))
        #expect(tag.count == key.secret.count)
        #expect(try key.verifyMAC(tag, for: Array("msg".utf8)))
        #expect(try !key.verifyMAC(tag, for: Array("msh".utf8)))
        #expect(try !key.verifyMAC(Array(tag.prefix(16)), for: Array("msg".utf8)))
        var bad = tag
        bad[0] ^= 1
        #expect(try !key.verifyMAC(bad, for: Array("msg".utf8)))
        // Independent check against swift-crypto directly.
        let expected = key.secret.withSecretBytes(InsecureSecretAccess.token) { raw in Array(HMAC<SHA256>.authenticationCode(for: Array("msg".utf8), using: SymmetricKey(data: raw))) }
        if spec == .hmacSHA256 { #expect(tag == expected) }
    }

    @Test("ECDH and X25519: both sides derive the same secret; a peer of another spec is refused", arguments: [KeySpec.x25519, .ecdhP256, .ecdhP384])
    func keyAgreement(spec: KeySpec) throws {
        let alice = try KeyMaterial.generate(spec)
        let bob = try KeyMaterial.generate(spec)
        let ab = try alice.sharedSecret(with: bob.publicKey())
        let ba = try bob.sharedSecret(with: alice.publicKey())
        let agreed = ab.constantTimeEquals(ba)
        #expect(agreed)
        let k1 = try alice.deriveSharedKey(with: bob.publicKey(), salt: [1], info: Array("ctx".utf8))
        let k2 = try bob.deriveSharedKey(with: alice.publicKey(), salt: [1], info: Array("ctx".utf8))
        let derivedAlike = k1.constantTimeEquals(k2) && k1.count == 32
        #expect(derivedAlike)
        let k3 = try bob.deriveSharedKey(with: alice.publicKey(), salt: [1], info: Array("other".utf8))
        let separated = !k1.constantTimeEquals(k3)
        #expect(separated)
        let stranger = try KeyMaterial.generate(spec == .x25519 ? .ecdhP256 : .x25519).publicKey()
        #expect(throws: KeywardCryptoError.self) { try alice.sharedSecret(with: stranger) }
    }

    @Test("KEM: encapsulate to the public key, decapsulate with the private key", arguments: [KeySpec.mlKEM768, .mlKEM1024, .xWing])
    func kem(spec: KeySpec) throws {
        let key = try KeyMaterial.generate(spec)
        let result = try key.publicKey().encapsulate()
        let recovered = try key.decapsulate(result.encapsulated)
        let recoveredAlike = recovered.constantTimeEquals(result.sharedSecret)
        #expect(recoveredAlike)
        #expect(throws: KeywardCryptoError.self) { try key.decapsulate(result.encapsulated.dropLast()) }
        var altered = result.encapsulated
        altered[10] ^= 1
        let other = try key.decapsulate(altered)
        let rejectedImplicitly = !other.constantTimeEquals(result.sharedSecret)
        #expect(rejectedImplicitly)
    }

    @Test("RSA-OAEP: encrypt to the public key, decrypt with the private key; bad input is typed", arguments: [KeySpec.rsa2048OAEPSHA256, .rsa3072OAEPSHA256])
    func rsaOAEP(spec: KeySpec) throws {
        let key = try KeyMaterial.generate(spec)
        let ciphertext = try key.publicKey().encrypt(Array("secret".utf8))
        #expect(try key.decryptOAEP(ciphertext) == Array("secret".utf8))
        var bad = ciphertext
        bad[5] ^= 1
        #expect(throws: KeywardCryptoError.self) { try key.decryptOAEP(bad) }
        #expect(throws: KeywardCryptoError.self) { try key.decryptOAEP(ciphertext.dropLast()) }
        #expect(throws: KeywardCryptoError.self) { try key.publicKey().encrypt([UInt8](repeating: 1, count: spec.rsaBits! / 8 - 65)) }
        #expect(throws: KeywardCryptoError.self) { try key.seal([1], keyID: KeyID(), version: 1) }
    }

    @Test("imported key material is validated: wrong lengths, bad scalars, wrong RSA sizes are refused")
    func importValidation() throws {
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .aes256GCM, importing: [UInt8](repeating: 1, count: 16)) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .hmacSHA256, importing: [UInt8](repeating: 1, count: 8)) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .ecdsaP256, importing: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .ecdsaP256, importing: [UInt8](repeating: 0xFF, count: 32)) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .mlKEM768, importing: [UInt8](repeating: 1, count: 32)) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .rsa2048PSSSHA256, importing: [UInt8](repeating: 0x30, count: 100)) }
        let rsa3072 = try KeyMaterial.generate(.rsa3072PSSSHA256)
        let der = rsa3072.secret.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial(spec: .rsa2048PSSSHA256, importing: der) }
        // Re-importing the same bytes under the same spec works and signs.
        let again = try KeyMaterial(spec: .rsa3072PSSSHA256, importing: der)
        #expect(try again.publicKey() == rsa3072.publicKey())
        // Symmetric keys have no public key.
        #expect(throws: KeywardCryptoError.self) { try KeyMaterial.generate(.aes256GCM).publicKey() }
        #expect(throws: KeywardCryptoError.self) { try PublicKey(spec: .ed25519, bytes: [1, 2, 3]) }
        #expect(throws: KeywardCryptoError.self) { try PublicKey(spec: .ecdsaP256, pem: "not pem") }
    }

    @Test("AES key wrap: RFC 3394 and 5649 round-trip; a wrong KEK or altered bytes fail")
    func keyWrap() throws {
        let kek = try SecretBytes.random(count: 32)
        let wrongKEK = try SecretBytes.random(count: 32)
        for length in 1...70 {
            let key = try SecretBytes.random(count: length)
            let padded = try KeyWrap.wrap(key, kek: kek, mode: .rfc5649)
            let paddedBack = try KeyWrap.unwrap(padded, kek: kek, mode: .rfc5649).constantTimeEquals(key)
            #expect(paddedBack)
            #expect(throws: KeywardCryptoError.self) { try KeyWrap.unwrap(padded, kek: wrongKEK, mode: .rfc5649) }
            var altered = padded
            altered[length % altered.count] ^= 4
            #expect(throws: KeywardCryptoError.self) { try KeyWrap.unwrap(altered, kek: kek, mode: .rfc5649) }
            if length >= 16 && length % 8 == 0 {
                let plain = try KeyWrap.wrap(key, kek: kek, mode: .rfc3394)
                let plainBack = try KeyWrap.unwrap(plain, kek: kek, mode: .rfc3394).constantTimeEquals(key)
                #expect(plainBack)
                #expect(throws: KeywardCryptoError.self) { try KeyWrap.unwrap(plain, kek: kek, mode: .rfc5649) }
            } else {
                #expect(throws: KeywardCryptoError.self) { try KeyWrap.wrap(key, kek: kek, mode: .rfc3394) }
            }
        }
        #expect(throws: KeywardCryptoError.self) { try KeyWrap.wrap(SecretBytes.random(count: 16), kek: SecretBytes.random(count: 20), mode: .rfc5649) }
        #expect(throws: KeywardCryptoError.self) { try KeyWrap.unwrap([UInt8](repeating: 0, count: 12), kek: kek, mode: .rfc5649) }
    }
}
