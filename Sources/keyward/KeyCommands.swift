import ArgumentParser
import Foundation
import Keyward
import KeywardClient
import KeywardCrypto

/// `keyward key ...`: create, list, describe and manage keys.
struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create, list, describe, rotate and manage keys.",
        subcommands: [Create.self, List.self, Describe.self, Update.self, Rotate.self, Enable.self, Disable.self,
                      ScheduleDestruction.self, CancelDestruction.self, DestroyVersions.self, MarkCompromised.self, ImportToken.self, Import.self, Export.self, Alias.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key (`keyward specs` lists the specs).")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Key spec.") var spec: String = KeySpec.defaultSymmetric.rawValue
        @Option(help: "Alias (repeatable).") var alias: [String] = []
        @Option(help: "Tag name=value (repeatable).") var tag: [String] = []
        @Option(help: "Description.") var description: String = ""
        @Flag(help: "Allow the material to be exported later (never for signing keys).") var exportable = false
        @Flag(help: "Refuse every encryption, decryption and data key without an encryption context (symmetric encryption keys).") var contextRequired = false
        @Flag(inversion: .prefixedNo, help: "Include the key in backups (default: yes, except signing keys).") var backup: Bool?
        @Option(help: "Rotate automatically every N days.") var rotationDays: Int?
        @Flag(help: "Create the key pre-active (enable it later).") var preActive = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                var tags: [String: String] = [:]
                for pair in tag {
                    let (name, value) = try KeyCommand.tag(pair)
                    tags[name] = value
                }
                if try await storeOptions.remote({ client in
                    let created = try await client.createKey(spec: spec, aliases: alias, tags: tags, description: description, exportable: exportable,
                                                             rotationPeriodDays: rotationDays, backupAllowed: backup, preActive: preActive,
                                                             contextRequired: contextRequired)
                    try KeyCommand.show(created, json: json)
                }) { return }
                let service = try await storeOptions.open()
                let request = CreateKeyRequest(
                    spec: try KeySpec(named: spec), aliases: alias, tags: tags, description: description, exportable: exportable,
                    backupAllowed: backup, rotationPeriodDays: rotationDays, initialState: preActive ? .preActive : .active,
                    contextRequired: contextRequired)
                let created = try await service.createKey(request, actor: storeOptions.actorName)
                try KeyCommand.show(created, json: json)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys, a page at a time.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only keys in this state.") var state: String?
        @Option(help: "Only keys with this tag name=value.") var tag: String?
        @Option(help: "Only the key with this alias.") var alias: String?
        @Option(help: "Keys per page (1 to 1000).") var limit: Int = 100
        @Option(help: "Continue after this key id (from the previous page).") var after: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    let tagPair = try tag.map { pair -> (name: String, value: String) in try KeyCommand.tag(pair) }
                    let page = try await client.listKeys(state: self.state, tag: tagPair, alias: alias, after: after, limit: limit)
                    if json {
                        try JSONOutput.print(RemoteListOutput(keys: page.keys.map(KeyView.init), next: page.nextCursor))
                    } else {
                        Self.printLines(page.keys.map(KeyView.init), next: page.nextCursor)
                    }
                }) { return }
                let service = try await storeOptions.open()
                let state = try self.state.map { name -> KeyState in
                    guard let state = KeyState(rawValue: name) else {
                        throw CLIError(.failure, "unknown state \(name); one of \(KeyState.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return state
                }
                let tagPair = try tag.map { pair -> (key: String, value: String) in try KeyCommand.tag(pair) }
                let page = try await service.listKeys(state: state, tag: tagPair, alias: alias, after: try after.map { try KeyID(string: $0) }, limit: limit, actor: storeOptions.actorName)
                if json {
                    try JSONOutput.print(ListOutput(keys: page.keys, next: page.nextCursor?.description))
                } else {
                    Self.printLines(page.keys.map(KeyView.init), next: page.nextCursor?.description)
                }
            }
        }

        struct ListOutput: Encodable {
            let keys: [KeyDescription]
            let next: String?
        }

        /// One line per key, then where the next page starts.
        static func printLines(_ keys: [KeyView], next: String?) {
            for key in keys { print(key.line) }
            if let next { print("more: --after \(next)") }
        }

        struct RemoteListOutput: Encodable {
            let keys: [KeyView]
            let next: String?
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a key's metadata.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in try KeyCommand.show(try await client.describeKey(key), json: json) }) { return }
                let service = try await storeOptions.open()
                try KeyCommand.show(try await service.describe(key: key, actor: storeOptions.actorName), json: json)
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a key's description, tags, rotation period or minimum decryption version.",
            discussion: "--set-tag and --remove-tag change only the tags they name, applied to the key's tags as the update reads them: the key's other tags, and tags another caller sets meanwhile, are kept.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        @Option(help: "The new description.") var description: String?
        @Option(name: .customLong("set-tag"), help: "Tag name=value to add or change (repeatable).") var setTag: [String] = []
        @Option(name: .customLong("remove-tag"), help: "Tag name to remove (repeatable).") var removeTag: [String] = []
        @Option(help: "Rotate automatically every N days; 0 turns automatic rotation off.") var rotationDays: Int?
        @Option(help: "The oldest version that may still decrypt.") var minDecryptionVersion: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await guarded {
                guard description != nil || !setTag.isEmpty || !removeTag.isEmpty || rotationDays != nil || minDecryptionVersion != nil else {
                    throw CLIError(.usage, "nothing to change: give --description, --set-tag, --remove-tag, --rotation-days or --min-decryption-version")
                }
                var set: [String: String] = [:]
                for pair in setTag {
                    let (name, value) = try KeyCommand.tag(pair)
                    guard set.updateValue(value, forKey: name) == nil else { throw CLIError(.usage, "tag '\(name)' is set twice") }
                }
                if try await storeOptions.remote({ client in
                    let updated = try await client.updateKey(key, description: description, setTags: set, removeTags: removeTag,
                                                             rotationPeriodDays: rotationDays, minDecryptionVersion: minDecryptionVersion)
                    try KeyCommand.show(updated, json: json)
                }) { return }
                var minimum: UInt32? = nil
                if let minDecryptionVersion {
                    guard let version = UInt32(exactly: minDecryptionVersion), version >= 1 else {
                        throw CLIError(.usage, "--min-decryption-version is 1 or more, not \(minDecryptionVersion)")
                    }
                    minimum = version
                }
                let changes = set.isEmpty && removeTag.isEmpty ? nil : TagChanges(set: set, remove: Set(removeTag))
                let updated = try await storeOptions.open().update(
                    key: key, description: description, tagChanges: changes,
                    rotationPeriodDays: rotationDays.map { $0 == 0 ? Int?.none : Int?.some($0) }, minDecryptionVersion: minimum,
                    actor: storeOptions.actorName)
                try KeyCommand.show(updated, json: json)
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a new version that encrypts and signs from now on.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    let rotated = try await client.rotateKey(key)
                    print("key \(rotated.id) is now at version \(rotated.currentVersion)")
                }) { return }
                let described = try await storeOptions.open().rotate(key: key, actor: storeOptions.actorName)
                print("key \(described.metadata.id) is now at version \(described.metadata.currentVersion)")
            }
        }
    }

    struct DestroyVersions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "destroy-versions",
            abstract: "Destroy the material of every version below --below: their ciphertexts stop decrypting, for good.",
            discussion: "Raises the key's minimum decryption version to --below first if it is lower. Newer versions are untouched.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        @Option(help: "The oldest version to keep.") var below: UInt32
        func run() async throws {
            try await guarded {
                let service = try await storeOptions.open()
                let actor = storeOptions.actorName
                let current = try await service.describe(key: key, actor: actor).metadata
                if current.minDecryptionVersion < below, below <= current.currentVersion {
                    _ = try await service.update(key: key, minDecryptionVersion: below, actor: actor)
                }
                let described = try await service.destroyVersions(key: key, below: below, actor: actor)
                print("key \(described.metadata.id): versions below \(described.metadata.minAvailableVersion ?? 1) destroyed; \(described.metadata.minAvailableVersion ?? 1) to \(described.metadata.currentVersion) remain")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Activate a pre-active or disabled key.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        func run() async throws { try await KeyCommand.transition(storeOptions, key, .enable) }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a key: no use until enabled again.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        func run() async throws { try await KeyCommand.transition(storeOptions, key, .disable) }
    }

    struct ScheduleDestruction: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Destroy a key after a waiting period (7 to 30 days).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        @Option(help: "Waiting period in days.") var days: Int = 30
        func run() async throws { try await KeyCommand.transition(storeOptions, key, .scheduleDestruction, days: days) }
    }

    struct CancelDestruction: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a scheduled destruction (the key becomes disabled).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        func run() async throws { try await KeyCommand.transition(storeOptions, key, .cancelDestruction) }
    }

    struct MarkCompromised: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a key compromised: it may only decrypt and verify.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Key id or alias.") var key: String
        func run() async throws { try await KeyCommand.transition(storeOptions, key, .markCompromised) }
    }

    struct ImportToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-token",
            abstract: "Issue an RSA-3072 wrapping key for importing key material (prints its id and PEM public key).")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Hours until the wrapping key expires (1 to 24).") var hours: Int = 24
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await guarded {
                let token = try await storeOptions.open().createImportWrappingKey(hours: hours, actor: storeOptions.actorName)
                let expiry = ISO8601DateFormatter().string(from: token.expiresAt)
                if json {
                    try JSONOutput.print(["wrappingKeyId": token.keyID.description, "publicKeyPem": token.publicKey.pem ?? "", "expiresAt": expiry])
                } else {
                    print("wrapping key \(token.keyID), expires \(expiry)")
                    print(token.publicKey.pem ?? "", terminator: "")
                    print("wrap: RSA-OAEP-SHA256(this key, 32-byte AES key) || AES-KWP(AES key, material); then `keyward key import --wrapping-key \(token.keyID) --spec SPEC --in FILE`")
                }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key from material wrapped to a wrapping key from `key import-token`.")
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var io: DataIO
        @Option(help: "The wrapping key id from `key import-token`.") var wrappingKey: String
        @Option(help: "Key spec of the material.") var spec: String
        @Option(help: "Alias (repeatable).") var alias: [String] = []
        @Option(help: "Description.") var description: String = ""
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await guarded {
                let service = try await storeOptions.open()
                let request = CreateKeyRequest(spec: try KeySpec(named: spec), aliases: alias, description: description)
                let imported = try await service.importWrappedKey(try io.read(), wrappingKey: wrappingKey, request: request, actor: storeOptions.actorName)
                try KeyCommand.show(imported, json: json)
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export the material of a key created --exportable (never signing keys).")
        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var io: DataIO
        @Argument(help: "Key id or alias.") var key: String
        @Option(help: "Version (default: the newest).") var version: UInt32?
        func run() async throws {
            try await guarded {
                let exported = try await storeOptions.open().exportKey(key: key, version: version, actor: storeOptions.actorName)
                try io.write(exported.material.withSecretBytes(InsecureSecretAccess.token) { Array($0) })
            }
        }
    }

    struct Alias: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point an alias at a key, or remove it with --delete.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Alias name.") var name: String
        @Argument(help: "Key id or alias to point at.") var key: String?
        @Flag(help: "Remove the alias.") var delete = false
        func run() async throws {
            try await guarded {
                // Said once done: pointing an alias that exists at another key moves it, which
                // changes what every caller using that name encrypts or signs with.
                let done = delete ? "alias \(name) removed" : "alias \(name) now names \(key ?? "")"
                if try await storeOptions.remote({ client in
                    if delete {
                        try await client.deleteAlias(name)
                    } else {
                        guard let key else { throw CLIError(.failure, "give the key to point \(name) at") }
                        try await client.setAlias(name, key: key)
                    }
                }) { print(done); return }
                let service = try await storeOptions.open()
                if delete {
                    try await service.deleteAlias(name, actor: storeOptions.actorName)
                } else {
                    guard let key else { throw CLIError(.failure, "give the key to point \(name) at") }
                    try await service.setAlias(name, key: key, actor: storeOptions.actorName)
                }
                print(done)
            }
        }
    }

    static func transition(_ options: StoreOptions, _ key: String, _ operation: ServiceOperation, days: Int? = nil) async throws {
        try await runGuarded {
            let view: KeyView
            var remote: KeyView?
            if try await options.remote({ client in
                remote = KeyView(operation == .scheduleDestruction ? try await client.scheduleDestruction(key, waitingDays: days ?? 30)
                                                                    : try await client.transition(key, operation.rawValue))
            }), let remote {
                view = remote
            } else {
                view = KeyView(try await options.open().transition(key: key, operation, waitingDays: days, actor: options.actorName))
            }
            var line = "key \(view.id) is \(view.state)"
            if let date = view.destructionDate { line += ", destruction on \(ISO8601DateFormatter().string(from: date))" }
            print(line)
        }
    }

    /// A `name=value` tag argument, split.
    static func tag(_ pair: String) throws -> (String, String) {
        guard let equals = pair.firstIndex(of: "=") else { throw CLIError(.failure, "tag '\(pair)' is not name=value") }
        return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
    }

    static func show(_ key: KeyDescription, json: Bool) throws {
        if json { return try JSONOutput.print(key) }
        print(KeyView(key).text)
    }

    /// A key as a server describes it: the same text as a local key's; as JSON, the same
    /// `metadata` and `aliases` members, with the fields the API gives.
    static func show(_ key: KeyInfo, json: Bool) throws {
        if json { return try JSONOutput.print(KeyView(key)) }
        print(KeyView(key).text)
    }
}

/// What the CLI prints of a key, from a local store (`KeyDescription`) or from a server
/// (`KeyInfo`), so both print alike. As JSON: `metadata` (named as `KeyMetadata` names them)
/// and `aliases`.
struct KeyView: Encodable {
    struct Metadata: Encodable {
        var id: String
        var spec: String
        var state: String
        var createdAt: Date?
        var description: String
        var tags: [String: String]
        var exportable: Bool
        var backupAllowed: Bool?
        var rotationPeriodDays: Int?
        var currentVersion: Int
        var minDecryptionVersion: Int
        var minAvailableVersion: Int?
        var destructionDate: Date?
        var origin: String
        var contextRequired: Bool?
    }

    var metadata: Metadata
    var aliases: [String]
    /// The spec's purpose (not encoded: the spec names it).
    let purpose: String

    private enum CodingKeys: String, CodingKey { case metadata, aliases }

    var id: String { metadata.id }
    var state: String { metadata.state }
    var destructionDate: Date? { metadata.destructionDate }

    init(_ key: KeyDescription) {
        let m = key.metadata
        metadata = Metadata(id: m.id.description, spec: m.spec.rawValue, state: m.state.rawValue, createdAt: m.createdAt, description: m.description,
                            tags: m.tags, exportable: m.exportable, backupAllowed: m.backupAllowed, rotationPeriodDays: m.rotationPeriodDays,
                            currentVersion: Int(m.currentVersion), minDecryptionVersion: Int(m.minDecryptionVersion),
                            minAvailableVersion: m.minAvailableVersion.map(Int.init), destructionDate: m.destructionDate, origin: m.origin,
                            contextRequired: m.contextRequired)
        aliases = key.aliases
        purpose = m.spec.purpose.rawValue
    }

    init(_ key: KeyInfo) {
        metadata = Metadata(id: key.id, spec: key.spec, state: key.state, createdAt: key.createdAt, description: key.description, tags: key.tags,
                            exportable: key.exportable, backupAllowed: key.backupAllowed, rotationPeriodDays: key.rotationPeriodDays,
                            currentVersion: key.currentVersion, minDecryptionVersion: key.minDecryptionVersion,
                            minAvailableVersion: key.minAvailableVersion, destructionDate: key.destructionDate, origin: key.origin,
                            contextRequired: key.contextRequired)
        aliases = key.aliases
        purpose = key.purpose
    }

    /// One line of `key list`.
    var line: String {
        "\(metadata.id)  \(metadata.spec.padding(toLength: 22, withPad: " ", startingAt: 0)) \(metadata.state.padding(toLength: 20, withPad: " ", startingAt: 0)) v\(metadata.currentVersion)  \(PrintableText.escaped(aliases.joined(separator: ",")))"
    }

    /// The lines of `key describe`.
    var text: String {
        let m = metadata
        return """
            id:              \(m.id)
            spec:            \(m.spec) (\(purpose))
            state:           \(m.state)
            version:         \(m.currentVersion) (decrypts down to \(m.minDecryptionVersion))
            aliases:         \(PrintableText.escaped(aliases.joined(separator: ", ")))
            tags:            \(PrintableText.escaped(m.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
            created:         \(m.createdAt.map { ISO8601DateFormatter().string(from: $0) } ?? "unknown")
            exportable:      \(m.exportable)
            context:         \(m.contextRequired == true ? "required" : "optional")
            backup allowed:  \(m.backupAllowed.map { String($0) } ?? "unknown")
            rotation:        \(m.rotationPeriodDays.map { "every \($0) days" } ?? "manual")
            """ + (m.destructionDate.map { "\ndestruction on:  \(ISO8601DateFormatter().string(from: $0))" } ?? "")
            + (m.description.isEmpty ? "" : "\ndescription:     \(PrintableText.escaped(m.description))")
    }
}
