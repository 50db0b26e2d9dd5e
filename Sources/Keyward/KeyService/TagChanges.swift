/// Tags to set and to remove, applied to a key's tags as `KeyService.update` reads them inside
/// its transaction. Two callers tagging one key at once each keep their tags (or one is told
/// to retry); a caller that read the tags, changed its copy and wrote all of them back would
/// silently drop the other's.
public struct TagChanges: Sendable, Equatable {
    /// Tags added, or given a new value.
    public var set: [String: String]
    /// Tag names removed (a name the key does not carry is ignored).
    public var remove: Set<String>

    /// `set` applied after `remove`.
    public init(set: [String: String] = [:], remove: Set<String> = []) {
        self.set = set
        self.remove = remove
    }

    /// `tags` with these changes.
    public func applied(to tags: [String: String]) -> [String: String] {
        tags.filter { !remove.contains($0.key) }.merging(set) { _, new in new }
    }
}
