import ArgumentParser
import KeywardCrypto

/// The `keyward` command.
@main
struct Keyward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyward",
        abstract: "Keyward: key management in Swift.",
        version: "0.1.0",
        subcommands: [SelfTest.self, Specs.self]
    )

    /// Disables core dumps before any subcommand touches a key.
    static func harden() throws {
        do {
            try ProcessHardening.disableCoreDumps()
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
