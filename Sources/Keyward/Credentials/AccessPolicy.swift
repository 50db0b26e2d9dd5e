import Foundation
import KeywardCrypto

/// Which keys a rule covers.
public enum KeySelector: Sendable, Hashable, Codable {
    /// Every key.
    case any
    /// One key by id.
    case key(KeyID)
    /// Keys with an alias matching a pattern: exact, or ending in `*` for a prefix
    /// (`app/payments/*`).
    case alias(String)
    /// Keys carrying a tag with this value.
    case tag(name: String, value: String)

    /// Whether `key` (with its aliases) is selected.
    public func matches(_ key: KeyDescription) -> Bool {
        switch self {
        case .any: return true
        case .key(let id): return key.metadata.id == id
        case .alias: return key.aliases.contains { matches(alias: $0) }
        case .tag(let name, let value): return key.metadata.tags[name] == value
        }
    }
}

extension KeySelector {
    /// Whether every key `other` selects, now or later, is selected by this selector: `*`
    /// covers all; an alias pattern ending in `*` covers the patterns and names inside its
    /// prefix; anything else covers only itself.
    public func covers(_ other: KeySelector) -> Bool {
        switch (self, other) {
        case (.any, _):
            return true
        case (.alias(let mine), .alias(let theirs)):
            return mine.hasSuffix("*") ? theirs.hasPrefix(mine.dropLast()) : mine == theirs
        default:
            return self == other
        }
    }

    /// Whether an alias `name` is inside this selector's alias scope: `.any`, or an alias
    /// pattern that matches the name (exactly, or by prefix for a pattern ending in `*`).
    public func matches(alias name: String) -> Bool {
        switch self {
        case .any: return true
        case .alias(let pattern):
            return pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        case .key, .tag: return false
        }
    }
}

extension KeySelector {
    /// `text` as an alias pattern: an alias, or the start of one followed by a single `*` (`app/*`;
    /// `*` alone is every key with an alias). Aliases hold no `*`, so one anywhere else (`app/**`,
    /// `app/*/orders`) would match nothing while reading as a grant: it is refused.
    static func aliasPattern(_ text: String) throws(KeywardError) -> String {
        let prefix = text.hasSuffix("*") ? String(text.dropLast()) : text
        guard !prefix.contains("*") else {
            throw .invalidArgument("alias pattern '\(text.prefix(64))': '*' may stand only at the end, for every alias that begins "
                                   + "with what precedes it (such as app/*); there is no '**' and no '*' inside a pattern")
        }
        if !(prefix.isEmpty && text == "*") { _ = try KeyService.validAlias(prefix) }
        return text
    }
}

extension AccessRule {
    /// The rule in the CLI's form, `OPERATIONS:SELECTOR` (what `AccessPolicy.parseRule` reads).
    public var text: String {
        let operations = self.operations == Set(ServiceOperation.allCases) ? "*" : self.operations.map(\.rawValue).sorted().joined(separator: ",")
        let selector: String
        switch keys {
        case .any: selector = "*"
        case .key(let id): selector = "key=\(id)"
        case .alias(let pattern): selector = "alias=\(pattern)"
        case .tag(let name, let value): selector = "tag=\(name)=\(value)"
        }
        return operations + ":" + selector
    }
}

/// One grant: these operations on keys the selector picks.
public struct AccessRule: Sendable, Hashable, Codable {
    /// The operations granted; empty grants nothing.
    public var operations: Set<ServiceOperation>
    /// The keys the operations are granted on.
    public var keys: KeySelector

    /// A grant of `operations` on the keys `keys` selects.
    public init(operations: Set<ServiceOperation>, keys: KeySelector) {
        self.operations = operations
        self.keys = keys
    }
}

/// What a principal may do: a list of grants, and nothing else (default deny).
public struct AccessPolicy: Sendable, Hashable, Codable {
    /// The grants; an empty list denies everything.
    public var rules: [AccessRule]

    /// A policy of these grants.
    public init(rules: [AccessRule]) { self.rules = rules }

    /// Everything on every key (the root token's policy).
    public static let everything = AccessPolicy(rules: [AccessRule(operations: Set(ServiceOperation.allCases), keys: .any)])

    /// Whether some rule grants `operation` on `key`.
    public func allows(_ operation: ServiceOperation, on key: KeyDescription) -> Bool {
        rules.contains { $0.operations.contains(operation) && $0.keys.matches(key) }
    }

    /// Whether some rule grants `operation` on every key, so that learning a key does not exist
    /// tells the holder nothing its policy would not show it anyway.
    public func allowsEverywhere(_ operation: ServiceOperation) -> Bool {
        rules.contains { $0.operations.contains(operation) && $0.keys == .any }
    }

    /// Whether some rule grants `operation` within an alias scope that holds `alias`, so the
    /// holder may give a key that name. A grant by key id or tag is not enough: naming a key is
    /// placing it in whatever alias scope the name falls in, which may be another principal's.
    /// No policy grants a name under `AccessPolicy.reservedAliasPrefix`.
    public func allowsNaming(_ alias: String, for operation: ServiceOperation) -> Bool {
        !Self.isReserved(alias) && rules.contains { $0.operations.contains(operation) && $0.keys.matches(alias: alias) }
    }

    /// Aliases under this prefix name the keys Keyward holds for itself (the backup signing key,
    /// the AWS credential key). No policy may name a key so, and a key so named serves a
    /// policy's holder only `describe` and `public-key`: `*:*` cannot sign a forged backup with
    /// the backup signer, nor compute AWS secret access keys with the credential key, nor move,
    /// rotate, disable or destroy either. The store's owner is not limited.
    public static let reservedAliasPrefix = "keyward/"

    /// Whether `alias` is in the reserved namespace.
    public static func isReserved(_ alias: String) -> Bool { alias.hasPrefix(reservedAliasPrefix) }

    /// Whether some rule grants `operation` on any key at all (for operations without a key,
    /// such as creating keys or asking for random bytes).
    public func allowsSomewhere(_ operation: ServiceOperation) -> Bool {
        rules.contains { $0.operations.contains(operation) }
    }

    /// Whether everything `other` grants, this policy grants too: each operation of each of
    /// its rules is granted here by a rule whose selector covers that rule's selector. An issuer
    /// may hand out only such a policy, so a token cannot mint a wider one.
    public func covers(_ other: AccessPolicy) -> Bool {
        other.rules.allSatisfy { rule in
            rule.operations.allSatisfy { operation in
                rules.contains { $0.operations.contains(operation) && $0.keys.covers(rule.keys) }
            }
        }
    }

    /// Parses the CLI form: `OPS:SELECTOR`, where OPS is comma-separated operation names or `*`,
    /// and SELECTOR is `*`, `key=UUID`, `alias=PATTERN` or `tag=NAME=VALUE`.
    public static func parseRule(_ text: String) throws(KeywardError) -> AccessRule {
        guard let colon = text.firstIndex(of: ":") else {
            throw .invalidArgument("rule '\(text)' is not OPERATIONS:SELECTOR, e.g. encrypt,decrypt:alias=app/*")
        }
        let operationsText = text[..<colon]
        let selectorText = String(text[text.index(after: colon)...])
        var operations: Set<ServiceOperation> = []
        if operationsText == "*" {
            operations = Set(ServiceOperation.allCases)
        } else {
            for name in operationsText.split(separator: ",") {
                guard let operation = ServiceOperation(rawValue: String(name)) else {
                    throw .invalidArgument("unknown operation '\(name)'; one of \(ServiceOperation.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                operations.insert(operation)
            }
        }
        guard !operations.isEmpty else {
            throw .invalidArgument("rule '\(text.prefix(64))' names no operation: put them before the ':', e.g. encrypt,decrypt:alias=app/*")
        }
        let selector: KeySelector
        if selectorText == "*" {
            selector = .any
        } else if selectorText.hasPrefix("key=") {
            do { selector = .key(try KeyID(string: String(selectorText.dropFirst(4)))) } catch { throw .crypto(error) }
        } else if selectorText.hasPrefix("alias=") {
            selector = .alias(try KeySelector.aliasPattern(String(selectorText.dropFirst(6))))
        } else if selectorText.hasPrefix("tag="), let equals = selectorText.dropFirst(4).firstIndex(of: "=") {
            let name = String(selectorText[selectorText.index(selectorText.startIndex, offsetBy: 4)..<equals])
            let value = String(selectorText[selectorText.index(after: equals)...])
            try KeyService.validTag(name, value)
            selector = .tag(name: name, value: value)
        } else {
            throw .invalidArgument("selector '\(selectorText)' is not *, key=UUID, alias=PATTERN or tag=NAME=VALUE")
        }
        return AccessRule(operations: operations, keys: selector)
    }
}
