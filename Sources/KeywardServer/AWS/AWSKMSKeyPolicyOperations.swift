import Foundation
import Keyward
import KeywardAPI
import KeywardCrypto

/// AWS KMS key policies over Keyward's (`KeyPolicy`): GetKeyPolicy, PutKeyPolicy and
/// ListKeyPolicies. A key has one policy, named `default`; a key without one answers with AWS's
/// default policy, which leaves access to the callers' own policies.
enum AWSKMSKeyPolicyOperations {
    static let handlers: [String: AWSKMSRoutes.Handler] = [
        "GetKeyPolicy": { call, json in
            let reference = try call.reference("KeyId")
            try checkName(call)
            let key = try await AWSKMSKeyOperations.describe(call, reference)
            json.member("Policy", key.metadata.keyPolicy?.document ?? AWSKeyPolicyDocument.defaultDocument(accountID: call.settings.accountID))
            json.member("PolicyName", "default")
        },
        "PutKeyPolicy": { call, _ in
            let reference = try call.reference("KeyId")
            try checkName(call)
            guard let text = try call.input.string("Policy") else { throw AWSFault.validation("Policy is required") }
            let key = try await AWSKMSKeyOperations.describe(call, reference, for: .setKeyPolicy)
            let keyPolicy = try policy(text, for: key.metadata.id, call)
            let bypass = try call.input.bool("BypassPolicyLockoutSafetyCheck") ?? false
            let id = key.metadata.id.description
            do throws(KeywardError) {
                _ = try await call.service.setKeyPolicy(keyPolicy, key: id, bypassLockoutCheck: bypass, actor: call.caller)
            } catch {
                if case .notPermitted = error { throw AWSKeyPolicyDocument.malformed(error.description) }
                throw call.fault(error)
            }
        },
        "ListKeyPolicies": { call, json in
            let reference = try call.reference("KeyId")
            _ = try call.input.int("Limit", 1...1000)
            if let marker = try call.input.string("Marker"), !marker.isEmpty { throw AWSFault.invalidMarker("Marker is not one ListKeyPolicies returned") }
            _ = try await AWSKMSKeyOperations.describe(call, reference)
            json.member("PolicyNames", strings: ["default"])
            json.member("Truncated", false)
        },
    ]

    /// The Keyward policy a document stands for, or nil for AWS's default policy (the callers'
    /// own policies decide, as with no key policy at all).
    static func policy(_ text: String, for key: KeyID, _ call: AWSCall) throws(APIError) -> KeyPolicy? {
        let parsed = try AWSKeyPolicyDocument.parse(text, keyARN: call.arn(key), accountID: call.settings.accountID)
        if parsed.statements.isEmpty, parsed.principalPolicyOperations == KeyPolicy.keyOperations { return nil }
        return parsed
    }

    private static func checkName(_ call: AWSCall) throws(APIError) {
        if let name = try call.input.string("PolicyName"), name != "default" {
            throw AWSFault.notFound("a key has one policy, named default, not \(name.prefix(80))")
        }
    }
}
