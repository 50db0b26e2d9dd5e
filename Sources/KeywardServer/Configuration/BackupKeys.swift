import Foundation
import Keyward
import KeywardCrypto

/// The backup keys the operator configured (`ServerConfiguration.BackupSettings`), read once
/// when the server starts: a file missing or not of its kind stops the start, naming it.
struct BackupKeys: Sendable {
    /// Recipients a backup over the API may be sealed to.
    let recipients: [PublicKey]
    /// This server's recipient identity, which restores open bundles with.
    let identity: RestoreIdentity?
    /// Stores whose bundles a restore accepts.
    let signers: [PublicKey]

    init(_ settings: ServerConfiguration.BackupSettings) throws(KeywardError) {
        recipients = try settings.recipients.map { (path) throws(KeywardError) in try Self.read(path, "backup.recipients", BackupKeyFiles.recipient) }
        signers = try settings.signers.map { (path) throws(KeywardError) in try Self.read(path, "backup.signers", BackupKeyFiles.signer) }
        identity = try settings.identity.map { (path) throws(KeywardError) in
            let text = try SecretFile.text(path, "the identity file") { KeywardError.invalidArgument("backup.identity: \($0)") }
            do throws(KeywardError) {
                return RestoreIdentity(try BackupKeyFiles.identity(text))
            } catch {
                throw .invalidArgument("backup.identity: \(path) is \(error.description)")
            }
        }
    }

    private static func read<T>(_ path: String, _ setting: String, _ parse: (String) throws(KeywardError) -> T) throws(KeywardError) -> T {
        let text = try ProtectedFile.text(path, "the file") { KeywardError.invalidArgument("\(setting): \($0)") }
        do throws(KeywardError) {
            return try parse(text)
        } catch {
            throw .invalidArgument("\(setting): \(path) is \(error.description)")
        }
    }
}

/// The server's restore identity: secret key material, held for the server's life.
final class RestoreIdentity: Sendable {
    let material: KeyMaterial
    init(_ material: consuming KeyMaterial) { self.material = material }
}
