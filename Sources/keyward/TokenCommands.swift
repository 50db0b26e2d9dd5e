import ArgumentParser
import Foundation
import KeywardAPI
import Keyward
import KeywardCrypto

/// `keyward token create | list | revoke | policy`: API tokens for the service.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Issue, list and revoke API tokens, and change their policies.",
        subcommands: [Create.self, List.self, Revoke.self, Policy.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a token (shown once) with rules OPERATIONS:SELECTOR, e.g. --allow encrypt,decrypt:alias=app/*")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "The principal the token authenticates as.") var principal: String
        @Option(help: "A rule OPERATIONS:SELECTOR (repeatable); selectors: *, key=UUID, alias=PATTERN, tag=NAME=VALUE.") var allow: [String] = []
        @Option(help: "Days until the token expires (default: never).") var expiresDays: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    let issued = try await client.issueToken(principal: principal, rules: allow, expiresInDays: expiresDays)
                    if json {
                        try JSONOutput.print(["id": issued.id.description, "principal": principal, "token": issued.token])
                    } else {
                        print("token \(issued.id) for \(principal); shown once, store it now:")
                        print(issued.token)
                    }
                }) { return }
                let service = try await storeOptions.open()
                var rules: [AccessRule] = []
                for rule in allow { rules.append(try AccessPolicy.parseRule(rule)) }
                let issued = try await service.issueToken(principal: principal, policy: AccessPolicy(rules: rules),
                                                          lifetime: expiresDays.map { Double($0) * 86_400 }, actor: storeOptions.actorName)
                if json {
                    try JSONOutput.print(["id": issued.record.id.description, "principal": principal, "token": issued.text])
                } else {
                    print("token \(issued.record.id) for \(principal); shown once, store it now:")
                    print(issued.text)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    var cursor: String? = nil
                    var tokens: [TokenReply] = []
                    repeat {
                        let page = try await client.listTokens(after: cursor, limit: 500)
                        tokens += page.tokens
                        let next = page.nextCursor?.description
                        // A server whose paging does not move forward would hold this loop forever.
                        if let next, next == cursor || page.tokens.isEmpty {
                            throw CLIError(.failure, "the server's token paging did not advance past \(next); it is not answering as Keyward does")
                        }
                        cursor = next
                    } while cursor != nil
                    if json { return try JSONOutput.print(tokens) }
                    for token in tokens {
                        let state = token.revokedAt != nil ? "revoked" : (token.expiresAt.map { $0 <= Date() ? "expired" : "expires \(ISO8601DateFormatter().string(from: $0))" } ?? "no expiry")
                        print("\(token.id)  \(PrintableText.escaped(token.principal).padding(toLength: 24, withPad: " ", startingAt: 0)) \(state)  \(PrintableText.escaped(token.rules.joined(separator: " ")))")
                    }
                }) { return }
                let service = try await storeOptions.open()
                var tokens: [TokenRecord] = []
                var cursor: KeyID? = nil
                repeat {
                    let page = try await service.listTokens(after: cursor, limit: 500, actor: storeOptions.actorName)
                    tokens += page.tokens
                    cursor = page.nextCursor
                } while cursor != nil
                if json { return try JSONOutput.print(tokens) }
                for token in tokens {
                    let state = token.revokedAt != nil ? "revoked" : (token.expiresAt.map { $0 <= Date() ? "expired" : "expires \(ISO8601DateFormatter().string(from: $0))" } ?? "no expiry")
                    print("\(token.id)  \(PrintableText.escaped(token.principal).padding(toLength: 24, withPad: " ", startingAt: 0)) \(state)  \(token.policy.rules.count) rule(s)")
                }
            }
        }
    }

    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a token's rules, e.g. --allow encrypt:alias=app/* (no wider than your own grants).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Token id.") var id: String
        @Option(help: "A rule OPERATIONS:SELECTOR (repeatable); it replaces every rule the token had.") var allow: [String] = []

        func run() async throws {
            try await guarded {
                guard !allow.isEmpty else { throw ValidationError("give the new rules with --allow (at least one)") }
                if try await !storeOptions.remote({ client in _ = try await client.changeTokenPolicy(id, rules: allow) }) {
                    var rules: [AccessRule] = []
                    for rule in allow { rules.append(try AccessPolicy.parseRule(rule)) }
                    _ = try await storeOptions.open().changeTokenPolicy(try KeyID(string: id), to: AccessPolicy(rules: rules), actor: storeOptions.actorName)
                }
                print("token \(id) now has \(allow.count) rule(s): \(allow.joined(separator: " "))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Token id.") var id: String

        func run() async throws {
            try await guarded {
                if try await !storeOptions.remote({ client in try await client.revokeToken(id) }) {
                    try await storeOptions.open().revokeToken(try KeyID(string: id), actor: storeOptions.actorName)
                }
                print("token \(id) revoked")
            }
        }
    }
}
