import Foundation
import KeywardCrypto
import KeywardStorage

extension KeyService {
    /// The newest version, with `count` random-nonce encryptions taken from its budget (a batch
    /// takes one per item). When the version has reached its encryption limit the key rotates
    /// first (under `SystemJob.encryptionLimitRotation`) and the new version encrypts.
    func versionForEncryption(_ key: LoadedKey, count: Int = 1) async throws(KeywardError) -> LoadedVersion {
        guard count >= 1, UInt64(count) <= budget.block else {
            throw .invalidArgument("\(count) encryptions at once; at most \(budget.block)")
        }
        var key = key
        for _ in 0..<16 {
            let version = try await records.loadVersion(key, key.metadata.currentVersion)
            if case .taken(let refill) = budget.take(UInt64(count), from: version) {
                if refill { budget.reserveAhead(key, version) }
                return version
            }
            if try await !budget.reserve(key, version) {
                // The version reached its limit: rotate (one caller wins; the others see the
                // new version when they reload) and continue with the newest version.
                do {
                    _ = try await rotate(key: key.row.id.description, actor: .system(.encryptionLimitRotation))
                } catch {
                    guard case .storage(.conflict) = error else { throw error }
                }
                key = try await records.load(key.row.id)
            }
        }
        throw .storage(.conflict("could not reserve encryptions for key \(key.row.id)"))
    }
}
