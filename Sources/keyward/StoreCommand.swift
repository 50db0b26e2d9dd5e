import ArgumentParser
import Foundation
import Keyward
import KeywardStorage

/// `keyward store migrate`: moves a whole store to another backend (a SQLite file into
/// PostgreSQL, or back), then proves the copy by opening it and verifying every record and the
/// audit chain.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Move a store between backends.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy every row of a store (keys, versions, aliases, tokens, audit) into an empty store elsewhere, and verify the copy.",
            discussion: """
                keyward store migrate --from keyward.db --to postgres://keyward@db:5432/keyward --key-file root.key

                Stop every process using the source first. Nothing is decrypted: the copy keeps the store id, the KEK and \
                every MAC, and opens with the same root of trust. The copy is then opened and verified (every record, the \
                audit chain); on failure, drop the target and run again.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "The source store: a SQLite file or a postgres:// URL.") var from: String
        @Option(help: "The target: a new SQLite file or an empty PostgreSQL database (postgres:// URL).") var to: String

        func run() async throws {
            try await guarded {
                try Keyward.harden()
                var source = storeOptions
                source.store = from
                var target = storeOptions
                target.store = to
                if !target.isPostgres, FileManager.default.fileExists(atPath: to) {
                    throw CLIError(.refused, "\(to) already exists; migrate into a new file or an empty database")
                }
                // The source is verified first: a damaged store is not copied.
                let (sourceService, root) = try await source.openWithRoot()
                let sourceReport = try await sourceService.verifyStore()
                guard sourceReport.isIntact else {
                    throw CLIError(.verification, "the source fails verification (\(sourceReport.allProblems.count) problem(s); run keyward verify); nothing was copied")
                }
                let from = try await source.connectStore()
                let into = try await target.connectStore(creating: true)
                let counts: StoreCopy.Counts
                do {
                    counts = try await StoreCopy.copy(from: from, to: into) { line in FileHandle.standardError.write(Data("\(line)\n".utf8)) }
                } catch let error as StorageError {
                    if case .conflict(let reason) = error { throw CLIError(.refused, "\(reason); nothing was written") }
                    throw error
                }
                let copy = try await KeyService.open(store: try await target.connectStore(), root: { (_) throws(KeywardError) -> any RootOfTrust in root })
                let report = try await copy.verifyStore()
                guard report.isIntact else {
                    for problem in report.allProblems { FileHandle.standardError.write(Data("  \(problem)\n".utf8)) }
                    throw CLIError(.verification, "the copy at \(to) fails verification; drop it and run the migration again")
                }
                print("copied \(counts) into \(to)")
                print("the copy opens with the same root of trust and verifies: store intact, audit chain intact (\(report.audit.entries) entries)")
            }
        }
    }
}
