import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto

/// Transit's cryptographic endpoints, each a `KeyService` call on the key `<mount>/<name>`.
enum TransitCrypto {
    /// `vault:vN:` and the base64 of Keyward's bytes.
    static func wrap(_ bytes: [UInt8], version: UInt32) -> VaultText { .base64(version: version, bytes) }

    /// The version and bytes of a `vault:vN:...` value.
    static func unwrap(_ text: String, field: String) throws(APIError) -> (version: UInt32, bytes: [UInt8]) {
        // Read over the UTF-8 in place (on every decrypt): `vault:v`, decimal digits, `:`, base64.
        var text = text
        let parsed = text.withUTF8 { utf8 -> (UInt32, [UInt8])? in
            let prefix: StaticString = "vault:v"
            guard utf8.count > prefix.utf8CodeUnitCount,
                  memcmp(utf8.baseAddress!, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0 else { return nil }
            var index = prefix.utf8CodeUnitCount
            var version: UInt64 = 0
            while index < utf8.count, index - prefix.utf8CodeUnitCount < 10, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(utf8[index]) {
                version = version * 10 + UInt64(utf8[index] - UInt8(ascii: "0"))
                index += 1
            }
            guard index > prefix.utf8CodeUnitCount, index < utf8.count, utf8[index] == UInt8(ascii: ":"),
                  (1...UInt64(UInt32.max)).contains(version), let bytes = Base64.decode(utf8[(index + 1)...]) else { return nil }
            return (UInt32(version), bytes)
        }
        guard let (version, bytes) = parsed else { throw TransitError.invalid("invalid \(field): expected vault:vN: and base64") }
        return (version, bytes)
    }

    /// The version and raw signature of a JWS-marshaled `vault:vN:<base64url>` signature.
    static func unwrapJWS(_ text: String) throws(APIError) -> (version: UInt32, bytes: [UInt8]) {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "vault", parts[1].hasPrefix("v"), let version = UInt32(parts[1].dropFirst()), version >= 1,
              let bytes = fromBase64URL(parts[2]) else {
            throw TransitError.invalid("invalid signature: expected vault:vN: and base64url (jws)")
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
    static func single(_ call: TransitCall, _ one: (TransitInput) async throws -> TransitItemReply) async throws -> Response {
        guard let items = try call.input.batch() else {
            let fields = try await one(call.input)
            return call.reply { json in fields.write(to: &json) }
        }
        var results: [TransitItemReply] = []
        for item in items {
            do {
                results.append(try await one(item))
            } catch {
                results.append(TransitItemReply(failure: error))
            }
        }
        return batchReply(call, items, results, failuresSetStatus: false)
    }

    /// Runs a `batch_input` as one `KeyService` batch call (one authorisation, one key lookup,
    /// one audit entry naming the item count and failures), as the native batch endpoints do.
    /// `prepare` reads each item (a fault there is that item's error and the item is left out
    /// of the call) and what `finish` will need of it besides the result (`Note`); `finish` turns
    /// each result into the item's fields. A failure of the whole call (unknown key, policy,
    /// state) fails the request. `wipe` clears each result's secret bytes once its fields are
    /// written (decrypted plaintexts); `wipeItem` clears each prepared item's once the call is
    /// done (decoded plaintexts to encrypt), as the native routes do. `failuresSetStatus`: a
    /// failed item makes the reply's status 400 (500 when every failure is the server's), or
    /// the request's `partial_failure_response_code` when some item succeeded, as Transit's
    /// encrypt and decrypt do.
    static func batched<Item: Sendable, Note, Output>(
        _ call: TransitCall, _ items: [TransitInput], failuresSetStatus: Bool = false,
        prepare: (TransitInput) throws -> (Item, Note),
        run: ([Item]) async throws(KeywardError) -> [Result<Output, KeywardError>],
        finish: (TransitInput, Note, Output) throws -> TransitItemReply,
        wipe: (inout Output) -> Void = { _ in },
        wipeItem: (inout Item) -> Void = { _ in }
    ) async throws -> Response {
        var results: [TransitItemReply?] = Array(repeating: nil, count: items.count)
        var prepared: [Item] = []
        var notes: [(position: Int, note: Note)] = []
        prepared.reserveCapacity(items.count)
        notes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do {
                let (one, note) = try prepare(item)
                prepared.append(one)
                notes.append((index, note))
            } catch {
                results[index] = TransitItemReply(failure: error)
            }
        }
        if !prepared.isEmpty {
            // Once the call is done, `prepared` holds the only reference to each item's bytes:
            // they are wiped in place, whether the call succeeded or not.
            defer { for index in prepared.indices { wipeItem(&prepared[index]) } }
            var outputs = try await call.run { () async throws(KeywardError) in try await run(prepared) }
            for ((position, note), output) in zip(notes, outputs) {
                do {
                    results[position] = try finish(items[position], note, output.get())
                } catch {
                    results[position] = TransitItemReply(failure: error)
                }
            }
            for index in outputs.indices {
                guard case .success(var output) = outputs[index] else { continue }
                // Drop the array's reference first, so `output` holds the only one and the wipe
                // clears the bytes themselves, not a copy made on write.
                outputs[index] = .failure(.invalidArgument("wiped"))
                wipe(&output)
            }
        }
        return batchReply(call, items, results.map { $0 ?? TransitItemReply() }, failuresSetStatus: failuresSetStatus)
    }

    /// Vault's `batch_results`: one object of fields per item, in order, each with the item's
    /// `reference` (empty when it gave none), so a client can match results to its inputs.
    /// With `failuresSetStatus`, the status Transit's encrypt and decrypt answer a batch with:
    /// 200 when every item succeeded; otherwise 400 if an item's input was refused, else 500;
    /// and, when some item succeeded, the request's `partial_failure_response_code` instead,
    /// if it is a status (1 to 599).
    private static func batchReply(_ call: TransitCall, _ items: [TransitInput], _ results: [TransitItemReply], failuresSetStatus: Bool) -> Response {
        var status = HTTPResponse.Status.ok
        if failuresSetStatus, results.contains(where: { $0.error != nil }) {
            status = results.contains { $0.error != nil && !$0.failedInternally } ? .badRequest : .internalServerError
            if results.contains(where: { $0.error == nil }), let code = try? call.input.int("partial_failure_response_code"), (1...599).contains(code) {
                status = HTTPResponse.Status(code: code)
            }
        }
        return call.reply(status: status) { json in
            json.member("batch_results") { json in
                json.array { json in
                    for (item, fields) in zip(items, results) {
                        json.object { json in
                            fields.write(to: &json)
                            json.member("reference", (try? item.string("reference")) ?? "")
                        }
                    }
                }
            }
        }
    }

    /// Transit's encrypt, with its upsert: encrypting to a key that does not exist creates it
    /// (`type`, default aes256-gcm96, an encryption type; derived when the request gives a
    /// `context`) and encrypts, when the caller may `create` a key of that name and encrypt with
    /// it. Otherwise the
    /// answer is the one encrypt gives for a key the caller cannot use (403 for a policy's
    /// holder, 404 for the owner), as for a key that exists. Keys that exist never reach the
    /// create.
    static func encrypt(_ call: TransitCall) async throws -> Response {
        do {
            return try await encryptExisting(call)
        } catch let error as APIError where error.code == TransitError.notFound.code || error.code == "access_denied" {
            guard try await upsert(call) else { throw error }
            return try await encryptExisting(call)
        }
    }

    /// Creates the key `encrypt` named, for Transit's upsert: true when the key now exists (made
    /// here, or by another request since encrypt looked, which is then tried again); false
    /// (nothing created) when the caller may not create it, so the refusal encrypt gave stands.
    private static func upsert(_ call: TransitCall) async throws -> Bool {
        let alias = call.prefix + (try call.name())
        // A hint for callers no rule lets name a key so, or then encrypt with it (nothing is made
        // for a request that would be refused); the service decides when it creates.
        guard call.caller.policy.map({ $0.allowsNaming(alias, for: .create) && $0.allowsNaming(alias, for: .encrypt) }) ?? true else { return false }
        // Two first uses of one name at once: the later one finds the key the other made.
        if (try? await call.service.resolve(alias)) != nil { return true }
        let type = try call.input.string("type") ?? "aes256-gcm96"
        guard let spec = TransitKeyType.spec(type), spec.isSymmetric, spec.purpose == .encrypt else {
            throw TransitError.invalid("key type \(type.prefix(40)) not supported for this operation; encrypt creates aes128-gcm96, aes256-gcm96 or chacha20-poly1305 keys")
        }
        if try call.input.bool("convergent_encryption") == true {
            throw TransitError.invalid("convergent encryption is not supported: it reveals which plaintexts are equal (decision 0029); "
                                       + "use a derived key, whose context is bound into each ciphertext")
        }
        let derived = try (call.input.batch()?.first ?? call.input).string("context") != nil
        do {
            _ = try await call.service.createKey(CreateKeyRequest(spec: spec, aliases: [alias], contextRequired: derived), actor: call.caller)
        } catch {
            if case .accessDenied = error { return false }
            // Another request created it meanwhile (its alias is taken): encrypt with that one.
            if (try? await call.service.resolve(alias)) != nil { return true }
            throw APIError(error)
        }
        return true
    }

    private static func encryptExisting(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        /// The plaintext and context of one input.
        func item(_ input: TransitInput) throws -> EncryptItem {
            guard let plaintext = try input.base64("plaintext") else { throw TransitError.invalid("missing plaintext to encrypt") }
            return EncryptItem(plaintext, context: try context(input))
        }
        /// An item's fields, once its `key_version` (if any) is checked against the version used.
        func fields(_ input: TransitInput, _ result: EncryptResult) throws -> TransitItemReply {
            try checkLatest(input, used: result.version, doing: "encrypts")
            return TransitItemReply(ciphertext: wrap(result.ciphertext, version: result.version), keyVersion: result.version)
        }
        if let items = try call.input.batch() {
            return try await batched(call, items, failuresSetStatus: true, prepare: { input in (try item(input), ()) }, run: { (prepared) async throws(KeywardError) in
                try await call.service.encryptBatch(prepared, key: key, actor: call.caller)
            }, finish: { input, _, result in try fields(input, result) }, wipeItem: { SecureZero.wipe(&$0.plaintext) })
        }
        return try await single(call) { input in
            var one = try item(input)
            defer { SecureZero.wipe(&one.plaintext) }
            let result = try await call.run { () async throws(KeywardError) in
                try await call.service.encrypt(one.plaintext, key: key, context: one.context, actor: call.caller)
            }
            return try fields(input, result)
        }
    }

    static func decrypt(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        /// The ciphertext (with its `vault:vN:` version) and context of one input.
        func item(_ input: TransitInput) throws -> (version: UInt32, item: DecryptItem) {
            guard let text = try input.string("ciphertext") else { throw TransitError.invalid("missing ciphertext to decrypt") }
            let (version, bytes) = try unwrap(text, field: "ciphertext")
            return (version, DecryptItem(bytes, context: try context(input)))
        }
        /// An item's fields, once the prefix's version is checked against the ciphertext's own.
        func fields(_ input: TransitInput, _ version: UInt32, _ result: DecryptResult) throws -> TransitItemReply {
            guard result.version == version else { throw TransitError.invalid("invalid ciphertext: the version prefix does not match its ciphertext") }
            return TransitItemReply(plaintext: Base64.encode(result.plaintext))
        }
        if let items = try call.input.batch() {
            return try await batched(call, items, failuresSetStatus: true, prepare: { input in
                let (version, one) = try item(input)
                return (one, version)
            }, run: { (prepared) async throws(KeywardError) in
                try await call.service.decryptBatch(prepared, key: key, actor: call.caller)
            }, finish: fields, wipe: { SecureZero.wipe(&$0.plaintext) })
        }
        return try await single(call) { input in
            let (version, one) = try item(input)
            var result = try await call.run { () async throws(KeywardError) in
                try await call.service.decrypt(one.ciphertext, context: one.context, expectedKey: key, actor: call.caller)
            }
            defer { SecureZero.wipe(&result.plaintext) }
            return try fields(input, version, result)
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
            // The ciphertext must be this key's: refused as a decryption naming another key would be.
            let result = try await call.run { () async throws(KeywardError) in
                try await call.service.reEncrypt(bytes, sourceContext: context, expectedSourceKey: key, destinationKey: key, destinationContext: context, actor: call.caller)
            }
            try checkLatest(input, used: result.version, doing: "rewraps")
            return TransitItemReply(ciphertext: wrap(result.ciphertext, version: result.version), keyVersion: result.version)
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
        try checkLatest(call.input, used: made.version, doing: "makes data keys")
        let ciphertext = wrap(made.ciphertext, version: made.version)
        let plaintext = kind == "plaintext" ? made.plaintext.withSecretBytes(InsecureSecretAccess.token) { bytes -> String in
            var copy = Array(bytes)
            defer { SecureZero.wipe(&copy) }
            return Base64.encode(copy)
        } : nil
        return call.reply { json in
            ciphertext.write("ciphertext", to: &json)
            json.member("plaintext", plaintext)
            json.member("key_version", Int(made.version))
        }
    }

    static func hmac(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input for HMAC") }
            try await checkScheme(call, key, input, hashFields: signingHashFields, for: .mac)
            let result = try await call.run { () async throws(KeywardError) in try await call.service.mac(message, key: key, actor: call.caller) }
            try checkLatest(input, used: result.version, doing: "computes HMACs")
            return TransitItemReply(hmac: wrap(result.tag, version: result.version), keyVersion: result.version)
        }
    }

    static func sign(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        /// The key's spec, read once and only when some item asks for JWS or names a hash or a
        /// signature algorithm.
        func spec(if needed: Bool) async throws -> KeySpec? {
            guard needed else { return nil }
            return try await call.run { () async throws(KeywardError) in try await call.service.describe(key: key, forUseIn: .sign, actor: call.caller).metadata.spec }
        }
        func needsSpec(_ input: TransitInput) throws -> Bool {
            try marshalsJWS(input) || input.string("hash_algorithm") != nil || input.string("algorithm") != nil || input.string("signature_algorithm") != nil
                || input.has("salt_length")
        }
        /// The input to sign and whether its signature is asked for as JWS.
        func item(_ input: TransitInput, _ spec: KeySpec?) throws -> (SignItem, Bool) {
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input to sign") }
            for field in signingHashFields { try checkScheme(input, spec, hashField: field) }
            let jws = try marshalsJWS(input)
            return (SignItem(try input.bool("prehashed") == true ? .digest(message) : .message(message)), jws)
        }
        /// An item's fields; JWS is raw r || s, base64url without padding (ECDSA keys only).
        func fields(_ input: TransitInput, _ jws: Bool, _ spec: KeySpec?, _ result: SignResult) throws -> TransitItemReply {
            try checkLatest(input, used: result.version, doing: "signs")
            guard jws, let spec else { return TransitItemReply(signature: wrap(result.signature, version: result.version), keyVersion: result.version) }
            let raw: [UInt8]
            do { raw = try ECDSASignatureEncoding.raw(fromDER: result.signature, spec: spec) } catch {
                throw TransitError.invalid("marshaling_algorithm jws is for ECDSA keys; this key is \(TransitKeyType.name(spec))")
            }
            return TransitItemReply(signature: .text("vault:v\(result.version):" + base64URL(raw)), keyVersion: result.version)
        }
        if let items = try call.input.batch() {
            let keySpec = try await spec(if: items.contains { (try? needsSpec($0)) != false })
            return try await batched(call, items, prepare: { try item($0, keySpec) }, run: { (prepared) async throws(KeywardError) in
                try await call.service.signBatch(prepared, key: key, actor: call.caller)
            }, finish: { input, jws, result in try fields(input, jws, keySpec, result) })
        }
        return try await single(call) { input in
            let keySpec = try await spec(if: try needsSpec(input))
            let (one, jws) = try item(input, keySpec)
            let result = try await call.run { () async throws(KeywardError) in try await call.service.sign(one.input, key: key, actor: call.caller) }
            return try fields(input, jws, keySpec, result)
        }
    }

    /// Transit's `key_version` on encrypt, rewrap, data keys, sign and HMAC against the version `used`: Keyward uses
    /// a key's latest version only (a superseded version only decrypts and verifies, NIST SP
    /// 800-57's originator-usage period), so another version asked for is refused, never ignored.
    /// 0 and absent mean the latest, as in Transit.
    private static func checkLatest(_ input: TransitInput, used: UInt32, doing operation: String) throws(APIError) {
        if let asked = try input.int("key_version"), asked != 0, asked != Int(used) {
            throw TransitError.invalid("key_version \(asked): Keyward \(operation) with the latest version only (\(used))")
        }
    }

    /// The fields that name a signature's or an HMAC's hash: `hash_algorithm`, and `algorithm`,
    /// its older name, which Transit still reads.
    private static let signingHashFields = ["hash_algorithm", "algorithm"]

    /// Transit's `hash_algorithm` (HMAC: `algorithm`) and `signature_algorithm` against the
    /// key's `spec`: a Keyward key signs and MACs with one algorithm (decision 0029), so a name
    /// that is the key's own is accepted and any other refused, never ignored. Ed25519 and ML-DSA
    /// choose no hash and no padding, and ignore both, as Transit does; the padding applies to
    /// RSA keys only. `spec` is nil only when the input names neither.
    private static func checkScheme(_ input: TransitInput, _ spec: KeySpec?, hashField: String) throws(APIError) {
        let hash = try input.string(hashField), padding = try input.string("signature_algorithm")
        if let padding, !["pss", "pkcs1v15"].contains(padding) {
            throw TransitError.invalid("unknown signature_algorithm \(padding.prefix(40)); pss or pkcs1v15")
        }
        guard let spec else { return }
        if let hash, let own = TransitKeyType.hash(spec), hash != own {
            throw TransitError.invalid("\(hashField) \(hash.prefix(40)) is not this key's: a \(spec.rawValue) key hashes with \(own) "
                                       + "(one key, one algorithm); create a key of the spec you need")
        }
        if let padding, let own = TransitKeyType.signatureAlgorithm(spec), padding != own {
            throw TransitError.invalid("signature_algorithm \(padding) is not this key's: a \(spec.rawValue) key signs with \(own) "
                                       + "(one key, one algorithm); create a key of the spec you need")
        }
        // RSA-PSS's salt is as long as the key's hash: `auto` (any, on verifying; Vault's
        // default) and `hash` are that; another length is refused. Other keys have no salt and
        // ignore the field, as Transit does.
        if input.has("salt_length"), TransitKeyType.signatureAlgorithm(spec) == "pss", let hash = TransitKeyType.hash(spec),
           let hashBytes = DigestAlgorithm(rawValue: hash)?.byteCount {
            let asked = (try? input.string("salt_length")) ?? (try? input.int("salt_length")).flatMap { $0.map(String.init) }
            guard let asked, asked == "auto" || asked == "hash" || Int(asked) == hashBytes else {
                throw TransitError.invalid("salt_length is not served: a \(spec.rawValue) key signs with a salt as long as its hash "
                                           + "(\(hashBytes) bytes); send auto, hash or \(hashBytes)")
            }
        }
    }

    /// `checkScheme` for a single call, reading the key's spec only when the input names a hash
    /// or a signature algorithm.
    private static func checkScheme(_ call: TransitCall, _ key: String, _ input: TransitInput, hashFields: [String], for operation: ServiceOperation) async throws {
        guard try hashFields.contains(where: { try input.string($0) != nil }) || input.string("signature_algorithm") != nil || input.has("salt_length") else { return }
        let spec = try await call.run { () async throws(KeywardError) in
            try await call.service.describe(key: key, forUseIn: operation, actor: call.caller).metadata.spec
        }
        for field in hashFields { try checkScheme(input, spec, hashField: field) }
    }

    /// Whether `marshaling_algorithm` asks for JWS (raw `r || s`, base64url) rather than asn1.
    private static func marshalsJWS(_ input: TransitInput) throws(APIError) -> Bool {
        switch try input.string("marshaling_algorithm") {
        case nil, "asn1": false
        case "jws": true
        case let other?: throw TransitError.invalid("unknown marshaling_algorithm \(other.prefix(40)); asn1 or jws")
        }
    }

    /// base64url without padding (RFC 7515).
    static func base64URL(_ bytes: [UInt8]) -> String {
        Base64.encode(bytes).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The bytes of base64url text, padded or not; nil when it is not base64url.
    static func fromBase64URL(_ text: some StringProtocol) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Base64.decode(standard)
    }

    static func verify(_ call: TransitCall) async throws -> Response {
        let key = call.prefix + (try call.name())
        return try await single(call) { input in
            guard let message = try input.base64("input") else { throw TransitError.invalid("missing input to verify") }
            let valid: Bool
            if let text = try input.string("hmac") {
                try await checkScheme(call, key, input, hashFields: signingHashFields, for: .verifyMAC)
                let (version, tag) = try unwrap(text, field: "hmac")
                valid = try await call.run { () async throws(KeywardError) in
                    try await call.service.verifyMAC(tag, for: message, key: key, version: version, actor: call.caller)
                }
            } else if let text = try input.string("signature") {
                try await checkScheme(call, key, input, hashFields: signingHashFields, for: .verify)
                let jws = try marshalsJWS(input)
                let (version, signature) = try jws ? unwrapJWS(text) : unwrap(text, field: "signature")
                let signing: SigningInput = try input.bool("prehashed") == true ? .digest(message) : .message(message)
                valid = try await call.run { () async throws(KeywardError) in
                    try await call.service.verify(signature, for: signing, key: key, version: version, encoding: jws ? .raw : .der, actor: call.caller)
                }
            } else {
                throw TransitError.invalid("signature or hmac is required")
            }
            return TransitItemReply(valid: valid)
        }
    }

    /// `export/:type/:name(/:version)`: an exportable key's versions. `encryption-key` (symmetric
    /// encryption keys) and `hmac-key` give the key bytes, base64; `public-key` the public keys
    /// (PEM). `signing-key` is refused: Keyward never exports a private signing key, where
    /// Transit would for an exportable key (docs/transit.md).
    static func export(_ call: TransitCall, version asked: String?) async throws -> Response {
        let name = try call.name()
        let key = call.prefix + name
        let type = try call.context.parameter("type")
        let description = try await call.run { () async throws(KeywardError) in try await call.service.describe(key: key, actor: call.caller) }
        let spec = description.metadata.spec
        switch type {
        case "encryption-key":
            guard spec.purpose == .encrypt, spec.isSymmetric else { throw TransitError.invalid("encryption-key export is for symmetric encryption keys; this key is \(TransitKeyType.name(spec))") }
        case "hmac-key":
            guard spec.purpose == .mac else { throw TransitError.invalid("hmac-key export is for hmac keys; this key is \(TransitKeyType.name(spec))") }
        case "public-key":
            guard !spec.isSymmetric else { throw TransitError.invalid("\(TransitKeyType.name(spec)) keys have no public key") }
        case "signing-key":
            throw TransitError.invalid("signing keys are never exported by Keyward (a stricter rule than Transit's); export public-key instead")
        default:
            throw TransitError.invalid("unknown export type \(type.prefix(40)); encryption-key, hmac-key or public-key")
        }
        if type != "public-key" && !description.metadata.exportable { throw TransitError.invalid("key is not exportable") }
        let versions = try await call.run { () async throws(KeywardError) in try await call.service.versions(key: key, actor: call.caller) }
        var numbers = versions.filter { $0.state == "active" }.map(\.number)
        if let asked, asked != "latest" {
            guard let number = UInt32(asked), numbers.contains(number) else { throw TransitError.invalid("version \(asked.prefix(20)) is not an available version of the key") }
            numbers = [number]
        } else if asked == "latest" {
            numbers = [description.metadata.currentVersion]
        }
        var exported: [(UInt32, String)] = []
        for number in numbers {
            if type == "public-key" {
                let publicKey = try await call.run { () async throws(KeywardError) in try await call.service.publicKey(key: key, version: number, actor: call.caller) }
                // PEM where the spec has one; post-quantum keys as their raw encoding, base64.
                exported.append((number, publicKey.pem ?? Base64.encode(publicKey.representation)))
            } else {
                let material = try await call.run { () async throws(KeywardError) in try await call.service.exportKey(key: key, version: number, actor: call.caller) }
                exported.append((number, material.material.withSecretBytes(InsecureSecretAccess.token) { Base64.encode(Array($0)) }))
            }
        }
        return call.reply { json in
            json.member("name", name)
            json.member("type", TransitKeyType.name(spec))
            json.member("keys") { json in json.object { json in for (number, value) in exported { json.member(String(number), value) } } }
        }
    }

    /// `random(/:source)(/:bytes)`: `bytes` (default 32) from the path or the body, in `format`
    /// base64 (default) or hex. The source is Keyward's one generator, the system's; Transit's
    /// `platform` names it, and `seal` and `all` (an HSM's generator) are refused rather than
    /// answered from another source than the one asked for. A lone path segment is a source if it
    /// names one, else a byte count, as in Transit.
    static func random(_ call: TransitCall, source: String?, bytes segment: String?) async throws -> Response {
        var source = source, segment = segment
        if segment == nil, let lone = source, Int(lone) != nil { (source, segment) = (nil, lone) }
        // The source in the path wins; otherwise the body's, checked the same way.
        if source == nil { source = try call.input.string("source") }
        switch source {
        case nil, "platform": break
        case "seal", "all": throw TransitError.invalid("source \(source ?? "") is not offered: Keyward's random bytes come from the system's generator (source platform)")
        case let other?: throw TransitError.invalid("unknown source \(other.prefix(40)); platform")
        }
        let count: Int
        if let segment {
            guard let parsed = Int(segment) else { throw TransitError.invalid("bytes must be a number") }
            count = parsed
        } else {
            count = try call.input.int("bytes") ?? 32
        }
        guard (1...1024).contains(count) else { throw TransitError.invalid("bytes must be 1 to 1024") }
        let format = try call.input.string("format") ?? "base64"
        guard format == "base64" || format == "hex" else { throw TransitError.invalid("format must be base64 or hex") }
        let bytes = try await call.run { () async throws(KeywardError) in try await call.service.random(count: count, actor: call.caller) }
        return call.reply { json in
            if format == "hex" { json.member("random_bytes", Hex.encode(bytes)) } else { json.member("random_bytes", base64: bytes) }
        }
    }
}

/// One Transit item's reply fields (a single call's `data`, or one of `batch_results`): those
/// set are written, in this order.
struct TransitItemReply: Sendable {
    var ciphertext: VaultText? = nil
    var plaintext: String? = nil
    var signature: VaultText? = nil
    var hmac: VaultText? = nil
    var keyVersion: UInt32? = nil
    var valid: Bool? = nil
    var error: String? = nil
    /// Whether `error` is the server's fault (a 5xx), not the item's input's.
    var failedInternally = false

    /// Writes the fields that are set as members of the object `json` is in.
    func write(to json: inout JSONWriter) {
        ciphertext?.write("ciphertext", to: &json)
        if let plaintext { json.member("plaintext", plaintext) }
        signature?.write("signature", to: &json)
        hmac?.write("hmac", to: &json)
        if let keyVersion { json.member("key_version", Int(keyVersion)) }
        if let valid { json.member("valid", valid) }
        if let error { json.member("error", error) }
    }
}

extension TransitItemReply {
    /// The reply of an item that failed with `error`.
    init(failure error: any Error) {
        let refusal = APIError(any: error)
        self.init(error: refusal.message, failedInternally: refusal.status.code >= 500)
    }
}

/// A Transit value spelled `vault:vN:` and then an encoding of bytes (ciphertexts, signatures,
/// HMACs).
enum VaultText: Sendable {
    /// `vault:vN:` and the standard base64 of the bytes, written straight into the reply.
    case base64(version: UInt32, [UInt8])
    /// The whole value already spelled out (a JWS signature's base64url).
    case text(String)

    /// Writes the value as the string member `name`.
    func write(_ name: String, to json: inout JSONWriter) {
        switch self {
        case .base64(let version, let bytes): json.member(name, prefix: "vault:v\(version):", base64: bytes)
        case .text(let text): json.member(name, text)
        }
    }
}
