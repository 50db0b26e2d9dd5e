import CryptoExtras
import Foundation
import KeywardCrypto
import Testing

/// RSA private keys imported (BYOK) or opened from the store or a backup: every accepted form
/// becomes the same PKCS #1 DER, read in locked memory; every malformed one is a typed error.
@Suite("RSA private key import")
struct RSAImportTests {
    /// The key's private representation (what the store seals): PKCS #1 DER.
    static func stored(_ material: borrowing KeyMaterial) -> [UInt8] {
        material.secret.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
    }

    @Test("PKCS#1 DER, PKCS#8 DER and PEM of either (with CRLF and surrounding whitespace) import as the same PKCS#1 key, which signs")
    func everyFormTheSameKey() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let pkcs1 = Array(key.derRepresentation)
        let forms: [(String, [UInt8])] = [
            ("PKCS#1 DER", pkcs1),
            ("PKCS#8 DER", Array(key.pkcs8DERRepresentation)),
            ("PKCS#1 PEM", Array(key.pemRepresentation.utf8)),
            ("PKCS#8 PEM", Array(key.pkcs8PEMRepresentation.utf8)),
            ("PEM with CRLF and whitespace", Array(("\n  " + key.pkcs8PEMRepresentation.replacingOccurrences(of: "\n", with: "\r\n") + "\n\n").utf8)),
        ]
        for (name, bytes) in forms {
            let material = try KeyMaterial(spec: .rsa2048PSSSHA256, importing: bytes)
            #expect(Self.stored(material) == pkcs1, "\(name)")
            let signature = try material.sign(.message([1, 2, 3]))
            #expect(try material.publicKey().verify(signature, for: .message([1, 2, 3])), "\(name)")
        }
    }

    @Test("malformed, truncated, encrypted, padded or foreign keys are refused with invalidKeyMaterial, never a crash")
    func malformedRefused() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let pkcs1 = Array(key.derRepresentation)
        let pkcs8 = Array(key.pkcs8DERRepresentation)
        let pem = key.pkcs8PEMRepresentation
        let body = pem.split(separator: "\n").dropFirst().dropLast().joined()
        let ecKey = try KeyMaterial.generate(.ecdsaP256).pkcs8().withSecretBytes(InsecureSecretAccess.token) { Array($0) }
        var cases: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated PKCS#1", Array(pkcs1.dropLast(10))),
            ("PKCS#1 with a byte after it", pkcs1 + [0]),
            ("truncated PKCS#8", Array(pkcs8.prefix(40))),
            ("an EC key in PKCS#8", ecKey),
            ("encrypted PEM", Array("-----BEGIN ENCRYPTED PRIVATE KEY-----\n\(body)\n-----END ENCRYPTED PRIVATE KEY-----\n".utf8)),
            ("PEM without its END line", Array("-----BEGIN PRIVATE KEY-----\n\(body)\n".utf8)),
            ("PEM with text after it", Array((pem + "trailing").utf8)),
            ("PEM with a bad character", Array(pem.replacingOccurrences(of: "A", with: "*").utf8)),
            ("PEM with padding inside", Array("-----BEGIN PRIVATE KEY-----\nMII=Ev\n-----END PRIVATE KEY-----\n".utf8)),
            ("a long length past the end", [0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("a non-minimal length", [0x30, 0x81, 0x03, 0x02, 0x01, 0x00]),
            ("another key size", Array(try _RSA.Signing.PrivateKey(keySize: .bits3072).derRepresentation)),
        ]
        var flipped = pkcs8
        flipped[12] ^= 0xFF  // inside the rsaEncryption OID
        cases.append(("PKCS#8 with another algorithm", flipped))
        for (name, bytes) in cases {
            do {
                _ = try KeyMaterial(spec: .rsa2048PSSSHA256, importing: bytes)
                Issue.record("\(name) was accepted")
            } catch {
                guard case .invalidKeyMaterial = error else { Issue.record("\(name): \(error)"); continue }
            }
        }
    }
}
