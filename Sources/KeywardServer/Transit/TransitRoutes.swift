import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// Vault and OpenBao Transit's HTTP API under `/v1/<mount>/` (docs/transit.md), for hvac, the
/// `vault`/`bao` CLI and the Go `api` package pointed at Keyward. A thin adapter: a Transit key
/// named N is the Keyward key with alias `<mount>/N`, every call is a `KeyService` call under
/// the token's principal and policy, audited like the native API. Responses are Vault's
/// envelope (`{"data": ...}`); errors are `{"errors": [...]}`.
///
/// Ciphertexts are `vault:vN:` and the base64 of Keyward's own ciphertext (which names key and
/// version), so a key serves both APIs. Transit's `context` and `associated_data` become
/// Keyward encryption context pairs (`transit-context`, `transit-associated-data`): the
/// ciphertext is bound to them as Transit's are.
enum TransitRoutes {
    /// Vault's LIST method.
    static let list = ListMethodRewriter.listMethod
    /// The Keyward tag that records Transit's `deletion_allowed` on a key.
    static let deletionAllowedTag = "transit.deletion_allowed"
    /// The tag that keeps a key's Transit `min_encryption_version` (absent: 0).
    static let minEncryptionVersionTag = "transit.min_encryption_version"

    /// Transit's rule for a key's configuration as a whole: a min_encryption_version, when set,
    /// lies from min_decryption_version to the latest version. Checked by `KeyService.update` on
    /// the key as the update writes it, so a rotation, trim or other configuration committed
    /// meanwhile is taken into account, and a min_decryption_version raised above a stored
    /// min_encryption_version is refused as Transit refuses it.
    @Sendable static func checkEncryptionMinimum(_ metadata: KeyMetadata) throws(KeywardError) {
        guard let stored = metadata.tags[minEncryptionVersionTag], let minimum = Int(stored) else { return }
        let latest = Int(metadata.currentVersion), decryption = Int(metadata.minDecryptionVersion)
        guard minimum >= decryption && minimum <= latest else {
            throw .invalidArgument("min_encryption_version \(minimum) must be 0 or from min_decryption_version (\(decryption)) to the latest version (\(latest))")
        }
    }

    /// Whether `request` is for the Transit front end (its errors are Transit-shaped).
    static func isTransitRequest(_ request: Request, mount: String) -> Bool {
        request.uri.path.hasPrefix("/v1/\(mount)/")
    }

    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, body: BodyReader, mount: String, backupKeys: BackupKeys) {
        let base = "/v1/\(mount)"
        // Vault treats PUT as POST (the `vault`/`bao` CLI writes with PUT), and LIST as GET with
        // `list=true`: each write route answers both, the key list both.
        func transit(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (TransitCall) async throws -> Response) {
            let methods: [HTTPRequest.Method] = method == .post ? [.post, .put] : (path == "/keys" ? [.get, Self.list] : [method])
            for method in methods {
                routes.on(method, base + path) { request, context in
                    try TransitNamespace.check(request)
                    let input = try await TransitInput(request: request, body: body)
                    return try await handler(TransitCall(service: slot.current, caller: try context.caller(request), input: input, context: context, mount: mount))
                }
            }
        }

        transit(.get, "/keys") { call in
            guard call.input.query("list") == "true" || call.input.method == "LIST" else { throw TransitError.unsupportedPath }
            var names: [String] = []
            var cursor: KeyID? = nil
            repeat {
                let after = cursor
                let page = try await call.run { () async throws(KeywardError) in
                    try await call.service.listKeys(alias: nil, after: after, limit: 1000, actor: call.caller)
                }
                for key in page.keys where key.metadata.state != .destroyed {
                    names += key.aliases.compactMap { $0.hasPrefix(call.prefix) ? String($0.dropFirst(call.prefix.count)) : nil }
                }
                cursor = page.nextCursor
            } while cursor != nil
            guard !names.isEmpty else { throw TransitError.notFound }
            return call.reply { json in json.member("keys", strings: names.sorted()) }
        }
        transit(.post, "/keys/{name}") { call in
            let name = try call.name()
            let type = try call.input.string("type") ?? "aes256-gcm96"
            guard var spec = TransitKeyType.spec(type) else { throw TransitError.invalid("unknown key type \(type.prefix(40))") }
            if let chosen = try TransitKeyType.spec(type, hash: call.input.string("hash_algorithm"), signatureAlgorithm: call.input.string("signature_algorithm")) {
                spec = chosen
            }
            if try call.input.bool("convergent_encryption") == true {
                throw TransitError.invalid("convergent encryption is not supported: it reveals which plaintexts are equal (decision 0029); "
                                           + "use a derived key, whose context is bound into each ciphertext")
            }
            // A derived key: Keyward binds `context` into each ciphertext as authenticated
            // encryption context rather than deriving a key from it, and refuses a use without it
            // (contextRequired); either way a ciphertext opens only with its context.
            let derived = try call.input.bool("derived") ?? false
            if derived && !(spec.isSymmetric && spec.purpose == .encrypt) {
                throw TransitError.invalid("derived keys are encryption keys here (aes128-gcm96, aes256-gcm96, chacha20-poly1305), not \(type.prefix(40))")
            }
            let exportable = try call.input.bool("exportable") ?? false
            // Decision 0029: refused, never silently dropped.
            if exportable && spec.purpose == .sign {
                throw TransitError.invalid("a signing key is never exportable in Keyward (decision 0029): create it without exportable; "
                                           + "its public key is served by keys/\(name) and export/public-key")
            }
            if try call.input.bool("allow_plaintext_backup") == true {
                throw TransitError.invalid("plaintext backups are not offered (decision 0029): backup/\(name) gives an encrypted bundle")
            }
            // Vault reads key_size for HMAC keys only; Keyward's has the hash's length.
            if spec.purpose == .mac, let size = try call.input.int("key_size"), size != 0, size != spec.symmetricKeyBytes {
                throw TransitError.invalid("key_size \(size) is not served: an hmac key with this hash_algorithm has \(spec.symmetricKeyBytes ?? 0) bytes; "
                                           + "send that, or no key_size")
            }
            var request = CreateKeyRequest(spec: spec, aliases: [call.prefix + name], exportable: exportable,
                                           contextRequired: derived)
            request.rotationPeriodDays = try call.input.rotationPeriodDays() ?? nil
            // A caller no rule lets name a key so is refused before the name is looked up, as
            // create would refuse it, so it cannot tell an existing key from a missing one.
            if let policy = call.caller.policy, !policy.allowsNaming(call.prefix + name, for: .create) {
                throw APIError(KeywardError.accessDenied(principal: call.caller.principal, operation: .create, key: nil))
            }
            if (try? await call.service.resolve(call.prefix + name)) != nil {
                // Transit's create is idempotent for an existing key.
                return try await call.keyReply(name)
            }
            _ = try await call.run { () async throws(KeywardError) in try await call.service.createKey(request, actor: call.caller) }
            return try await call.keyReply(name)
        }
        transit(.get, "/keys/{name}") { call in try await call.keyReply(try call.name()) }
        transit(.post, "/keys/{name}/trim") { call in
            // Transit's trim: the versions below min_available_version lose their material
            // (KeyService.destroyVersions); it must not be above min_decryption_version.
            let name = try call.name()
            guard let oldest = try call.input.int("min_available_version"), let below = UInt32(exactly: oldest), below >= 1 else {
                throw TransitError.invalid("min_available_version is required, 1 or more")
            }
            _ = try await call.run { () async throws(KeywardError) in try await call.service.destroyVersions(key: call.prefix + name, below: below, actor: call.caller) }
            return try await call.keyReply(name)
        }
        transit(.post, "/keys/{name}/rotate") { call in
            let name = try call.name()
            _ = try await call.run { () async throws(KeywardError) in try await call.service.rotate(key: call.prefix + name, actor: call.caller) }
            return try await call.keyReply(name)
        }
        transit(.post, "/keys/{name}/config") { call in
            let name = try call.name()
            let key = call.prefix + name
            if try call.input.bool("exportable") == true || call.input.bool("allow_plaintext_backup") == true {
                throw TransitError.invalid("exportable is fixed when a key is created, and plaintext backups are not offered (transit/backup gives an encrypted one)")
            }
            let minimum = try call.input.int("min_decryption_version")
            let minimumForEncryption = try call.input.int("min_encryption_version")
            let days = try call.input.rotationPeriodDays()
            // 0 means 1, as in Transit (versions are numbered from 1).
            let minimumVersion: UInt32?
            if let minimum {
                guard let version = UInt32(exactly: max(1, minimum)), minimum >= 0 else {
                    throw TransitError.invalid("min_decryption_version \(minimum) is not a version number (0, or 1 to the latest version)")
                }
                minimumVersion = version
            } else {
                minimumVersion = nil
            }
            let deletion = try call.input.bool("deletion_allowed")
            // Only the tags this call changes, applied as the update reads the key (`TagChanges`).
            var changes = TagChanges()
            if let deletion {
                if deletion { changes.set[TransitRoutes.deletionAllowedTag] = "true" } else { changes.remove.insert(TransitRoutes.deletionAllowedTag) }
            }
            if let minimumForEncryption {
                // Keyward always encrypts with the latest version, which satisfies any minimum up
                // to it; the value is kept (a tag) so that reads report it, as Transit's do.
                guard minimumForEncryption >= 0 else {
                    throw TransitError.invalid("min_encryption_version \(minimumForEncryption) is not a version number (0, or 1 to the latest version)")
                }
                if minimumForEncryption == 0 {
                    changes.remove.insert(TransitRoutes.minEncryptionVersionTag)
                } else {
                    changes.set[TransitRoutes.minEncryptionVersionTag] = String(minimumForEncryption)
                }
            }
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.update(key: key, tagChanges: changes == TagChanges() ? nil : changes, rotationPeriodDays: days, minDecryptionVersion: minimumVersion,
                                              validating: TransitRoutes.checkEncryptionMinimum, actor: call.caller)
            }
            return try await call.keyReply(name)
        }
        routes.on(.delete, base + "/keys/{name}") { request, context in
            let call = TransitCall(service: slot.current, caller: try context.caller(request), input: try await TransitInput(request: request, body: body),
                                   context: context, mount: mount)
            let name = try call.name()
            // Keyward destroys after a waiting period: the key is scheduled for destruction in
            // 7 days (refused everywhere from now on), then destroyed by maintenance. The
            // transition itself checks deletion_allowed, on the key as it changes it, so a
            // concurrent keys/NAME/config that withdraws it is never overtaken.
            let deletable = TagRequirement(name: TransitRoutes.deletionAllowedTag, value: "true",
                                           refusal: "deletion is not allowed for this key; set deletion_allowed with keys/\(name)/config first")
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.transition(key: call.prefix + name, .scheduleDestruction, waitingDays: 7, requiring: deletable, actor: call.caller)
            }
            return Response(status: .noContent)
        }
        transit(.get, "/backup/{name}") { call in try await TransitBackup.backup(call, keys: backupKeys) }
        transit(.post, "/restore") { call in try await TransitBackup.restore(call, keys: backupKeys, name: nil) }
        transit(.post, "/restore/{name}") { call in try await TransitBackup.restore(call, keys: backupKeys, name: try call.name()) }
        transit(.post, "/rewrap/{name}") { call in try await TransitCrypto.rewrap(call) }
        transit(.post, "/hash") { call in try TransitCrypto.hash(call, algorithm: nil) }
        transit(.post, "/hash/{algorithm}") { call in try TransitCrypto.hash(call, algorithm: try call.context.parameter("algorithm")) }
        transit(.post, "/encrypt/{name}") { call in try await TransitCrypto.encrypt(call) }
        transit(.post, "/decrypt/{name}") { call in try await TransitCrypto.decrypt(call) }
        transit(.post, "/datakey/{kind}/{name}") { call in try await TransitCrypto.dataKey(call) }
        transit(.post, "/hmac/{name}") { call in try await TransitCrypto.hmac(call) }
        transit(.post, "/hmac/{name}/{algorithm}") { call in try await TransitCrypto.hmac(try call.takingAlgorithmFromPath(as: "algorithm")) }
        transit(.post, "/sign/{name}") { call in try await TransitCrypto.sign(call) }
        transit(.post, "/sign/{name}/{algorithm}") { call in try await TransitCrypto.sign(try call.takingAlgorithmFromPath(as: "hash_algorithm")) }
        transit(.post, "/verify/{name}") { call in try await TransitCrypto.verify(call) }
        transit(.post, "/verify/{name}/{algorithm}") { call in try await TransitCrypto.verify(try call.takingAlgorithmFromPath(as: "hash_algorithm")) }
        transit(.get, "/export/{type}/{name}") { call in try await TransitCrypto.export(call, version: nil) }
        transit(.get, "/export/{type}/{name}/{version}") { call in try await TransitCrypto.export(call, version: try call.context.parameter("version")) }
        transit(.post, "/random") { call in try await TransitCrypto.random(call, source: nil, bytes: nil) }
        // One segment is a source or a byte count (Transit's `random/:urlsource`); the trie needs one name for it.
        transit(.post, "/random/{source}") { call in try await TransitCrypto.random(call, source: try call.context.parameter("source"), bytes: nil) }
        transit(.post, "/random/{source}/{bytes}") { call in
            try await TransitCrypto.random(call, source: try call.context.parameter("source"), bytes: try call.context.parameter("bytes"))
        }
    }
}

/// Vault and OpenBao namespaces (`X-Vault-Namespace`, `BAO_NAMESPACE`, hvac's `namespace=`):
/// Keyward has one, the root. A request naming another is refused rather than served from the
/// root, where a tenant that relies on its namespace for isolation would read and write
/// another's keys (decision 0029).
enum TransitNamespace {
    static let header = HTTPField.Name("X-Vault-Namespace")!

    /// Throws when the request names a namespace other than the root.
    static func check(_ request: Request) throws(APIError) {
        guard let named = request.headers[header] else { return }
        let path = named.trimmingCharacters(in: CharacterSet(charactersIn: "/ "))
        guard path.isEmpty || path == "root" else {
            throw TransitError.invalid("namespace \(String(path.prefix(64)).debugDescription) is not served: Keyward has no namespaces "
                                       + "(only the root); unset X-Vault-Namespace (BAO_NAMESPACE, VAULT_NAMESPACE), and keep tenants "
                                       + "apart with policies on key-name patterns (alias=transit/team-a-*)")
        }
    }
}

/// Transit's errors, rendered `{"errors": [...]}` with Vault's statuses.
enum TransitError {
    static func invalid(_ message: String) -> APIError { APIError("invalid_request", .badRequest, message) }
    static let notFound = APIError("key_not_found", .notFound, "not found")
    static let unsupportedPath = APIError("route_not_found", .notFound, "unsupported path")

    /// Vault's status for an error raised anywhere below (authentication is 403 in Vault).
    static func status(_ error: APIError) -> HTTPResponse.Status {
        switch error.code {
        case "unauthenticated", "access_denied", "not_permitted": .forbidden
        case "key_not_found", "route_not_found": .notFound
        case "rate_limited": .tooManyRequests
        case "body_too_large": .contentTooLarge
        case "request_timeout": .requestTimeout
        case "method_not_allowed": .methodNotAllowed
        case "unavailable", "audit_unavailable": .serviceUnavailable
        case "internal", "integrity_failure": .internalServerError
        default: .badRequest
        }
    }

    /// The message Vault clients show: Vault says "permission denied" for a refused token.
    static func message(_ error: APIError) -> String {
        error.code == "unauthenticated" || error.code == "access_denied" ? "permission denied: \(error.message)" : error.message
    }
}

/// One Transit call: the service, the caller, the body and query, and the mount.
struct TransitCall: Sendable {
    let service: KeyService
    let caller: Caller
    let input: TransitInput
    let context: KeywardRequestContext
    let mount: String

    /// Keyward's alias prefix for this mount's keys.
    var prefix: String { mount + "/" }

    /// The route's key name: 1 to 128 ASCII letters, digits, `-`, `_` or `.`, and not `.` or `..`
    /// (the rules of the alias `<mount>/<name>` it is kept as, said in Transit's terms).
    func name() throws(APIError) -> String {
        let name = try context.parameter("name")
        let bytes = name.utf8
        let valid = (1...128).contains(bytes.count) && name != "." && name != ".." && bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
            default: false
            }
        }
        guard valid else {
            throw TransitError.invalid("a key name is 1 to 128 ASCII letters, digits, '-', '_' or '.', and not '.' or '..'")
        }
        return name
    }

    /// This call with its body's `field` set to the route's `{algorithm}` segment
    /// (`TransitInput.setting`).
    func takingAlgorithmFromPath(as field: String) throws(APIError) -> TransitCall {
        TransitCall(service: service, caller: caller, input: input.setting(field, to: try context.parameter("algorithm")), context: context, mount: mount)
    }

    /// A `KeyService` call; an unknown key is 404, as in Transit.
    func run<T: ~Copyable>(_ body: () async throws(KeywardError) -> T) async throws(APIError) -> T {
        do {
            return try await body()
        } catch {
            if case .keyNotFound = error { throw TransitError.notFound }
            throw APIError(error)
        }
    }

    /// Vault's response envelope around `data`, answered with `status` (200 unless a batch's failed items set it).
    func reply(status: HTTPResponse.Status = .ok, _ data: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter()
        json.object { json in
            json.member("request_id", context.tracking?.id ?? "")
            json.member("lease_id", "")
            json.member("renewable", false)
            json.member("lease_duration", 0)
            json.member("data") { json in json.object(data) }
        }
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }

    /// The key's Transit description.
    func keyReply(_ name: String) async throws(APIError) -> Response {
        let key = try await run { () async throws(KeywardError) in try await service.describe(key: prefix + name, actor: caller) }
        guard key.metadata.state != .destroyed else { throw TransitError.notFound }
        let versions = try await run { () async throws(KeywardError) in try await service.versions(key: prefix + name, actor: caller) }
        // Every key pair's public keys: PEM where the spec has one, else (post-quantum keys) the
        // raw encoding, base64, as export/public-key gives them.
        var publicKeys: [UInt32: String] = [:]
        if !key.metadata.spec.isSymmetric {
            for version in versions where version.state == "active" && version.number >= key.metadata.minDecryptionVersion {
                let number = version.number
                if let publicKey = try? await service.publicKey(key: prefix + name, version: number, actor: caller) {
                    publicKeys[number] = publicKey.pem ?? Base64.encode(publicKey.representation)
                }
            }
        }
        let metadata = key.metadata
        let purpose = metadata.spec.purpose
        return reply { json in
            json.member("name", name)
            json.member("type", TransitKeyType.name(metadata.spec))
            json.member("keys") { json in
                json.object { json in
                    for version in versions where version.state == "active" {
                        if let pem = publicKeys[version.number] {
                            json.member(String(version.number)) { json in
                                json.object { json in
                                    json.member("name", TransitKeyType.name(metadata.spec))
                                    json.member("public_key", pem)
                                    json.member("creation_time", version.createdAt)
                                }
                            }
                        } else {
                            json.member(String(version.number), Int(version.createdAt.timeIntervalSince1970))
                        }
                    }
                }
            }
            json.member("latest_version", Int(metadata.currentVersion))
            json.member("min_available_version", Int(metadata.minAvailableVersion ?? 0))
            json.member("min_decryption_version", Int(metadata.minDecryptionVersion))
            json.member("min_encryption_version", Int(metadata.tags[TransitRoutes.minEncryptionVersionTag] ?? "") ?? 0)
            json.member("deletion_allowed", metadata.tags[TransitRoutes.deletionAllowedTag] == "true")
            json.member("exportable", metadata.exportable)
            json.member("allow_plaintext_backup", false)
            json.member("derived", metadata.contextRequired == true)
            json.member("supports_encryption", purpose == .encrypt)
            json.member("supports_decryption", purpose == .encrypt)
            json.member("supports_derivation", metadata.spec.isSymmetric && purpose == .encrypt)
            json.member("supports_signing", purpose == .sign)
            json.member("auto_rotate_period", (metadata.rotationPeriodDays ?? 0) * 86_400)
            json.member("keyward_key_id", metadata.id.description)
            // Keyward's lifecycle state: a deleted key waits out its destruction period here.
            json.member("keyward_state", metadata.state.rawValue)
            if let date = metadata.destructionDate { json.member("keyward_destruction_date", date) }
        }
    }
}

/// A Transit request's body (JSON, possibly empty) and query.
struct TransitInput: @unchecked Sendable {
    private let object: [String: Any]
    private let queryItems: [String: String]
    /// The request's method (`LIST` lists keys as `GET ?list=true` does).
    let method: String

    init(request: Request, body: BodyReader) async throws {
        method = request.method.rawValue
        var items: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { items[String(name)] = String(value) }
        queryItems = items
        let buffer = try await body.collect(request)
        guard buffer.readableBytes > 0 else { object = [:]; return }
        if let fast = FlatJSONObject.read(buffer) {
            object = fast
            return
        }
        let data = Data(buffer.readableBytesView)
        guard let parsed = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) else {
            throw TransitError.invalid("failed to parse JSON input")
        }
        if let repeated = DuplicateMembers.find(in: data) { throw TransitError.invalid(DuplicateMembers.message(repeated)) }
        // `vault write -f` sends `null`: no fields.
        if parsed is NSNull { object = [:]; return }
        guard let object = parsed as? [String: Any] else { throw TransitError.invalid("the JSON input must be an object") }
        self.object = object
    }

    init(object: [String: Any], queryItems: [String: String] = [:], method: String = "POST") {
        self.object = object
        self.queryItems = queryItems
        self.method = method
    }

    func query(_ name: String) -> String? { queryItems[name] }

    func has(_ field: String) -> Bool { value(field) != nil }

    /// The field's value; nil when absent or JSON null. One lookup.
    private func value(_ field: String) -> Any? {
        guard let value = object[field], !FlatJSONObject.isNull(value) else { return nil }
        return value
    }

    func string(_ field: String) throws(APIError) -> String? {
        guard let found = value(field) else { return nil }
        guard let text = found as? String else { throw TransitError.invalid("\(field) must be a string") }
        return text
    }

    func bool(_ field: String) throws(APIError) -> Bool? {
        guard has(field) else { return nil }
        if let value = object[field] as? Bool { return value }
        if let text = object[field] as? String, let value = Bool(text) { return value }
        throw TransitError.invalid("\(field) must be a boolean")
    }

    func int(_ field: String) throws(APIError) -> Int? {
        guard has(field) else { return nil }
        if let number = object[field] as? NSNumber, let value = Int(exactly: number.doubleValue) { return value }
        if let text = object[field] as? String, let value = Int(text) { return value }
        throw TransitError.invalid("\(field) must be an integer")
    }

    /// A Vault duration: seconds, or a string like `24h`, `30m`, `90s`; nil when absent or 0.
    /// A negative one is refused.
    func duration(_ field: String) throws(APIError) -> TimeInterval? {
        guard has(field) else { return nil }
        let seconds: Double
        if let whole = try? int(field) {
            seconds = Double(whole)
        } else {
            guard let text = object[field] as? String, let unit = text.last, let value = Double(text.dropLast()), value.isFinite else {
                throw TransitError.invalid("\(field) must be a duration like 24h")
            }
            let scale: Double = switch unit { case "s": 1; case "m": 60; case "h": 3600; case "d": 86_400; default: -1 }
            guard scale > 0 else { throw TransitError.invalid("\(field) must be a duration like 24h") }
            seconds = value * scale
        }
        guard seconds >= 0 else { throw TransitError.invalid("\(field) cannot be negative") }
        guard seconds.isFinite else { throw TransitError.invalid("\(field) is out of range") }
        return seconds == 0 ? nil : seconds
    }

    /// `auto_rotate_period` in days, Keyward's unit for a rotation period: a period that is not
    /// whole days is refused rather than rounded to one the caller did not ask for (and would
    /// read back changed). Absent is nil; 0 turns rotation off (`.some(nil)`).
    func rotationPeriodDays() throws(APIError) -> Int?? {
        guard has("auto_rotate_period") else { return nil }
        guard let seconds = try duration("auto_rotate_period") else { return .some(nil) }
        guard seconds.truncatingRemainder(dividingBy: 86_400) == 0, seconds <= 2560 * 86_400 else {
            throw TransitError.invalid("auto_rotate_period: Keyward rotates keys by whole days; send a multiple of 24h up to 61440h (2,560 days), or 0 for none")
        }
        return .some(Int(seconds / 86_400))
    }

    /// A base64 field.
    func base64(_ field: String) throws(APIError) -> [UInt8]? {
        guard let text = try string(field) else { return nil }
        guard let bytes = Base64.decode(text) ?? Data(base64Encoded: text).map(Array.init) else { throw TransitError.invalid("\(field) must be base64") }
        return bytes
    }

    /// The fields Transit reads once for a whole batch, at the request's top level: the hash,
    /// whether the input is already hashed, the RSA padding and the signature's marshaling.
    static let requestWideFields = ["hash_algorithm", "algorithm", "prehashed", "signature_algorithm", "marshaling_algorithm"]

    /// The `batch_input` items, each as its own input. An item takes each of
    /// ``requestWideFields`` it does not set itself from the request's top level, so a batch
    /// sent as Vault's clients send it (`prehashed` or `hash_algorithm` beside `batch_input`)
    /// is signed, verified and checked with them rather than without.
    func batch() throws(APIError) -> [TransitInput]? {
        guard has("batch_input") else { return nil }
        guard let items = object["batch_input"] as? [[String: Any]], !items.isEmpty else { throw TransitError.invalid("batch_input must be a non-empty list of objects") }
        let shared = Self.requestWideFields.compactMap { field in value(field).map { (field, $0) } }
        guard !shared.isEmpty else { return items.map { TransitInput(object: $0) } }
        return items.map { item in
            var item = item
            for (field, value) in shared where item[field] == nil { item[field] = value }
            return TransitInput(object: item)
        }
    }

    /// This input with `field` set to `value`, whatever the body said: Transit's
    /// `sign/:name/:hash_algorithm`, `verify/:name/:hash_algorithm` and `hmac/:name/:algorithm`
    /// path segment wins over the body's field. Batch items take it from the top level unless
    /// they name their own, which is then checked against the key as any named hash is.
    func setting(_ field: String, to value: String) -> TransitInput {
        var object = self.object
        object[field] = value
        return TransitInput(object: object, queryItems: queryItems, method: method)
    }
}
