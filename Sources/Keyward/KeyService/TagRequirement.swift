/// A tag a lifecycle change requires the key to carry, checked on the key as the change reads it
/// inside its transaction (`KeyService.transition(key:_:waitingDays:requiring:actor:)`). A caller
/// that checked the tag first and changed the key after would let a concurrent update remove the
/// tag in between, and act on a permission already withdrawn.
public struct TagRequirement: Sendable, Equatable {
    /// The tag's name.
    public var name: String
    /// The value it must have.
    public var value: String
    /// What the caller is told when the key lacks the tag (thrown as `KeywardError.invalidArgument`).
    public var refusal: String

    /// Requires tag `name` with `value`; `refusal` explains the refusal otherwise.
    public init(name: String, value: String, refusal: String) {
        self.name = name
        self.value = value
        self.refusal = refusal
    }

    /// Whether `tags` satisfy the requirement.
    public func isMet(by tags: [String: String]) -> Bool {
        tags[name] == value
    }
}
