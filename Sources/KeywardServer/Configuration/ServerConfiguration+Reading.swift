import Configuration
import Foundation
import Keyward
import KeywardCrypto
import SystemPackage
import Yams

extension ServerConfiguration {
    /// Reads the configuration through apple/swift-configuration, highest priority first:
    /// `flags` (the command line), then `KEYWARD_*` variables in `environment`, then the YAML
    /// `file`, then the defaults.
    ///
    /// Every setting is declared once, in `settings`: its dotted key names it in the file
    /// (`rateLimit.burst`), and the same key in upper snake case after `KEYWARD_` names its
    /// environment variable (`KEYWARD_RATE_LIMIT_BURST`). A key in the file that no setting
    /// declares, and a value of the wrong type anywhere, is refused with the setting's name:
    /// a misspelt `clientCA` must not silently turn mTLS off.
    public static func read(file: String? = nil, environment: [String: String] = [:], flags: [String: String] = [:]) async throws(KeywardError) -> ServerConfiguration {
        let declared = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        var providers: [any ConfigProvider] = []
        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, text) in flags {
            guard let setting = declared[key] else { throw .invalidArgument("unknown setting '\(key)'") }
            flagValues[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(try setting.kind.content(text, key: key), isSecret: false)
        }
        providers.append(InMemoryProvider(name: "flags", values: flagValues))
        providers.append(KeyMappingProvider(upstream: EnvironmentVariablesProvider(environmentVariables: environment, arraySeparator: ";")) { key in
            AbsoluteConfigKey(["keyward"] + key.components, context: key.context)
        })
        if let file {
            try checkFileKeys(file, declared: Set(declared.keys))
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch {
                throw .invalidArgument("configuration file \(file): \(error)")
            }
        }
        let reader = ConfigReader(providers: providers)
        var configuration = ServerConfiguration()
        for setting in settings {
            if let value = try setting.kind.read(reader, key: setting.key) { setting.assign(value, &configuration) }
        }
        if let tls = configuration.tls, tls.certificate.isEmpty || tls.privateKey.isEmpty {
            throw .invalidArgument("tls needs both certificate and privateKey (KEYWARD_TLS_CERTIFICATE and KEYWARD_TLS_PRIVATE_KEY, or --tls-certificate and --tls-private-key)")
        }
        return configuration
    }

    /// One setting: its dotted key, its type, and where its value goes.
    struct Setting {
        /// The setting's key in the file; its environment variable is derived from it.
        let key: String
        let kind: Kind
        let assign: (Value, inout ServerConfiguration) -> Void

        /// The type of a setting's value.
        enum Kind {
            case string, int, double, bool, list
        }

        /// A value read for a setting.
        enum Value {
            case string(String), int(Int), double(Double), bool(Bool), list([String])
        }

        static func string(_ key: String, _ assign: @escaping (String, inout ServerConfiguration) -> Void) -> Setting {
            Setting(key: key, kind: .string) { value, configuration in if case .string(let text) = value { assign(text, &configuration) } }
        }

        static func int(_ key: String, _ path: WritableKeyPath<ServerConfiguration, Int>) -> Setting {
            Setting(key: key, kind: .int) { value, configuration in if case .int(let number) = value { configuration[keyPath: path] = number } }
        }

        static func double(_ key: String, _ path: WritableKeyPath<ServerConfiguration, Double>) -> Setting {
            Setting(key: key, kind: .double) { value, configuration in if case .double(let number) = value { configuration[keyPath: path] = number } }
        }

        static func bool(_ key: String, _ path: WritableKeyPath<ServerConfiguration, Bool>) -> Setting {
            Setting(key: key, kind: .bool) { value, configuration in if case .bool(let flag) = value { configuration[keyPath: path] = flag } }
        }

        static func list(_ key: String, _ assign: @escaping ([String], inout ServerConfiguration) -> Void) -> Setting {
            Setting(key: key, kind: .list) { value, configuration in if case .list(let items) = value { assign(items, &configuration) } }
        }
    }

    /// Every setting `keyward serve` reads: the one place a setting is named.
    static var settings: [Setting] {
        [
            .string("host") { $1.host = $0 },
            .int("port", \.port),
            .bool("insecureHTTP", \.insecureHTTP),
            .bool("insecureHTTPBeyondLoopback", \.insecureHTTPBeyondLoopback),
            .int("maxBodyBytes", \.maxBodyBytes),
            .int("limits.maxConnections", \.limits.maxConnections),
            .int("limits.idleTimeoutSeconds", \.limits.idleTimeoutSeconds),
            .int("limits.requestReadTimeoutSeconds", \.limits.requestReadTimeoutSeconds),
            .int("limits.tlsHandshakeTimeoutSeconds", \.limits.tlsHandshakeTimeoutSeconds),
            .int("limits.maxHeaderBytes", \.limits.maxHeaderBytes),
            .double("rateLimit.requestsPerSecond", \.rateLimit.requestsPerSecond),
            .double("rateLimit.burst", \.rateLimit.burst),
            .double("failedLogins.perSecond", \.failedLogins.perSecond),
            .double("failedLogins.burst", \.failedLogins.burst),
            .int("failedLogins.peers", \.failedLogins.peers),
            .list("trustedProxies") { $1.trustedProxies = $0 },
            .string("aws.region") { $1.aws.region = $0 },
            .string("transit.mount") { $1.transitMount = $0 },
            .bool("console.enabled", \.console.enabled),
            .int("console.idleMinutes", \.console.idleMinutes),
            .int("console.sessionHours", \.console.sessionHours),
            .int("console.maxSessions", \.console.maxSessions),
            .string("aws.accountID") { $1.aws.accountID = $0 },
            .int("aws.clockSkewSeconds", \.aws.clockSkewSeconds),
            .list("backup.recipients") { $1.backup.recipients = $0 },
            .string("backup.identity") { $1.backup.identity = $0 },
            .list("backup.signers") { $1.backup.signers = $0 },
            .int("cache.capacity", \.cache.capacity),
            .int("cache.ttlSeconds", \.cache.ttlSeconds),
            .int("tokenCacheSeconds", \.tokenCacheSeconds),
            .string("logLevel") { $1.logLevel = $0 },
            .int("shutdownGraceSeconds", \.shutdownGraceSeconds),
            .int("maintenanceIntervalSeconds", \.maintenanceIntervalSeconds),
            .int("leaseSeconds", \.leaseSeconds),
            .int("verifyIntervalSeconds", \.verifyIntervalSeconds),
            .int("fullVerifyIntervalSeconds", \.fullVerifyIntervalSeconds),
            .int("auditSyncMilliseconds", \.auditSyncMilliseconds),
            .string("audit.anchor") { $1.auditAnchor = $0 },
            .int("audit.anchorIntervalSeconds", \.auditAnchorIntervalSeconds),
            .int("audit.retentionDays", \.auditRetentionDays),
            .string("audit.archiveDirectory") { $1.auditArchiveDirectory = $0 },
            .string("store") { $1.store = $0 },
            .string("keyFile") { $1.keyFile = $0 },
            .string("tls.certificate") { $1.tlsSettings.certificate = $0 },
            .string("tls.privateKey") { $1.tlsSettings.privateKey = $0 },
            .string("tls.clientCA") { $1.tlsSettings.clientCA = $0 },
            .string("tls.clientCRL") { $1.tlsSettings.clientCRL = $0 },
            .list("tls.clientPolicies") { entries, configuration in
                for entry in entries {
                    let parts = entry.components(separatedBy: "=>")
                    let subject = parts[0].trimmingCharacters(in: .whitespaces)
                    let rule = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
                    configuration.tlsSettings.clientPolicies[subject, default: []].append(rule)
                }
            },
        ]
    }

    /// The TLS settings, created empty on first write (`read` then requires both files).
    private var tlsSettings: TLSSettings {
        get { tls ?? TLSSettings(certificate: "", privateKey: "") }
        set { tls = newValue }
    }

    /// Refuses a file that is not a YAML mapping or that holds a key no setting declares.
    private static func checkFileKeys(_ file: String, declared: Set<String>) throws(KeywardError) {
        let text = try ProtectedFile.text(file, "the configuration file") { KeywardError.invalidArgument($0) }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw .invalidArgument("configuration file \(file) is not valid YAML: \(error)")
        }
        guard let node else { return }
        guard let root = node.mapping else { throw .invalidArgument("configuration file \(file): the top level must be a mapping") }
        var pending: [(String, Node.Mapping)] = [("", root)]
        while let (prefix, mapping) = pending.popLast() {
            for (name, value) in mapping {
                let key = prefix + (name.string ?? "?")
                if let nested = value.mapping, !declared.contains(key) {
                    pending.append((key + ".", nested))
                } else if !declared.contains(key) {
                    let siblings = declared.filter { $0.hasPrefix(prefix) }.sorted().joined(separator: ", ")
                    throw .invalidArgument("configuration file \(file): unknown setting '\(key)'; known: \(siblings)")
                }
            }
        }
    }
}

extension ServerConfiguration.Setting.Kind {
    /// Reads the setting; nil when no source sets it. A value of another type is refused.
    func read(_ reader: ConfigReader, key: String) throws(KeywardError) -> ServerConfiguration.Setting.Value? {
        let configKey = ConfigKey(key.split(separator: ".").map(String.init))
        let value: ServerConfiguration.Setting.Value?
        switch self {
        case .string: value = reader.string(forKey: configKey).map { .string($0) }
        case .int: value = reader.int(forKey: configKey).map { .int($0) }
        case .double: value = reader.double(forKey: configKey).map { .double($0) }
        case .bool: value = reader.bool(forKey: configKey).map { .bool($0) }
        case .list: value = reader.stringArray(forKey: configKey).map { .list($0) }
        }
        if let value { return value }
        // Absent, or present with another type: the readers above give nil for both.
        let present = self == .string ? reader.stringArray(forKey: configKey) != nil
            : reader.string(forKey: configKey) != nil || (self != .list && reader.stringArray(forKey: configKey) != nil)
        if present { throw .invalidArgument("\(key) must be \(description)") }
        return nil
    }

    /// A flag's text as this kind's content.
    func content(_ text: String, key: String) throws(KeywardError) -> ConfigContent {
        switch self {
        case .string: return .string(text)
        case .int:
            guard let number = Int(text) else { throw .invalidArgument("\(key) must be \(description)") }
            return .int(number)
        case .double:
            guard let number = Double(text) else { throw .invalidArgument("\(key) must be \(description)") }
            return .double(number)
        case .bool:
            guard let flag = Bool(text) else { throw .invalidArgument("\(key) must be \(description)") }
            return .bool(flag)
        case .list: return .stringArray(text.split(separator: ";").map(String.init))
        }
    }

    var description: String {
        switch self {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "true or false"
        case .list: "a list of strings"
        }
    }
}
