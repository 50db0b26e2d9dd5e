import Foundation
import KeywardCrypto

/// API tokens: each row holds a token's hash and its MAC'd record, never the token itself.
public protocol CredentialStore: Sendable {
    /// Stores a new token (`conflict` when its id exists).
    func insertToken(_ token: TokenRow) async throws(StorageError)
    /// A token by id.
    func token(_ id: KeyID) async throws(StorageError) -> TokenRow?
    /// Replaces a token row if its stored revision is `expectedRevision`.
    func updateToken(_ token: TokenRow, expectedRevision: Int64) async throws(StorageError)
    /// Up to `limit` tokens with ids after `cursor`, in id order.
    func tokens(after cursor: KeyID?, limit: Int) async throws(StorageError) -> [TokenRow]
}
