import Foundation
import KeywardCrypto
import KeywardTestSupport
import Testing

/// Keyward's ciphertexts (docs/formats.md) are the AEADs they name: Python `cryptography` opens
/// what Keyward seals, with the header and canonical context as AAD, and Keyward opens what
/// Python seals in that layout. For every symmetric encryption spec, AES-128-GCM included.
@Suite("AEAD interoperability with Python cryptography")
struct AEADInteropTests {
    @Test("a Keyward ciphertext opens in Python cryptography, and one Python makes in Keyward's layout opens in Keyward",
          arguments: [KeySpec.aes128GCM, .aes256GCM, .chaCha20Poly1305])
    func bothWays(_ spec: KeySpec) throws {
        let keyBytes = (0..<(spec == .aes128GCM ? 16 : 32)).map { _ in UInt8.random(in: 0...255) }
        let material = try KeyMaterial(spec: spec, importing: keyBytes)
        let keyID = KeyID()
        let context = EncryptionContext(["tenant": "a", "purpose": "interop"])
        let sealed = try material.seal(Array("sealed by keyward".utf8), keyID: keyID, version: 7, context: context)
        #expect(sealed.count == 50 + 17 && SymmetricAlgorithm(rawValue: sealed[21])?.spec == spec)
        let cipher = spec == .chaCha20Poly1305 ? "ChaCha20Poly1305" : "AESGCM"
        let output = try PythonOracle.run("""
            from cryptography.hazmat.primitives.ciphers.aead import \(cipher)
            import os
            key = bytes.fromhex('\(keyBytes.hex)'); ct = bytes.fromhex('\(sealed.hex)'); ctx = bytes.fromhex('\(try context.canonicalBytes().hex)')
            print(\(cipher)(key).decrypt(ct[22:34], ct[34:], ct[:22] + ctx).hex())
            nonce = os.urandom(12); header = ct[:22]
            print((header + nonce + \(cipher)(key).encrypt(nonce, b'sealed by python', header + ctx)).hex())
            """).split(separator: "\n").map(String.init)
        #expect(output.first == Array("sealed by keyward".utf8).hex)
        try #require(output.count == 2, "\(output)")
        let theirs = [UInt8](hexString: output[1])
        #expect(try material.open(theirs, keyID: keyID, version: 7, context: context) == Array("sealed by python".utf8))
        // Another context does not open it.
        #expect(throws: KeywardCryptoError.self) { try material.open(theirs, keyID: keyID, version: 7, context: EncryptionContext(["tenant": "b"])) }
    }
}
