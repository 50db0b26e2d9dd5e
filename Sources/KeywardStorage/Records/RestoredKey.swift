import Foundation

/// One key's rows as a restore writes them (`KeyRecordStore.restoreKeys`): its row at its final
/// revision, every version, every alias.
public struct RestoredKey: Sendable {
    /// The key row.
    public var key: KeyRow
    /// All its versions, in order.
    public var versions: [VersionRow]
    /// Its aliases.
    public var aliases: [AliasRow]

    /// The rows of one key.
    public init(key: KeyRow, versions: [VersionRow], aliases: [AliasRow]) {
        self.key = key
        self.versions = versions
        self.aliases = aliases
    }
}
