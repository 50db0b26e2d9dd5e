import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto

/// Transit's cryptographic endpoints, each a `KeyService` call on the key `<mount>/<name>`.
enum TransitCrypto {
    /// `vault:vN:` and the base64 of Keyward's bytes.
    static func wrap(_ bytes: [UInt8], version: UInt32) -> String { "vault:v\(version):" + Base64.encode(bytes) }

    /// The version and bytes of a `vault:vN:...` value.
    static func unwrap(_ text: String, field: String) throws(APIError) -> (version: UInt32, bytes: [UInt8]) {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "vault", parts[1].hasPrefix("v"), let version = UInt32(parts[1].dropFirst()), version >= 1,
              let bytes = Base64.decode(String(parts[2])) else {
            throw TransitError.invalid("invalid \(field): expected vault:vN: and base64")
        }
        return (version, bytes)
    }

    /// Transit's `context` and `associated_data` as Keyward encryption context pairs.
    static func context(_ input: TransitInput) throws(APIError) -> EncryptionContext {
        var pairs: [String: String] = [:]
        if let context = try input.string("context") { pairs["transit-context"] = context }
        if let data = try input.string("associated_data") { pairs["transit-associated-data"] = data }
        return EncryptionContext(pairs)
    }

    /// Runs `one` on the body, or on each item of `batch_input` (errors per item, as Transit).
    static func single(_ call: TransitCall, _ one: (TransitInput) async throws -> [(String, String)]) async throws -> Response {
        guard let items = try call.input.batch() else {
            let fields = try await one(call.input)
            return call.reply { json in for (name, value) in fields { member(&json, name, value) } }
        }
        var results: [[(String, String)]] = []
        for item in items {
            do {
                results.append(try await one(item))
            } catch {
                results.append([("error", APIError(any: error).message)])
            }
        }
        return call.reply { json in
            json.member("batch_results") { json in
                json.array { json in for fields in results { json.object { json in for (name, value) in fields { member(&json, name, value) } } } }
            }
        }
    }

    /// `key_version` fields are numbers; the rest strings.
    private static func member(_ json: inout JSONWriter, _ name: String, _ value: String) {
        if name == "key_version", let number = Int(value) { json.member(name, number) } else if name == "valid" { json.member(name, value == "true") } else { json.member(name, value) }
    }

    static func encrypt(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let plaintext = try input.base64("plaintext") else { throw TransitError.invalid("missing plaintext to encrypt") }
            let context = try context(input)
            let result = try await call.run { () async throws(KeywardError) in try await call.service.encrypt(plaintext, key: key, context: context, actor: call.caller) }
            if let asked = try input.int("key_version"), asked != 0, asked != Int(result.version) {
                throw TransitError.invalid("key_version \(asked): Keyward encrypts with the latest version only (\(result.version))")
            }
            return [("ciphertext", wrap(result.ciphertext, version: result.version)), ("key_version", String(result.version))]
        }
    }

    static func decrypt(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let text = try input.string("ciphertext") else { throw TransitError.invalid("missing ciphertext to decrypt") }
            let (version, bytes) = try unwrap(text, field: "ciphertext")
            let context = try context(input)
            let result = try await call.run { () async throws(KeywardError) in
                try await call.service.decrypt(bytes, context: context, expectedKey: key, actor: call.caller)
            }
            guard result.version == version else { throw TransitError.invalid("invalid ciphertext: the version prefix does not match its ciphertext") }
            return [("plaintext", Base64.encode(result.plaintext))]
        }
    }

    /// Re-encrypts under the key's latest version without the plaintext leaving the service.
    static func rewrap(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let text = try input.string("ciphertext") else { throw TransitError.invalid("missing ciphertext to rewrap") }
            let (version, bytes) = try unwrap(text, field: "ciphertext")
            guard (try? CiphertextHeader(parsing: bytes))?.version == version else {
                throw TransitError.invalid("invalid ciphertext: the version prefix does not match its ciphertext")
            }
            let context = try context(input)
            let source = try await call.run { () async throws(KeywardError) in try await call.service.resolve(key) }
            guard (try? CiphertextHeader(parsing: bytes))?.keyID == source else { throw TransitError.invalid("the ciphertext was not made with this key") }
            let result = try await call.run { () async throws(KeywardError) in
                try await call.service.reEncrypt(bytes, sourceContext: context, destinationKey: key, destinationContext: context, actor: call.caller)
            }
            return [("ciphertext", wrap(result.ciphertext, version: result.version)), ("key_version", String(result.version))]
        }
    }

    /// A hash of `input` (`sha2-256` by default; `sha2-224/384/512`), hex or base64 (`format`).
    static func hash(_ call: TransitCall, algorithm path: String?) throws -> Response {
        guard let input = try call.input.base64("input") else { throw TransitError.invalid("missing input to hash") }
        let algorithm = try path ?? call.input.string("algorithm") ?? "sha2-256"
        guard let digestAlgorithm = DigestAlgorithm(rawValue: algorithm) else {
            throw TransitError.invalid("unsupported hash algorithm \(algorithm.prefix(40)) (sha2-256, sha2-384, sha2-512)")
        }
        let digest = digestAlgorithm.hash(input)
        let format = try call.input.string("format") ?? "hex"
        guard format == "hex" || format == "base64" else { throw TransitError.invalid("format must be hex or base64") }
        let text = format == "hex" ? Hex.encode(digest) : Base64.encode(digest)
        return call.reply { json in json.member("sum", text) }
    }

    static func dataKey(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        let kind = try call.context.parameter("kind")
        guard kind == "plaintext" || kind == "wrapped" else { throw TransitError.invalid("datakey type must be plaintext or wrapped") }
        let bits = try call.input.int("bits") ?? 256
        guard [128, 256, 512].contains(bits) else { throw TransitError.invalid("bits must be 128, 256 or 512") }
        let context = try context(call.input)
        let made = try await call.run { () async throws(KeywardError) in
            try await call.service.generateDataKey(key: key, byteCount: bits / 8, context: context, actor: call.caller)
        }
        let ciphertext = wrap(made.ciphertext, version: made.version)
        let plaintext = kind == "plaintext" ? made.plaintext.withSecretBytes(InsecureSecretAccess.token) { Base64.encode(Array($0)) } : nil
        return call.reply { json in
            json.member("ciphertext", ciphertext)
            json.member("plaintext", plaintext)
            json.member("key_version", Int(made.version))
        }
    }

    static func hmac(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input for HMAC") }
            try checkHash(input, "algorithm")
            let result = try await call.run { () async throws(KeywardError) in try await call.service.mac(message, key: key, actor: call.caller) }
            return [("hmac", wrap(result.tag, version: result.version)), ("key_version", String(result.version))]
        }
    }

    static func sign(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input to sign") }
            try checkHash(input, "hash_algorithm")
            let signing: SigningInput = try input.bool("prehashed") == true ? .digest(message) : .message(message)
            let result = try await call.run { () async throws(KeywardError) in try await call.service.sign(signing, key: key, actor: call.caller) }
            return [("signature", wrap(result.signature, version: result.version)), ("key_version", String(result.version))]
        }
    }

    static func verify(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input to verify") }
            let valid: Bool
            if let text = try input.string("hmac") {
                let (version, tag) = try unwrap(text, field: "hmac")
                valid = try await call.run { () async throws(KeywardError) in
                    try await call.service.verifyMAC(tag, for: message, key: key, version: version, actor: call.caller)
                }
            } else if let text = try input.string("signature") {
                let (version, signature) = try unwrap(text, field: "signature")
                let signing: SigningInput = try input.bool("prehashed") == true ? .digest(message) : .message(message)
                valid = try await call.run { () async throws(KeywardError) in
                    try await call.service.verify(signature, for: signing, key: key, version: version, actor: call.caller)
                }
            } else {
                throw TransitError.invalid("signature or hmac is required")
            }
            return [("valid", valid ? "true" : "false")]
        }
    }

    static func random(_ call: TransitCall, count: Int) async throws -> Response {
        guard (1...1024).contains(count) else { throw TransitError.invalid("bytes must be 1 to 1024") }
        let bytes = try await call.run { () async throws(KeywardError) in try await call.service.random(count: count, actor: call.caller) }
        return call.reply { json in json.member("random_bytes", base64: bytes) }
    }

    /// Keyward's keys hash as their spec says (SHA-256 for HMAC, P-256, RSA and Ed25519's own):
    /// another algorithm asked for is refused rather than ignored.
    private static func checkHash(_ input: TransitInput, _ field: String) throws(APIError) {
        guard let asked = try input.string(field), asked != "sha2-256" else { return }
        throw TransitError.invalid("\(field) \(asked.prefix(40)) is not supported: Keyward's keys hash with SHA-256 (sha2-256)")
    }
}
