import Foundation
import KeywardCrypto

/// The store's own Ed25519 signing keys (the backup signer, the audit signer): found by their
/// reserved `keyward/` alias, created on first use, never backed up, reachable only through an
/// internal step of an already authorised call.
extension KeyService {
    /// The signing key at `alias` (created on first use with `description`), its current version
    /// and its public key, for a caller already authorised.
    ///
    /// - Throws: `storeState` when the alias names a key that cannot sign `what`.
    func storeSigningKey(alias: String, description text: String, what: String, actor: Caller) async throws(KeywardError)
        -> (id: KeyID, version: UInt32, publicKey: PublicKey) {
        let description: KeyDescription
        do {
            description = try await describe(key: alias, actor: actor.internalStep)
        } catch {
            guard case .keyNotFound = error else { throw error }
            description = try await createKey(CreateKeyRequest(spec: .ed25519, aliases: [alias], description: text, backupAllowed: false),
                                              actor: actor.internalStep)
        }
        guard description.metadata.spec == .ed25519 else {
            throw .storeState("alias \(alias) names a \(description.metadata.spec.rawValue) key, which cannot sign \(what); move the alias")
        }
        let publicKey = try await publicKey(key: description.metadata.id.description, actor: actor.internalStep)
        return (description.metadata.id, description.metadata.currentVersion, publicKey)
    }
}
