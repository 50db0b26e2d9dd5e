import ArgumentParser
import Foundation
import KeywardCrypto

/// `keyward selftest`: generates a key of every spec, runs its operations both ways and checks
/// the results, printing one line per algorithm. Exits non-zero if any check fails.
struct SelfTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Exercise every key spec: generate, use, verify; one line per algorithm."
    )

    @Flag(help: "Print the results as JSON lines.")
    var json = false

    func run() async throws {
        try Keyward.harden()
        var failed = 0
        for spec in KeySpec.allCases {
            let start = ContinuousClock.now
            let outcome: Result<String, any Error> = Result { try SelfTest.exercise(spec) }
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
            switch outcome {
            case .success(let detail):
                print(json
                    ? #"{"spec":"\#(spec.rawValue)","purpose":"\#(spec.purpose.rawValue)","ok":true,"ms":\#(String(format: "%.1f", ms))}"#
                    : "ok    \(spec.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)) \(spec.purpose.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(detail) (\(String(format: "%.1f", ms)) ms)")
            case .failure(let error):
                failed += 1
                print(json
                    ? #"{"spec":"\#(spec.rawValue)","purpose":"\#(spec.purpose.rawValue)","ok":false,"error":"\#(String(describing: error).replacingOccurrences(of: "\"", with: "'"))"}"#
                    : "FAIL  \(spec.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)) \(spec.purpose.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(error)")
            }
        }
        if failed > 0 {
            throw SelfTestFailure(count: failed)
        }
        if !json { print("selftest: all \(KeySpec.allCases.count) key specs passed") }
    }

    struct SelfTestFailure: Error, CustomStringConvertible {
        let count: Int
        var description: String { "selftest: \(count) key spec(s) failed" }
    }

    struct CheckFailed: Error, CustomStringConvertible {
        let description: String
    }

    static func check(_ condition: Bool, _ what: String) throws {
        if !condition { throw CheckFailed(description: what) }
    }

    /// Runs one spec's operations and returns a short description of what was checked.
    static func exercise(_ spec: KeySpec) throws -> String {
        let key = try KeyMaterial.generate(spec)
        let message = Array("Keyward selftest".utf8)
        switch spec.purpose {
        case .encrypt where spec.isSymmetric:
            let id = KeyID()
            let sealed = try key.seal(message, keyID: id, version: 1, context: ["selftest": "1"])
            try check(try key.open(sealed, keyID: id, version: 1, context: ["selftest": "1"]) == message, "round trip")
            var tampered = sealed
            tampered[tampered.count - 1] ^= 1
            try check((try? key.open(tampered, keyID: id, version: 1, context: ["selftest": "1"])) == nil, "tamper detection")
            try check((try? key.open(sealed, keyID: id, version: 1, context: ["selftest": "2"])) == nil, "context binding")
            return "seal/open \(sealed.count) B, tamper and context checks"
        case .encrypt:
            let ciphertext = try key.publicKey().encrypt(message)
            try check(try key.decryptOAEP(ciphertext) == message, "OAEP round trip")
            return "OAEP encrypt/decrypt \(ciphertext.count) B"
        case .mac:
            let tag = try key.mac(message)
            try check(try key.verifyMAC(tag, for: message), "MAC verifies")
            try check(!(try key.verifyMAC(tag, for: message + [0])), "MAC rejects another message")
            return "MAC \(tag.count) B, verify both ways"
        case .sign:
            let publicKey = try key.publicKey()
            let signature = try key.sign(.message(message))
            try check(try publicKey.verify(signature, for: .message(message)), "signature verifies")
            try check(!(try publicKey.verify(signature, for: .message(message + [0]))), "signature rejects another message")
            return "sign/verify \(signature.count) B signature, public key \(publicKey.representation.count) B"
        case .keyAgreement:
            let peer = try KeyMaterial.generate(spec)
            let mine = try key.deriveSharedKey(with: peer.publicKey(), info: message)
            let theirs = try peer.deriveSharedKey(with: key.publicKey(), info: message)
            try check(mine.constantTimeEquals(theirs), "both sides agree")
            return "agreement + HKDF-SHA256, both sides equal"
        case .kem:
            let encapsulation = try key.publicKey().encapsulate()
            let recovered = try key.decapsulate(encapsulation.encapsulated)
            try check(recovered.constantTimeEquals(encapsulation.sharedSecret), "decapsulation recovers the secret")
            return "encapsulate/decapsulate, \(encapsulation.encapsulated.count) B encapsulation"
        }
    }
}

extension Result where Failure == any Error {
    init(_ body: () throws -> Success) {
        do { self = .success(try body()) } catch { self = .failure(error) }
    }
}
