import Foundation
import KeywardCrypto
import Testing

@Suite("Ciphertext format")
struct EnvelopeTests {
    static let aeadSpecs: [KeySpec] = [.aes256GCM, .chaCha20Poly1305]

    func isInvalidCiphertext(_ body: () throws(KeywardCryptoError) -> [UInt8]) -> Bool {
        do {
            _ = try body()
            return false
        } catch {
            if case .invalidCiphertext = error { return true }
            return false
        }
    }

    @Test("seal then open returns the plaintext, for every size and both AEADs", arguments: aeadSpecs)
    func roundTrip(spec: KeySpec) throws {
        let key = try KeyMaterial.generate(spec)
        let id = KeyID()
        for size in [0, 1, 15, 16, 17, 32, 1024, 65536] {
            let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let sealed = try key.seal(plaintext, keyID: id, version: 7, context: ["tenant": "a"])
            #expect(sealed.count == CiphertextHeader.byteCount + 12 + size + 16)
            #expect(try key.open(sealed, keyID: id, version: 7, context: ["tenant": "a"]) == plaintext)
            let header = try CiphertextHeader(parsing: sealed)
            #expect(header.keyID == id && header.version == 7 && header.algorithm.spec == spec)
        }
    }

    @Test("nonces never repeat: 20,000 seals across 4 threads give 20,000 distinct nonces")
    func noncesAreFresh() async throws {
        let id = KeyID()
        let nonces = try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let key = try KeyMaterial(spec: .aes256GCM, secret: SecretBytes(copying: [UInt8](repeating: 1, count: 32)))
                    return try (0..<5000).map { _ in Array(try key.seal([1, 2, 3], keyID: id, version: 1)[22..<34]) }
                }
            }
            return try await group.reduce(into: [[UInt8]]()) { $0 += $1 }
        }
        #expect(nonces.count == 20_000)
        #expect(Set(nonces).count == 20_000)
        #expect(!nonces.contains([UInt8](repeating: 0, count: 12)))
    }

    @Test("flipping any single byte of a ciphertext gives invalidCiphertext", arguments: aeadSpecs)
    func everyByteFlipIsDetected(spec: KeySpec) throws {
        let key = try KeyMaterial.generate(spec)
        let id = KeyID()
        let sealed = try key.seal(Array("attack at dawn".utf8), keyID: id, version: 3, context: ["k": "v"])
        for index in sealed.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var tampered = sealed
                tampered[index] ^= mask
                #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(tampered, keyID: id, version: 3, context: ["k": "v"]) },
                        "byte \(index) ^ \(mask) was not detected")
            }
        }
    }

    @Test("every truncation, an empty blob and random blobs give invalidCiphertext")
    func truncatedAndRandomBlobs() throws {
        let key = try KeyMaterial.generate(.aes256GCM)
        let id = KeyID()
        let sealed = try key.seal(Array(repeating: 0x41, count: 40), keyID: id, version: 1)
        for length in 0..<sealed.count {
            #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed.prefix(length), keyID: id, version: 1) })
        }
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 21, 22, 49, 50, 51, 64, 1000] {
            for _ in 0..<20 {
                var blob = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if length > 0 && Bool.random() { blob[0] = 1 }
                #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(blob, keyID: id, version: 1) })
            }
        }
    }

    @Test("another context, key id, version or key is refused")
    func bindingsAreChecked() throws {
        let key = try KeyMaterial.generate(.aes256GCM)
        let other = try KeyMaterial.generate(.aes256GCM)
        let id = KeyID()
        let sealed = try key.seal([9, 9, 9], keyID: id, version: 2, context: ["purpose": "invoices"])
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: id, version: 2) })
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: id, version: 2, context: ["purpose": "payroll"]) })
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: id, version: 2, context: ["purpose": "invoices", "x": ""]) })
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: KeyID(), version: 2, context: ["purpose": "invoices"]) })
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: id, version: 3, context: ["purpose": "invoices"]) })
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try other.open(sealed, keyID: id, version: 2, context: ["purpose": "invoices"]) })
        // Rewriting the header's key id and version to match still fails: the header is AAD.
        var rewritten = sealed
        let newID = KeyID()
        rewritten.replaceSubrange(1..<17, with: newID.bytes)
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(rewritten, keyID: newID, version: 2, context: ["purpose": "invoices"]) })
        // A ChaCha20 key does not open an AES-GCM ciphertext, even with the same bytes.
        let chacha = try KeyMaterial(spec: .chaCha20Poly1305, secret: SecretBytes(copying: [UInt8](repeating: 7, count: 32)))
        let aes = try KeyMaterial(spec: .aes256GCM, secret: SecretBytes(copying: [UInt8](repeating: 7, count: 32)))
        let aesSealed = try aes.seal([1], keyID: id, version: 1)
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try chacha.open(aesSealed, keyID: id, version: 1) })
    }

    @Test("a context of {\"ab\":\"c\"} does not open a ciphertext made with {\"a\":\"bc\"}")
    func canonicalContextIsUnambiguous() throws {
        let key = try KeyMaterial.generate(.aes256GCM)
        let id = KeyID()
        let sealed = try key.seal([1, 2], keyID: id, version: 1, context: ["a": "bc"])
        #expect(isInvalidCiphertext { () throws(KeywardCryptoError) in try key.open(sealed, keyID: id, version: 1, context: ["ab": "c"]) })
        #expect(try EncryptionContext(["a": "bc"]).canonicalBytes() != EncryptionContext(["ab": "c"]).canonicalBytes())
        #expect(try EncryptionContext(["a": "b", "c": "d"]).canonicalBytes() == EncryptionContext(["c": "d", "a": "b"]).canonicalBytes())
        #expect(try EncryptionContext(["a": "b", "c": "d"]).canonicalBytes() != EncryptionContext(["a": "bc", "": "d"]).canonicalBytes())
    }

    @Test("the header is laid out as docs/formats.md says")
    func headerLayout() throws {
        let key = try KeyMaterial.generate(.aes256GCM)
        let id = try KeyID(string: "00112233-4455-6677-8899-aabbccddeeff")
        let sealed = try key.seal([], keyID: id, version: 0x0102_0304, context: .empty)
        #expect(sealed[0] == 1)
        #expect(Array(sealed[1..<17]) == [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        #expect(Array(sealed[17..<21]) == [1, 2, 3, 4])
        #expect(sealed[21] == SymmetricAlgorithm.aes256GCM.rawValue)
        #expect(sealed.count == 22 + 12 + 16)
    }

    @Test("a key id parses from its text form in either case; aliases, near-UUIDs and empty text are no id, and the throwing parser names them")
    func keyIDParsing() throws {
        let id = KeyID()
        #expect(KeyID(parsing: id.description) == id)
        #expect(KeyID(parsing: id.description.uppercased()) == id)
        #expect(try KeyID(string: id.description) == id)
        for text in ["", "transit/bench-aes256", "alias/orders", String(id.description.dropLast()), id.description + "0",
                     id.description.replacingOccurrences(of: "-", with: "_"), "0011223344556677-8899-aabb-ccddeeff0011", "g0112233-4455-6677-8899-aabbccddeeff"] {
            #expect(KeyID(parsing: text) == nil, "\(text)")
            #expect(throws: KeywardCryptoError.self, "\(text)") { try KeyID(string: text) }
        }
    }

    @Test("an oversized context is refused with invalidParameter")
    func oversizedContext() throws {
        let key = try KeyMaterial.generate(.aes256GCM)
        let big = EncryptionContext(Dictionary(uniqueKeysWithValues: (0..<65).map { ("k\($0)", "v") }))
        #expect(throws: KeywardCryptoError.self) { try key.seal([1], keyID: KeyID(), version: 1, context: big) }
        let long = EncryptionContext(["k": String(repeating: "x", count: 9000)])
        #expect(throws: KeywardCryptoError.self) { try key.seal([1], keyID: KeyID(), version: 1, context: long) }
    }
}
