import Foundation
import Keyward
import KeywardAPI
import KeywardCrypto

/// AWS KMS grants over Keyward's (`KeyGrant`): CreateGrant, ListGrants, ListRetirableGrants,
/// RetireGrant, RevokeGrant, and the `GrantTokens` every call may carry.
///
/// AWS's grant operations map onto Keyward operations: GenerateDataKey and its
/// WithoutPlaintext form are both `generate-data-key`, ReEncryptFrom and ReEncryptTo are both
/// `re-encrypt`, CreateGrant is `manage-grants`, RetireGrant lets the grantee retire the grant.
/// A grantee is a Keyward principal name, an access key id, or an IAM ARN whose last path
/// element is such a name.
enum AWSKMSGrantOperations {
    static let handlers: [String: AWSKMSRoutes.Handler] = [
        "CreateGrant": createGrant,
        "ListGrants": listGrants,
        "ListRetirableGrants": listRetirableGrants,
        "RetireGrant": retireGrant,
        "RevokeGrant": { call, _ in
            let reference = try call.reference("KeyId")
            let id = try grantID(call)
            try await call.run { () async throws(KeywardError) in try await call.service.revokeGrant(id, key: reference, actor: call.caller) }
        },
    ]

    /// AWS's grant operations and the Keyward operation each stands for.
    static let operations: [String: ServiceOperation] = [
        "Decrypt": .decrypt, "Encrypt": .encrypt, "GenerateDataKey": .generateDataKey, "GenerateDataKeyWithoutPlaintext": .generateDataKey,
        "ReEncryptFrom": .reEncrypt, "ReEncryptTo": .reEncrypt, "Sign": .sign, "Verify": .verify, "GetPublicKey": .publicKey,
        "CreateGrant": .manageGrants, "DescribeKey": .describe, "GenerateDataKeyPair": .generateDataKeyPair,
        "GenerateDataKeyPairWithoutPlaintext": .generateDataKeyPair, "GenerateMac": .mac, "VerifyMac": .verifyMAC,
        "DeriveSharedSecret": .deriveSharedSecret,
    ]

    /// The grants a request's `GrantTokens` name (`InvalidGrantTokenException` for one Keyward
    /// did not issue).
    static func presented(_ input: AWSInput) throws(APIError) -> [KeyID] {
        guard let tokens = try input.strings("GrantTokens") else { return [] }
        guard tokens.count <= 10 else { throw AWSFault.validation("GrantTokens holds at most 10 tokens") }
        var ids: [KeyID] = []
        for token in tokens {
            guard let id = GrantRecord.grantID(fromToken: token) else { throw fault("InvalidGrantTokenException", "a grant token is not one CreateGrant returned") }
            ids.append(id)
        }
        return ids
    }

    static func createGrant(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        guard let grantee = try call.input.string("GranteePrincipal") else { throw AWSFault.validation("GranteePrincipal is required") }
        guard let names = try call.input.strings("Operations"), !names.isEmpty else { throw AWSFault.validation("Operations is required") }
        var granted: Set<ServiceOperation> = []
        var mayRetire = false
        for name in names {
            if name == "RetireGrant" { mayRetire = true; continue }
            guard let operation = operations[name] else { throw AWSFault.validation("Operations: \(name.prefix(60)) is not a grant operation") }
            granted.insert(operation)
        }
        if granted.isEmpty { throw AWSFault.validation("Operations must name at least one operation besides RetireGrant") }
        var constraints: GrantConstraints? = nil
        if let object = try call.input.object("Constraints") {
            let subset = try object.map("EncryptionContextSubset"), equals = try object.map("EncryptionContextEquals")
            if subset != nil || equals != nil { constraints = GrantConstraints(contextSubset: subset, contextEquals: equals) }
        }
        let retiring = try call.input.string("RetiringPrincipal").map(principal)
        let name = try call.input.string("Name")
        let grant = try await call.run { () async throws(KeywardError) in
            try await call.service.createGrant(key: reference, grantee: principal(grantee), operations: granted, constraints: constraints,
                                               retiringPrincipal: retiring, granteeMayRetire: mayRetire, name: name, actor: call.caller)
        }
        json.member("GrantToken", grant.token)
        json.member("GrantId", grant.id.description)
    }

    static func listGrants(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        let limit = try call.input.int("Limit", 1...100) ?? 50
        let cursor = try marker(call)
        let only = try call.input.string("GrantId").map { text throws(APIError) -> KeyID in
            guard let id = KeyID(parsing: text) else { throw AWSFault.notFound("grant \(text.prefix(80)) does not exist") }
            return id
        }
        let grantee = try call.input.string("GranteePrincipal").map(principal)
        let page = try await call.run { () async throws(KeywardError) in
            try await call.service.listGrants(key: reference, grantID: only, grantee: grantee, after: cursor, limit: limit, actor: call.caller)
        }
        write(page, call, &json)
    }

    static func listRetirableGrants(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        guard let retiring = try call.input.string("RetiringPrincipal").map(principal) else { throw AWSFault.validation("RetiringPrincipal is required") }
        let limit = try call.input.int("Limit", 1...100) ?? 50
        let cursor = try marker(call)
        let page = try await call.run { () async throws(KeywardError) in
            try await call.service.listRetirableGrants(retiringPrincipal: retiring, after: cursor, limit: limit, actor: call.caller)
        }
        write(page, call, &json)
    }

    static func retireGrant(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let id: KeyID
        var reference: String? = nil
        if let token = try call.input.string("GrantToken") {
            guard let named = GrantRecord.grantID(fromToken: token) else { throw fault("InvalidGrantTokenException", "the grant token is not one CreateGrant returned") }
            id = named
        } else {
            guard call.input.has("KeyId"), call.input.has("GrantId") else { throw AWSFault.validation("give GrantToken, or KeyId and GrantId") }
            reference = try call.reference("KeyId")
            id = try grantID(call)
        }
        let key = reference
        try await call.run { () async throws(KeywardError) in try await call.service.retireGrant(id, key: key, actor: call.caller) }
    }

    // MARK: Helpers

    private static func write(_ page: (grants: [GrantRecord], nextCursor: KeyID?), _ call: AWSCall, _ json: inout JSONWriter) {
        json.member("Grants") { json in
            json.array { json in
                for record in page.grants {
                    json.object { json in
                        let grant = record.grant
                        json.member("KeyId", call.arn(grant.key))
                        json.member("GrantId", record.id.description)
                        if let name = grant.name { json.member("Name", name) }
                        json.member("CreationDate", epoch: record.createdAt)
                        json.member("GranteePrincipal", grant.grantee)
                        if let retiring = grant.retiringPrincipal { json.member("RetiringPrincipal", retiring) }
                        json.member("IssuingAccount", "arn:aws:iam::\(call.settings.accountID):root")
                        var names = operations.filter { grant.operations.contains($0.value) }.map(\.key)
                        if grant.granteeMayRetire { names.append("RetireGrant") }
                        json.member("Operations", strings: names.sorted())
                        if let constraints = grant.constraints {
                            json.member("Constraints") { json in
                                json.object { json in
                                    if let subset = constraints.contextSubset { json.member("EncryptionContextSubset", dictionary: subset) }
                                    if let equals = constraints.contextEquals { json.member("EncryptionContextEquals", dictionary: equals) }
                                }
                            }
                        }
                    }
                }
            }
        }
        json.member("Truncated", page.nextCursor != nil)
        if let next = page.nextCursor { json.member("NextMarker", next.description) }
    }

    private static func marker(_ call: AWSCall) throws(APIError) -> KeyID? {
        guard let marker = try call.input.string("Marker") else { return nil }
        guard let id = KeyID(parsing: marker) else { throw AWSFault.invalidMarker("Marker is not one this operation returned") }
        return id
    }

    private static func grantID(_ call: AWSCall) throws(APIError) -> KeyID {
        guard let text = try call.input.string("GrantId") else { throw AWSFault.validation("GrantId is required") }
        guard let id = KeyID(parsing: text) else { throw AWSFault.notFound("grant \(text.prefix(80)) does not exist") }
        return id
    }

    /// A principal as Keyward names it: an IAM ARN (`arn:aws:iam::ACCOUNT:user/NAME`) stands for
    /// NAME; anything else is taken as it is.
    static func principal(_ text: String) -> String {
        guard text.hasPrefix("arn:aws:iam::"), let slash = text.lastIndex(of: "/") else { return text }
        return String(text[text.index(after: slash)...])
    }

    private static func fault(_ type: String, _ message: String) -> APIError {
        var error = APIError("invalid_request", .badRequest, message)
        error.awsType = type
        return error
    }
}
