import Foundation
import Keyward
import KeywardCrypto
import KeywardAPI

/// AWS key policy documents, read into Keyward's `KeyPolicy` exactly or refused.
///
/// The part of the IAM policy language that maps exactly onto Keyward's rules is accepted:
/// `Version`, `Id`, and statements with `Sid`, `Effect` (Allow, Deny), `Principal` (`*`, or
/// `AWS` naming this account's root, this account's users and roles by name, Keyward principal
/// names and access key ids), `Action` (`kms:` actions, with `*` wildcards), `Resource` (`*` or
/// the key's ARN) and `Condition` (`StringEquals` on `kms:EncryptionContext:KEY`). The account's
/// root in an Allow statement leaves those actions to the callers' own Keyward policies, as IAM
/// policies are in AWS; in a Deny it denies everyone.
///
/// Keyward's operations are coarser than AWS's actions in places (`KeyPolicy`), so a statement
/// must name every action of each Keyward operation it touches, or none: allowing
/// `kms:GenerateDataKey` without `kms:GenerateDataKeyWithoutPlaintext` would allow both, and that
/// policy is refused with `MalformedPolicyDocumentException`, never widened. Anything else
/// (`NotAction`, `NotPrincipal`, `NotResource`, other condition keys or operators, other
/// accounts, services) is refused the same way.
enum AWSKeyPolicyDocument {
    /// Every `kms:` action on a key and the Keyward operation it is.
    static let actions: [String: ServiceOperation] = [
        "Encrypt": .encrypt, "Decrypt": .decrypt, "ReEncryptFrom": .reEncrypt, "ReEncryptTo": .reEncrypt,
        "GenerateDataKey": .generateDataKey, "GenerateDataKeyWithoutPlaintext": .generateDataKey,
        "GenerateDataKeyPair": .generateDataKeyPair, "GenerateDataKeyPairWithoutPlaintext": .generateDataKeyPair,
        "Sign": .sign, "Verify": .verify, "GenerateMac": .mac, "VerifyMac": .verifyMAC, "DeriveSharedSecret": .deriveSharedSecret,
        "GetPublicKey": .publicKey,
        "DescribeKey": .describe, "GetKeyRotationStatus": .describe, "ListResourceTags": .describe, "ListKeyRotations": .describe,
        "GetKeyLastUsage": .describe, "GetKeyPolicy": .describe, "ListKeyPolicies": .describe,
        "UpdateKeyDescription": .update, "TagResource": .update, "UntagResource": .update, "EnableKeyRotation": .update,
        "DisableKeyRotation": .update, "CreateAlias": .update, "UpdateAlias": .update, "DeleteAlias": .update,
        "RotateKeyOnDemand": .rotate, "EnableKey": .enable, "DisableKey": .disable,
        "ScheduleKeyDeletion": .scheduleDestruction, "CancelKeyDeletion": .cancelDestruction,
        "CreateGrant": .manageGrants, "ListGrants": .manageGrants, "RevokeGrant": .manageGrants,
        "GetParametersForImport": .importMaterial, "ImportKeyMaterial": .importMaterial, "DeleteImportedKeyMaterial": .importMaterial,
        "PutKeyPolicy": .setKeyPolicy,
    ]

    /// The default policy AWS gives a key, and what a key without a policy answers to
    /// GetKeyPolicy: the account's callers' own policies decide.
    static func defaultDocument(accountID: String) -> String {
        #"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","#
            + #""Principal":{"AWS":"arn:aws:iam::\#(accountID):root"},"Action":"kms:*","Resource":"*"}]}"#
    }

    /// The Keyward policy `text` stands for, for the key `keyARN`.
    static func parse(_ text: String, keyARN: String, accountID: String) throws(APIError) -> KeyPolicy {
        guard text.utf8.count <= KeyPolicy.maximumDocumentBytes else { throw malformed("the policy is larger than 32 KiB") }
        let data = Data(text.utf8)
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let document = parsed as? [String: Any] else {
            throw malformed("the policy is not a JSON object")
        }
        if let repeated = DuplicateMembers.find(in: data) { throw malformed("'\(repeated)' appears more than once in the policy") }
        try only(document, ["Version", "Id", "Statement"], "the policy")
        if let version = document["Version"] {
            guard let version = version as? String, ["2012-10-17", "2008-10-17"].contains(version) else { throw malformed("Version must be 2012-10-17") }
        }
        let raw: [Any]
        switch document["Statement"] {
        case let list as [Any]: raw = list
        case let one as [String: Any]: raw = [one]
        default: throw malformed("Statement must be a statement or a list of them")
        }
        guard !raw.isEmpty else { throw malformed("the policy has no statement") }
        var statements: [KeyPolicy.Statement] = []
        var principalPolicies: Set<ServiceOperation> = []
        for (index, item) in raw.enumerated() {
            let what = "statement \(index + 1)"
            guard let statement = item as? [String: Any] else { throw malformed("\(what) is not an object") }
            try only(statement, ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"], what)
            let effect: KeyPolicy.Effect
            switch statement["Effect"] as? String {
            case "Allow": effect = .allow
            case "Deny": effect = .deny
            default: throw malformed("\(what): Effect must be Allow or Deny")
            }
            let operations = try operations(statement["Action"], what)
            try checkResource(statement["Resource"], keyARN: keyARN, what)
            let context = try condition(statement["Condition"], what)
            var (principals, root) = try principals(statement["Principal"], accountID: accountID, what)
            if root {
                switch effect {
                case .allow:
                    guard context.isEmpty else {
                        throw malformed("\(what): a condition on the account's root cannot be represented (callers' own policies have no encryption-context conditions)")
                    }
                    principalPolicies.formUnion(operations)
                case .deny:
                    principals.append("*")
                }
            }
            if !principals.isEmpty {
                statements.append(KeyPolicy.Statement(effect: effect, principals: principals, operations: operations, contextEquals: context))
            }
        }
        return KeyPolicy(statements: statements, principalPolicyOperations: principalPolicies, document: text)
    }

    /// The Keyward operations of an `Action`, each one whole.
    private static func operations(_ value: Any?, _ what: String) throws(APIError) -> Set<ServiceOperation> {
        let names: [String]
        switch value {
        case let one as String: names = [one]
        case let list as [String] where !list.isEmpty: names = list
        default: throw malformed("\(what): Action must be a kms: action or a list of them")
        }
        var named: Set<String> = []
        var everything = false
        for name in names {
            guard name.hasPrefix("kms:"), name.count > 4 else { throw malformed("\(what): \(name.prefix(80)) is not a kms: action") }
            let action = String(name.dropFirst(4))
            if action == "*" { everything = true; continue }
            if action.hasSuffix("*") {
                let prefix = action.dropLast()
                guard !prefix.contains("*") else { throw malformed("\(what): \(name.prefix(80)) has a wildcard Keyward cannot match") }
                let matched = actions.keys.filter { $0.hasPrefix(prefix) }
                guard !matched.isEmpty else { throw malformed("\(what): \(name.prefix(80)) matches no key action") }
                named.formUnion(matched)
            } else {
                guard actions[action] != nil else { throw malformed("\(what): \(name.prefix(80)) is not an action on a key that Keyward serves") }
                named.insert(action)
            }
        }
        if everything { return KeyPolicy.keyOperations }
        let operations = Set(named.compactMap { actions[$0] })
        for operation in operations {
            let whole = Set(actions.filter { $0.value == operation }.map(\.key))
            let missing = whole.subtracting(named)
            guard missing.isEmpty else {
                throw malformed("\(what): Keyward's \(operation.rawValue) is \(whole.sorted().map { "kms:" + $0 }.joined(separator: ", ")); "
                                + "name all of them or none (missing \(missing.sorted().map { "kms:" + $0 }.joined(separator: ", ")))")
            }
        }
        return operations
    }

    private static func principals(_ value: Any?, accountID: String, _ what: String) throws(APIError) -> (names: [String], root: Bool) {
        let entries: [String]
        switch value {
        case let star as String where star == "*": return (["*"], false)
        case let map as [String: Any]:
            guard map.count == 1, let aws = map["AWS"] else { throw malformed("\(what): Principal names AWS principals only") }
            switch aws {
            case let one as String: entries = [one]
            case let list as [String] where !list.isEmpty: entries = list
            default: throw malformed("\(what): Principal AWS must be a string or a list of them")
            }
        default: throw malformed("\(what): Principal must be * or {\"AWS\": ...}")
        }
        var names: [String] = []
        var root = false
        for entry in entries {
            if entry == "*" { names.append("*"); continue }
            if entry == accountID || entry == "arn:aws:iam::\(accountID):root" { root = true; continue }
            if entry.hasPrefix("arn:") {
                let parts = entry.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
                guard parts.count == 6, parts[1] == "aws", parts[2] == "iam", parts[4] == accountID,
                      parts[5].hasPrefix("user/") || parts[5].hasPrefix("role/"), let slash = entry.lastIndex(of: "/") else {
                    throw malformed("\(what): \(entry.prefix(120)) is not this account's root, user or role")
                }
                names.append(String(entry[entry.index(after: slash)...]))
                continue
            }
            guard (1...256).contains(entry.unicodeScalars.count) else { throw malformed("\(what): a principal is 1 to 256 characters") }
            names.append(entry)
        }
        return (names, root)
    }

    private static func checkResource(_ value: Any?, keyARN: String, _ what: String) throws(APIError) {
        let resources: [String]
        switch value {
        case let one as String: resources = [one]
        case let list as [String] where !list.isEmpty: resources = list
        default: throw malformed("\(what): Resource must be * or this key's ARN")
        }
        guard resources.allSatisfy({ $0 == "*" || $0 == keyARN }) else { throw malformed("\(what): Resource must be * or this key's ARN") }
    }

    private static func condition(_ value: Any?, _ what: String) throws(APIError) -> [String: String] {
        guard let value else { return [:] }
        guard let map = value as? [String: Any], map.count == 1, let equals = map["StringEquals"] as? [String: Any] else {
            throw malformed("\(what): the only condition Keyward represents is StringEquals on kms:EncryptionContext:KEY")
        }
        var pairs: [String: String] = [:]
        for (key, raw) in equals {
            guard key.hasPrefix("kms:EncryptionContext:"), key.count > 22 else {
                throw malformed("\(what): condition key \(key.prefix(80)) cannot be represented; only kms:EncryptionContext:KEY")
            }
            let pairKey = String(key.dropFirst(22))
            switch raw {
            case let text as String: pairs[pairKey] = text
            case let list as [String] where list.count == 1: pairs[pairKey] = list[0]
            default: throw malformed("\(what): \(key.prefix(80)) must equal one string")
            }
        }
        guard !pairs.isEmpty else { throw malformed("\(what): StringEquals is empty") }
        return pairs
    }

    private static func only(_ object: [String: Any], _ allowed: Set<String>, _ what: String) throws(APIError) {
        for key in object.keys where !allowed.contains(key) {
            throw malformed("\(what): \(key.prefix(40)) cannot be represented exactly in Keyward")
        }
    }

    static func malformed(_ message: String) -> APIError {
        var error = APIError("invalid_request", .badRequest, message)
        error.awsType = "MalformedPolicyDocumentException"
        return error
    }
}
