import ArgumentParser
import Foundation
import KeywardCrypto

/// The `keyward` command.
@main
struct Keyward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyward",
        abstract: "Keyward: key management in Swift.",
        discussion: """
            The store comes from --store or KEYWARD_STORE. A passphrase store reads its passphrase from \
            KEYWARD_PASSPHRASE_FILE, KEYWARD_PASSPHRASE, or a prompt without echo; never from arguments. \
            A key-file store reads --key-file or KEYWARD_KEY_FILE. With --server or KEYWARD_ADDR (a \
            keyward serve), the commands a server offers (keys, cryptography, tokens and credentials, audit, \
            verify, backup and restore, KEK rotation, maintenance) run there instead, as the principal of \
            the token in KEYWARD_TOKEN (the server's CA from --ca-file or KEYWARD_CACERT).

            Exit codes: 0 ok, 1 error, 2 usage, 3 key not found, 4 integrity failure, \
            5 refused (state, purpose, policy), 6 wrong passphrase or key file, 7 verification failed.
            """,
        version: "0.1.0",
        subcommands: [
            Init.self, KeyCommand.self, Encrypt.self, Decrypt.self, ReEncrypt.self, Sign.self, Verify.self,
            MAC.self, VerifyMAC.self, DataKeyCommand.self, RandomBytes.self, PublicKeyCommand.self,
            AuditCommand.self, TokenCommand.self, CredentialCommand.self, Serve.self, BackupCommand.self, Restore.self, KEKCommand.self, StoreCommand.self, Maintain.self, SelfTest.self, Specs.self,
        ]
    )

    /// Parses and runs a subcommand as `AsyncParsableCommand.main` does, except that a usage
    /// error (an unknown option, a missing or invalid argument) exits with 2, the code the help
    /// documents, rather than ArgumentParser's 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            exit(withError: ExitCode(CLIError.Code.usage.rawValue))
        }
    }

    /// Disables core dumps before any subcommand touches a key.
    static func harden() throws {
        do {
            try ProcessHardening.disableCoreDumps()
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
