import ArgumentParser
import KeywardCrypto

/// `keyward specs`: the key specs Keyward offers and the purpose of each.
struct Specs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "specs",
        abstract: "List the key specs and the one purpose each serves."
    )

    func run() async {
        for spec in KeySpec.allCases {
            print("\(spec.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)) \(spec.purpose.rawValue)\(spec == .defaultSymmetric ? " (default)" : "")")
        }
    }
}
