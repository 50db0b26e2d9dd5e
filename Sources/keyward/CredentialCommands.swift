import ArgumentParser
import Foundation
import Keyward

/// `keyward credential create --aws`: access keys for clients of the AWS KMS API.
struct CredentialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential", abstract: "Issue credentials for Keyward's other front ends (AWS access keys).", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an AWS access key (id and secret, the secret shown once) with rules OPERATIONS:SELECTOR, as `token create` takes.",
            discussion: "Point AWS SDKs, the AWS CLI or the AWS Encryption SDK at the server (--endpoint-url, AWS_ENDPOINT_URL_KMS) with this key. Revoke it with `keyward token revoke ID`.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "An AWS access key (the only kind so far).") var aws = false
        @Option(help: "The principal the key authenticates as.") var principal: String
        @Option(help: "A rule OPERATIONS:SELECTOR (repeatable); selectors: *, key=UUID, alias=PATTERN, tag=NAME=VALUE.") var allow: [String] = []
        @Option(help: "Days until the key expires (default: never).") var expiresDays: Int?
        @Flag(help: "Print JSON: id, principal, accessKeyId, secretAccessKey.") var json = false

        func run() async throws {
            try await guarded {
                guard aws else { throw CLIError(.failure, "say which kind of credential: --aws") }
                if try await storeOptions.remote({ client in
                    let issued = try await client.issueAWSCredential(principal: principal, rules: allow, expiresInDays: expiresDays)
                    try show(id: issued.id.description, accessKeyID: issued.accessKeyId, secret: issued.secretAccessKey)
                }) { return }
                let service = try await storeOptions.open()
                var rules: [AccessRule] = []
                for rule in allow { rules.append(try AccessPolicy.parseRule(rule)) }
                let issued = try await service.issueAWSCredential(principal: principal, policy: AccessPolicy(rules: rules),
                                                                  lifetime: expiresDays.map { Double($0) * 86_400 }, actor: storeOptions.actorName)
                try show(id: issued.record.id.description, accessKeyID: issued.accessKeyID, secret: issued.secretAccessKey)
            }
        }

        private func show(id: String, accessKeyID: String, secret: String) throws {
            if json {
                try JSONOutput.print(["id": id, "principal": principal, "accessKeyId": accessKeyID, "secretAccessKey": secret])
            } else {
                print("AWS access key \(accessKeyID) for \(principal) (record \(id)); the secret is shown once, store it now:")
                print("AWS_ACCESS_KEY_ID=\(accessKeyID)")
                print("AWS_SECRET_ACCESS_KEY=\(secret)")
            }
        }
    }
}
