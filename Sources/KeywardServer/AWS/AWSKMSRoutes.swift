import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// The AWS KMS protocol on `POST /`: `X-Amz-Target: TrentService.<Operation>`, bodies in
/// `application/x-amz-json-1.1`, requests signed with Signature Version 4 by an access key
/// Keyward issued (`AuthenticationMiddleware`). A thin adapter: every operation is a
/// `KeyService` call under the access key's principal and policy, audited like the native API.
/// Shapes, names and errors follow botocore's model of the service (docs/aws-kms.md lists what
/// is supported).
enum AWSKMSRoutes {
    static let contentType = "application/x-amz-json-1.1"
    static let targetHeader = HTTPField.Name("X-Amz-Target")!
    static let requestIDHeader = HTTPField.Name("x-amzn-RequestId")!

    /// Whether `request` is for the AWS front end (`POST /`, `ErrorShape.aws`).
    static func isAWS(_ request: Request, context: KeywardRequestContext) -> Bool {
        if let tracking = context.tracking { return tracking.shape == .aws }
        return ErrorShape.of(method: request.method, path: request.uri.path, transitPrefix: ErrorShape.defaultTransitPrefix) == .aws
    }

    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, settings: ServerConfiguration.AWSSettings) {
        routes.on(.post, "/") { request, context in
            guard let target = request.headers[targetHeader] else {
                throw AWSFault.unknownOperation("(none: the X-Amz-Target header is missing)")
            }
            guard target.hasPrefix("TrentService.") else { throw AWSFault.unknownOperation(target) }
            let operation = String(target.dropFirst("TrentService.".count))
            let buffer = try await request.body.collect(upTo: Int.max)
            let input = try AWSInput(buffer)
            // DryRun asks whether the call would succeed without making it: refused for every
            // operation rather than ignored, which would make the call (sign, decrypt) after all.
            if try input.bool("DryRun") == true {
                throw AWSFault.unsupported("DryRun is not supported by Keyward: the call was not made; send it without DryRun")
            }
            var caller = try context.caller(request)
            if input.has("GrantTokens") { caller = caller.presenting(grants: try AWSKMSGrantOperations.presented(input)) }
            let call = AWSCall(service: slot.current, caller: caller, input: input, settings: settings)
            guard let handler = operations[operation] else {
                if AWSKMSCatalogue.notSupported[operation] != nil || AWSKMSCatalogue.all.contains(operation) {
                    throw AWSFault.unsupported("\(operation) is not supported by Keyward: \(AWSKMSCatalogue.notSupported[operation] ?? "see docs/aws-kms.md")")
                }
                throw AWSFault.unknownOperation(target)
            }
            var members = JSONWriter()
            try await handler(call, &members)
            let output = [UInt8(ascii: "{")] + members.bytes + [UInt8(ascii: "}")]
            var headers: HTTPFields = [.contentType: contentType]
            if let id = context.tracking?.id { headers[requestIDHeader] = id }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: output)))
        }
    }

    typealias Handler = @Sendable (AWSCall, inout JSONWriter) async throws -> Void

    /// Every supported operation by name.
    static let operations: [String: Handler] = AWSKMSKeyOperations.handlers
        .merging(AWSKMSCryptoOperations.handlers) { first, _ in first }
        .merging(AWSKMSImportOperations.handlers) { first, _ in first }
        .merging(AWSKMSGrantOperations.handlers) { first, _ in first }
        .merging(AWSKMSKeyPolicyOperations.handlers) { first, _ in first }
}

/// One AWS call: the service, the caller, the decoded body, and the identifiers' settings.
struct AWSCall: Sendable {
    let service: KeyService
    let caller: Caller
    let input: AWSInput
    let settings: ServerConfiguration.AWSSettings

    /// The ARN AWS gives key `id`.
    func arn(_ id: KeyID) -> String { "arn:aws:kms:\(settings.region):\(settings.accountID):key/\(id)" }

    /// The ARN of alias `name` (Keyward's alias, without `alias/`).
    func aliasARN(_ name: String) -> String { "arn:aws:kms:\(settings.region):\(settings.accountID):alias/\(name)" }

    /// A Keyward key reference from an AWS key identifier: a key id, a key ARN, `alias/NAME` or
    /// an alias ARN. An ARN of another region or account names no key here.
    func reference(_ field: String) throws(APIError) -> String {
        guard let text = try input.string(field) else { throw AWSFault.validation("\(field) is required") }
        return try reference(text: text, field: field)
    }

    func reference(text: String, field: String) throws(APIError) -> String {
        guard !text.isEmpty, text.unicodeScalars.count <= 2048 else { throw AWSFault.validation("\(field) must be 1 to 2048 characters") }
        var name = text
        if text.hasPrefix("arn:") {
            let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
            guard parts.count == 6, parts[1] == "aws", parts[2] == "kms" else { throw AWSFault.notFound("Invalid arn \(text.prefix(200))") }
            guard parts[3] == settings.region, parts[4] == settings.accountID else {
                throw AWSFault.notFound("\(text.prefix(200)) is not in this endpoint's region \(settings.region) and account \(settings.accountID)")
            }
            name = String(parts[5])
            if name.hasPrefix("key/") { return String(name.dropFirst(4)) }
            guard name.hasPrefix("alias/") else { throw AWSFault.notFound("Invalid arn \(text.prefix(200))") }
        }
        if name.hasPrefix("alias/") {
            let alias = String(name.dropFirst(6))
            guard !alias.isEmpty else { throw AWSFault.notFound("Alias \(text.prefix(200)) is not found.") }
            return alias
        }
        guard KeyID(parsing: name) != nil else { throw AWSFault.notFound("Invalid keyId '\(name.prefix(200))'") }
        return name
    }

    /// Runs a `KeyService` call, turning a key the caller may not see into `NotFoundException`
    /// as AWS does, and other library errors into their AWS types.
    func run<T: ~Copyable>(_ body: () async throws(KeywardError) -> T) async throws(APIError) -> T {
        do {
            return try await body()
        } catch {
            throw fault(error)
        }
    }

    /// A library error in AWS's terms (`run`).
    func fault(_ error: KeywardError) -> APIError {
        switch error {
        case .keyNotFound(let reference): return AWSFault.notFound("Key '\(reference.prefix(200))' does not exist")
        case .wrongState(_, let state, _):
            if state == .disabled { return AWSFault.disabled(error.description) }
            return AWSFault.invalidState(error.description)
        case .keyDestroyed: return AWSFault.notFound(error.description)
        case .ciphertextKeyMismatch: return AWSFault.incorrectKey(error.description)
        case .limitExceeded: return AWSFault.limitExceeded(error.description)
        default: return APIError(error)
        }
    }
}

/// A request body: a JSON object, read field by field; a field of the wrong type is a
/// `ValidationException` naming it.
struct AWSInput: @unchecked Sendable {
    private let object: [String: Any]

    private init(object: [String: Any]) { self.object = object }

    /// A nested object (`Constraints`).
    func object(_ field: String) throws(APIError) -> AWSInput? {
        guard has(field) else { return nil }
        guard let value = object[field] as? [String: Any] else { throw AWSFault.validation("\(field) must be an object") }
        return AWSInput(object: value)
    }

    init(_ buffer: ByteBuffer) throws(APIError) {
        guard buffer.readableBytes > 0 else { object = [:]; return }
        if let fast = FlatJSONObject.read(buffer) {
            object = fast
            return
        }
        let data = Data(buffer.readableBytesView)
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw AWSFault.validation("the body must be a JSON object")
        }
        if let repeated = DuplicateMembers.find(in: data) { throw AWSFault.validation(DuplicateMembers.message(repeated)) }
        self.object = object
    }

    func has(_ field: String) -> Bool {
        guard let value = object[field] else { return false }
        return !FlatJSONObject.isNull(value)
    }

    func string(_ field: String) throws(APIError) -> String? {
        guard has(field) else { return nil }
        guard let value = object[field] as? String else { throw AWSFault.validation("\(field) must be a string") }
        return value
    }

    func bool(_ field: String) throws(APIError) -> Bool? {
        guard has(field) else { return nil }
        guard let value = object[field] as? Bool else { throw AWSFault.validation("\(field) must be a boolean") }
        return value
    }

    func int(_ field: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard has(field) else { return nil }
        guard let number = object[field] as? NSNumber, let value = Int(exactly: number.doubleValue), range.contains(value) else {
            throw AWSFault.validation("\(field) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A blob: standard base64 in JSON.
    func blob(_ field: String) throws(APIError) -> [UInt8]? {
        guard has(field) else { return nil }
        guard let text = object[field] as? String, let bytes = Base64.decode(text) ?? Data(base64Encoded: text).map(Array.init) else {
            throw AWSFault.validation("\(field) must be base64")
        }
        return bytes
    }

    func requiredBlob(_ field: String) throws(APIError) -> [UInt8] {
        guard let bytes = try blob(field) else { throw AWSFault.validation("\(field) is required") }
        return bytes
    }

    /// A timestamp: seconds since 1970, as AWS's JSON protocol sends them.
    func timestamp(_ field: String) throws(APIError) -> Date? {
        guard has(field) else { return nil }
        guard let number = object[field] as? NSNumber, number.doubleValue.isFinite else { throw AWSFault.validation("\(field) must be a timestamp (seconds since 1970)") }
        return Date(timeIntervalSince1970: number.doubleValue)
    }

    func strings(_ field: String) throws(APIError) -> [String]? {
        guard has(field) else { return nil }
        guard let value = object[field] as? [String] else { throw AWSFault.validation("\(field) must be a list of strings") }
        return value
    }

    /// A string-to-string map (`EncryptionContext`).
    func map(_ field: String) throws(APIError) -> [String: String]? {
        guard has(field) else { return nil }
        guard let value = object[field] as? [String: String] else { throw AWSFault.validation("\(field) must map strings to strings") }
        return value
    }

    /// A list of `{TagKey, TagValue}`. A tag key given twice (one value would silently win) and
    /// one beginning `aws:`, which AWS reserves for its own tags, are `TagException`s.
    func tags(_ field: String) throws(APIError) -> [String: String]? {
        guard has(field) else { return nil }
        guard let list = object[field] as? [[String: Any]] else { throw AWSFault.validation("\(field) must be a list of {TagKey, TagValue}") }
        var tags: [String: String] = [:]
        for item in list {
            guard let key = item["TagKey"] as? String, let value = item["TagValue"] as? String else {
                throw AWSFault.validation("each of \(field) needs TagKey and TagValue strings")
            }
            if key.lowercased().hasPrefix("aws:") { throw AWSFault.tag("TagKey \(key.prefix(128)) begins with aws:, which AWS reserves for its own tags") }
            guard tags.updateValue(value, forKey: key) == nil else { throw AWSFault.tag("TagKey \(key.prefix(128)) appears more than once in \(field)") }
        }
        return tags
    }

    /// The encryption context field, as Keyward's.
    func context(_ field: String = "EncryptionContext") throws(APIError) -> EncryptionContext {
        EncryptionContext(try map(field) ?? [:])
    }

    /// Fields Keyward does not serve, refused rather than ignored.
    func refuse(_ fields: [String: String]) throws(APIError) {
        for (field, reason) in fields where has(field) {
            throw AWSFault.unsupported("\(field) is not supported: \(reason)")
        }
    }
}

extension JSONWriter {
    /// A member holding seconds since 1970 (AWS's timestamp form in JSON).
    mutating func member(_ name: String, epoch date: Date) {
        member(name, date.timeIntervalSince1970)
    }
}
