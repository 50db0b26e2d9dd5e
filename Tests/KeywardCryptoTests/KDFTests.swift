import Foundation
@_spi(KnownAnswerTests) import KeywardCrypto
import KeywardTestSupport
import Testing

@Suite("Passphrase KDFs")
struct KDFTests {
    func hex(_ secret: borrowing SecretBytes) -> String { secret.withSecretBytes(InsecureSecretAccess.token) { Array($0).hex } }

    @Test("Argon2id matches the RFC 9106 section 5.3 test vector (with secret and associated data)")
    func rfc9106Vector() throws {
        let password = [UInt8](repeating: 0x01, count: 32)
        let tag = try password.withUnsafeBytes { raw in
            try hex(Argon2id.derive(
                password: raw, salt: [UInt8](repeating: 0x02, count: 16),
                secret: [UInt8](repeating: 0x03, count: 8), associatedData: [UInt8](repeating: 0x04, count: 12),
                iterations: 3, memoryKiB: 32, parallelism: 4, outputByteCount: 32))
        }
        #expect(tag == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
    }

    @Test("Argon2id with Keyward's default costs (64 MiB, t=3, p=4) matches Python cryptography")
    func argon2idAgainstOracle() throws {
        let parameters = KDFParameters.argon2idDefault()
        #expect(parameters.algorithm == .argon2id(memoryKiB: 65536, iterations: 3, parallelism: 4))
        let passphrase = try SecretBytes(copying: Array("correct horse battery staple".utf8))
        let ours = try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: parameters)
        let theirs = try PythonOracle.run("""
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
            print(Argon2id(salt=bytes.fromhex('\(parameters.salt.hex)'), length=32, iterations=3, lanes=4, memory_cost=65536).derive(b'correct horse battery staple').hex())
            """)
        #expect(hex(ours) == theirs)
    }

    @Test("scrypt (N=2^15, r=8, p=1) and PBKDF2-SHA256 (600,000) match Python cryptography")
    func scryptAndPBKDF2AgainstOracle() throws {
        let passphrase = try SecretBytes(copying: Array("pässwörd".utf8))
        let salt = KDFParameters.randomSalt()
        let scrypt = try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: KDFParameters(algorithm: .scrypt(cost: 1 << 15, blockSize: 8, parallelism: 1), salt: salt))
        let pbkdf2 = try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: KDFParameters(algorithm: .pbkdf2SHA256(iterations: 600_000), salt: salt))
        let theirs = try PythonOracle.run("""
            from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
            from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
            from cryptography.hazmat.primitives import hashes
            salt = bytes.fromhex('\(salt.hex)'); pw = 'pässwörd'.encode()
            print(Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(pw).hex())
            print(PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=600000).derive(pw).hex())
            """).split(separator: "\n").map(String.init)
        #expect(theirs == [hex(scrypt), hex(pbkdf2)])
    }

    @Test("the same passphrase and parameters give the same key; another salt or passphrase another key")
    func deterministic() throws {
        let parameters = KDFParameters(algorithm: .argon2id(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1), salt: KDFParameters.randomSalt())
        let a = try PassphraseKDF.deriveKey(passphrase: SecretBytes(copying: Array("pw".utf8)), parameters: parameters)
        let b = try PassphraseKDF.deriveKey(passphrase: SecretBytes(copying: Array("pw".utf8)), parameters: parameters)
        let c = try PassphraseKDF.deriveKey(passphrase: SecretBytes(copying: Array("pX".utf8)), parameters: parameters)
        let d = try PassphraseKDF.deriveKey(passphrase: SecretBytes(copying: Array("pw".utf8)), parameters: KDFParameters(algorithm: parameters.algorithm, salt: KDFParameters.randomSalt()))
        let behaves = a.constantTimeEquals(b) && !a.constantTimeEquals(c) && !a.constantTimeEquals(d)
        #expect(behaves)
    }

    @Test("weak parameters are refused with weakKDFParameters", arguments: [
        KDFParameters(algorithm: .argon2id(memoryKiB: 1024, iterations: 3, parallelism: 4), salt: [UInt8](repeating: 1, count: 16)),
        KDFParameters(algorithm: .argon2id(memoryKiB: 65536, iterations: 1, parallelism: 4), salt: [UInt8](repeating: 1, count: 16)),
        KDFParameters(algorithm: .argon2id(memoryKiB: 65536, iterations: 3, parallelism: 4), salt: [UInt8](repeating: 1, count: 8)),
        KDFParameters(algorithm: .scrypt(cost: 1 << 10, blockSize: 8, parallelism: 1), salt: [UInt8](repeating: 1, count: 16)),
        KDFParameters(algorithm: .scrypt(cost: 1 << 15, blockSize: 1, parallelism: 1), salt: [UInt8](repeating: 1, count: 16)),
        KDFParameters(algorithm: .pbkdf2SHA256(iterations: 10_000), salt: [UInt8](repeating: 1, count: 16)),
    ])
    func weakParametersRefused(parameters: KDFParameters) throws {
        let passphrase = try SecretBytes(copying: Array("pw".utf8))
        do {
            _ = try PassphraseKDF.deriveKey(passphrase: passphrase, parameters: parameters)
            Issue.record("weak parameters were accepted: \(parameters)")
        } catch {
            guard case .weakKDFParameters = error else { Issue.record("expected weakKDFParameters, got \(error)"); return }
        }
    }

    @Test("malformed parameters and an empty passphrase are typed errors")
    func malformed() throws {
        let empty = try SecretBytes(copying: [UInt8]())
        #expect(throws: KeywardCryptoError.self) { try PassphraseKDF.deriveKey(passphrase: empty, parameters: .argon2idDefault()) }
        let notPowerOfTwo = KDFParameters(algorithm: .scrypt(cost: 40000, blockSize: 8, parallelism: 1), salt: KDFParameters.randomSalt())
        #expect(throws: KeywardCryptoError.self) { try notPowerOfTwo.validate() }
        #expect(throws: KeywardCryptoError.self) { try KDFParameters(algorithm: .argon2id(memoryKiB: 65536, iterations: 3, parallelism: 0), salt: KDFParameters.randomSalt()).validate() }
    }

    @Test("the parameter record round-trips through JSON, salt and costs included")
    func recordIsCodable() throws {
        let parameters = KDFParameters.scryptDefault()
        let decoded = try JSONDecoder().decode(KDFParameters.self, from: JSONEncoder().encode(parameters))
        #expect(decoded == parameters)
    }
}
