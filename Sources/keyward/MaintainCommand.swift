import ArgumentParser
import Foundation
import Keyward

/// `keyward maintain`: the scheduled work of every key, now. `keyward serve` does this on a
/// timer; a library user runs it from cron (or calls `KeyService.runMaintenance()`).
struct Maintain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy keys past their destruction date and rotate keys whose rotation is due.",
        discussion: "Exits 0 when every due job ran, 1 when one failed (the others still run).")
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        try await guarded {
            if try await storeOptions.remote({ client in
                let report = try await client.runMaintenance()
                print("\(report.keys) keys examined: \(report.destroyed) destroyed, \(report.rotated) rotated")
                for failure in report.failures { FileHandle.standardError.write(Data("failed: \(failure)\n".utf8)) }
                if !report.failures.isEmpty { throw CLIError(.failure, "\(report.failures.count) maintenance jobs failed") }
            }) { return }
            let service = try await storeOptions.open()
            let report = try await service.runMaintenance()
            print("\(report.keys) keys examined: \(report.destroyed) destroyed, \(report.rotated) rotated")
            for failure in report.failures { FileHandle.standardError.write(Data("failed: \(failure)\n".utf8)) }
            if !report.failures.isEmpty { throw CLIError(.failure, "\(report.failures.count) maintenance jobs failed") }
        }
    }
}
