import Foundation
import KeywardCrypto
import Testing

@Suite("Key specs and purposes")
struct SpecPurposeTests {
    @Test("every spec refuses every operation of another purpose with wrongPurpose", arguments: KeySpec.allCases)
    func oneKeyOnePurpose(spec: KeySpec) throws {
        for operation in KeyOperation.allCases {
            if operation.purpose == spec.purpose {
                #expect(throws: Never.self) { try spec.check(operation) }
            } else {
                #expect(throws: KeywardCryptoError.wrongPurpose(spec: spec, operation: operation)) { try spec.check(operation) }
            }
        }
    }

    @Test("operations on a key of the wrong purpose throw wrongPurpose, never fall back")
    func operationsCheckPurpose() throws {
        let hmac = try KeyMaterial.generate(.hmacSHA256)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .hmacSHA256, operation: .encrypt)) { try hmac.seal([1], keyID: KeyID(), version: 1) }
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .hmacSHA256, operation: .sign)) { try hmac.sign(.message([1])) }
        let aes = try KeyMaterial.generate(.aes256GCM)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .aes256GCM, operation: .mac)) { try aes.mac([1]) }
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .aes256GCM, operation: .sign)) { try aes.sign(.message([1])) }
        let ed = try KeyMaterial.generate(.ed25519)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .ed25519, operation: .encrypt)) { try ed.seal([1], keyID: KeyID(), version: 1) }
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .ed25519, operation: .deriveSharedSecret)) { try ed.sharedSecret(with: ed.publicKey()) }
        let x = try KeyMaterial.generate(.x25519)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .x25519, operation: .verify)) { try x.publicKey().verify([0], for: .message([1])) }
        let kem = try KeyMaterial.generate(.mlKEM768)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .mlKEM768, operation: .decrypt)) { try kem.decryptOAEP([UInt8](repeating: 0, count: 256)) }
        let pss = try KeyMaterial.generate(.rsa2048PSSSHA256)
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .rsa2048PSSSHA256, operation: .encrypt)) { try pss.publicKey().encrypt([1]) }
        #expect(throws: KeywardCryptoError.wrongPurpose(spec: .rsa2048PSSSHA256, operation: .encapsulate)) { try pss.publicKey().encapsulate() }
    }

    @Test("spec names parse case-insensitively; unknown names are a typed error")
    func names() throws {
        #expect(try KeySpec(named: "aes-256-gcm") == .aes256GCM)
        #expect(try KeySpec(named: "ML-DSA-65") == .mlDSA65)
        #expect(throws: KeywardCryptoError.unknownSpec("AES-128-ECB")) { try KeySpec(named: "AES-128-ECB") }
        #expect(KeySpec.defaultSymmetric == .aes256GCM)
    }

    @Test("error messages name the spec and the fix, and carry no key bytes")
    func messages() {
        let message = KeywardCryptoError.wrongPurpose(spec: .hmacSHA256, operation: .encrypt).description
        #expect(message.contains("HMAC-SHA256") && message.contains("encrypt"))
    }
}
