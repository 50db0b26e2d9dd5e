import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto

/// `keyward kek rotate`: a new storage KEK, every record rewritten under it in one transaction.
struct KEKCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kek", abstract: "Manage the storage KEK.", subcommands: [Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrap every key version and re-MAC every record under a new KEK, in one transaction.")
        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    let rotated = try await client.rotateKEK()
                    print("the store is now sealed under KEK \(rotated.activeKek) (\(rotated.records) records rewritten)")
                }) { return }
                let (service, root) = try await storeOptions.openWithRoot()
                let progress = Progress(label: "rewriting records")
                let rotated = try await service.rotateKEK(root: root, actor: storeOptions.actorName) { progress.update($0) }
                progress.finish()
                print("the store is now sealed under KEK \(rotated.header.activeKEK)")
            }
        }
    }
}
