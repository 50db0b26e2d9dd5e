import Crypto
import Foundation
import KeywardCrypto
import Testing

/// Ed25519 and P-256 sign through BoringSSL with the stored public half or the bare scalar
/// (decision 0012); these tests hold that path to swift-crypto's own results.
@Suite("Signing without re-deriving the key")
struct SigningBackendTests {
    @Test("Ed25519 signatures are byte for byte swift-crypto's (the scheme is deterministic), for many keys and message lengths")
    func ed25519MatchesSwiftCrypto() throws {
        for round in 0..<40 {
            let material = try KeyMaterial.generate(.ed25519)
            let seed = material.secret.withSecretBytes(InsecureSecretAccess.token) { Data($0) }
            let reference = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            let message = [UInt8]((0..<(round * 7)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) })
            let signature = try material.sign(.message(message))
            #expect(signature == [UInt8](try reference.signature(for: message)))
            #expect(reference.publicKey.isValidSignature(signature, for: message))
        }
    }

    @Test("P-256 signatures over a message or a digest verify with swift-crypto, are DER, and differ each time (random nonces)")
    func p256VerifiesWithSwiftCrypto() throws {
        for round in 0..<40 {
            let material = try KeyMaterial.generate(.ecdsaP256)
            let scalar = material.secret.withSecretBytes(InsecureSecretAccess.token) { Data($0) }
            let publicKey = try P256.Signing.PrivateKey(rawRepresentation: scalar).publicKey
            let message = [UInt8]((0..<(round * 5)).map { UInt8(truncatingIfNeeded: $0 &+ round) })
            let first = try material.sign(.message(message))
            let second = try material.sign(.message(message))
            #expect(first != second)
            for signature in [first, second] {
                #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: message))
            }
            let digest = Array(SHA256.hash(data: message))
            let overDigest = try material.sign(.digest(digest))
            #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: overDigest), for: message))
            // A wrong-length digest is refused, not signed.
            #expect(throws: KeywardCryptoError.self) { _ = try material.sign(.digest(Array(digest.prefix(31)))) }
        }
    }
}
