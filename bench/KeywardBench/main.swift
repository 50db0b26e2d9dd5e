import Crypto
import Foundation
import KeywardCrypto

// Release-mode micro-benchmarks for KeywardCrypto on one core.
//
// Every case runs a fixed number of operations per round (bounded loops, no timing asserts).
// Rounds are interleaved across all cases (A B C … A B C …) so that drift in the machine's
// speed hits every case alike, and each case reports its best round.
// Output: one tab-separated line per case: name, message bytes, operations/s, MB/s.

let quick = CommandLine.arguments.contains("--quick")
let rounds = quick ? 3 : 9

struct Case {
    let name: String
    let bytes: Int
    let iterations: Int
    let body: () throws -> Void
}

var cases: [Case] = []
@MainActor func add(_ name: String, bytes: Int, iterations: Int, _ body: @escaping () throws -> Void) {
    cases.append(Case(name: name, bytes: bytes, iterations: max(20, quick ? iterations / 5 : iterations), body: body))
}

func opsFor(_ bytes: Int) -> Int { bytes <= 1024 ? 100_000 : max(2_000, 100_000 * 1024 / bytes) }

let sizes = [32, 1024, 16384, 65536]
let keyID = KeyID()
let context: EncryptionContext = ["tenant": "acme", "purpose": "bench"]

for spec in [KeySpec.aes256GCM, .chaCha20Poly1305] {
    let key = try KeyMaterial.generate(spec)
    for size in sizes {
        let plaintext = [UInt8](repeating: 0x5A, count: size)
        let sealed = try key.seal(plaintext, keyID: keyID, version: 1, context: context)
        add("keyward.seal.\(spec.rawValue)", bytes: size, iterations: opsFor(size)) {
            _ = try key.seal(plaintext, keyID: keyID, version: 1, context: context)
        }
        add("keyward.open.\(spec.rawValue)", bytes: size, iterations: opsFor(size)) {
            _ = try key.open(sealed, keyID: keyID, version: 1, context: context)
        }
    }
}

// Raw swift-crypto AES.GCM.seal in the same run: a pre-built SymmetricKey, no header, no context.
let rawKey = SymmetricKey(size: .bits256)
for size in sizes {
    let plaintext = [UInt8](repeating: 0x5A, count: size)
    add("swiftcrypto.AES.GCM.seal", bytes: size, iterations: opsFor(size)) {
        _ = try AES.GCM.seal(plaintext, using: rawKey)
    }
}

// Sign and verify per spec, 32-byte message.
let message = [UInt8](repeating: 0x42, count: 32)
for spec in KeySpec.allCases where spec.purpose == .sign {
    let key = try KeyMaterial.generate(spec)
    let publicKey = try key.publicKey()
    let signature = try key.sign(.message(message))
    let n: Int
    switch spec {
    case .ecdsaP256, .ed25519: n = 4000
    case .rsa4096PSSSHA256: n = 60
    case .rsa3072PSSSHA256: n = 150
    default: n = 400
    }
    add("keyward.sign.\(spec.rawValue)", bytes: 32, iterations: n) { _ = try key.sign(.message(message)) }
    add("keyward.verify.\(spec.rawValue)", bytes: 32, iterations: n) { _ = try publicKey.verify(signature, for: .message(message)) }
}

for spec in [KeySpec.hmacSHA256, .hmacSHA512] {
    let key = try KeyMaterial.generate(spec)
    add("keyward.mac.\(spec.rawValue)", bytes: 32, iterations: 100_000) { _ = try key.mac(message) }
}

// Warm-up: one pass over everything.
for item in cases { for _ in 0..<min(item.iterations, 200) { try item.body() } }

var best = [Double](repeating: .infinity, count: cases.count)
for _ in 0..<rounds {
    for (index, item) in cases.enumerated() {
        let start = ContinuousClock.now
        for _ in 0..<item.iterations { try item.body() }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        best[index] = min(best[index], seconds / Double(item.iterations))
    }
}
for (index, item) in cases.enumerated() {
    let perSecond = 1 / best[index]
    print("\(item.name)\t\(item.bytes)\t\(String(format: "%.0f", perSecond))\t\(String(format: "%.1f", perSecond * Double(item.bytes) / 1e6))")
}
