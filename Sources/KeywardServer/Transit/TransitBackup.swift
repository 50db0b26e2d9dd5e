import Foundation
import Hummingbird
import Keyward
import KeywardAPI

/// Transit's backup and restore of one key, encrypted where Transit's are plaintext: the backup
/// is a Keyward recipient bundle of the one key, sealed to the first recipient the server's
/// operator pins (`backup.recipients`) and signed by the store's backup signing key; restore
/// opens it with the server's own identity (`backup.identity`) and accepts it only from a store
/// the operator trusts (`backup.signers`). Both are administration (`backup`, `restore` on `*`),
/// as the native API's are (decision 0025); the key material never crosses the wire in clear.
enum TransitBackup {
    /// `GET backup/:name`: `{"backup": "<base64 of the bundle>"}`.
    static func backup(_ call: TransitCall, keys: BackupKeys) async throws -> Response {
        let name = try call.name()
        guard let recipient = keys.recipients.first else {
            try await call.run { () async throws(KeywardError) in try await call.service.checkAdministration(.backup, actor: call.caller) }
            throw TransitError.invalid("this server seals backups to no recipient (backup.recipients), so it gives none")
        }
        let bundle = try await call.run { () async throws(KeywardError) in
            try await call.service.createBackup(to: recipient, pinned: keys.recipients, keys: [call.prefix + name], actor: call.caller)
        }
        let text = Base64.encode(bundle.bytes)
        return call.reply { json in json.member("backup", text) }
    }

    /// `POST restore(/:name)`: adds the bundle's key (named `name` when given, else as it was
    /// named) to this store, which must not hold it. `force` (overwrite) is refused.
    static func restore(_ call: TransitCall, keys: BackupKeys, name: String?) async throws -> Response {
        guard let text = try call.input.string("backup"), let bundle = Base64.decode(text) else {
            throw TransitError.invalid("backup is required: the base64 of a backup from transit/backup")
        }
        if try call.input.bool("force") == true {
            throw TransitError.invalid("force is not supported: Keyward never overwrites a key; delete the existing key first")
        }
        guard let identity = keys.identity else {
            try await call.run { () async throws(KeywardError) in try await call.service.checkAdministration(.restore, actor: call.caller) }
            throw TransitError.invalid("this server has no restore identity (backup.identity), so it restores nothing over the API")
        }
        _ = try await call.run { () async throws(KeywardError) in
            try await call.service.restoreKeys(bundle: bundle, identity: identity.material, signers: keys.signers,
                                               aliases: name.map { [call.prefix + $0] }, actor: call.caller)
        }
        return Response(status: .noContent)
    }
}
