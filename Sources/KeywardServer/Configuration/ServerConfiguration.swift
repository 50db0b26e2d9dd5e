import Foundation
import Keyward
import Logging
import Yams

/// Everything `keyward serve` needs besides the store's secrets: where to listen, TLS, limits,
/// the key cache and logging. Read from a YAML file (`--config`), then overridden by
/// `KEYWARD_*` environment variables, then by command-line flags.
///
/// Unknown keys in the file are refused (a misspelt `clientCA` must not silently turn mTLS off).
public struct ServerConfiguration: Sendable, Equatable {
    /// Address to listen on; loopback by default.
    public var host = "127.0.0.1"
    /// Port to listen on.
    public var port = 8443
    /// TLS settings; required unless `insecureHTTP`.
    public var tls: TLSSettings?
    /// Serve plain HTTP (loopback benchmarks only); never the default.
    public var insecureHTTP = false
    /// Largest request body in bytes.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Requests per second per principal (0: unlimited) and the burst above it.
    public var rateLimit = RateLimitSettings()
    /// Most keys held unwrapped at once, and for how long.
    public var cache = CacheSettings()
    /// Seconds a verified token is remembered (revocation elsewhere takes this long to apply).
    public var tokenCacheSeconds = 5
    /// swift-log level: trace, debug, info (one line per request), notice, warning, error.
    public var logLevel = "notice"
    /// Seconds in-flight requests get to finish after SIGTERM.
    public var shutdownGraceSeconds = 10
    /// Milliseconds within which an audit batch is fsync'ed; 0 fsyncs every batch before its
    /// requests are answered. Either way an entry is written before its request is answered
    /// (fail-closed) and survives a crash of the process (decision 0010).
    public var auditSyncMilliseconds = 100
    /// The SQLite store's path (also `KEYWARD_STORE`).
    public var store: String?
    /// The key file root of trust's path (also `KEYWARD_KEY_FILE`).
    public var keyFile: String?

    /// The TLS settings.
    public struct TLSSettings: Sendable, Equatable {
        /// PEM certificate chain, leaf first.
        public var certificate: String
        /// PEM private key.
        public var privateKey: String
        /// PEM CA bundle for client certificates: set it to require mTLS.
        public var clientCA: String?
        /// Client certificate subject (RFC 4514, e.g. `CN=billing,O=Example`) to policy rules
        /// in the CLI form `OPERATIONS:SELECTOR`.
        public var clientPolicies: [String: [String]] = [:]

        /// TLS from these files.
        public init(certificate: String, privateKey: String, clientCA: String? = nil, clientPolicies: [String: [String]] = [:]) {
            self.certificate = certificate
            self.privateKey = privateKey
            self.clientCA = clientCA
            self.clientPolicies = clientPolicies
        }
    }

    /// Rate limits per principal.
    public struct RateLimitSettings: Sendable, Equatable {
        /// Average requests per second; 0 turns limiting off.
        public var requestsPerSecond: Double = 20_000
        /// Requests allowed at once above the average.
        public var burst: Double = 40_000

        /// Limits; the defaults suit a single busy application.
        public init(requestsPerSecond: Double = 20_000, burst: Double = 40_000) {
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
        }
    }

    /// The unwrapped-key cache.
    public struct CacheSettings: Sendable, Equatable {
        /// Most keys held unwrapped.
        public var capacity = 10_000
        /// Seconds before a cached key's row is read and checked again.
        public var ttlSeconds = 300

        /// Cache bounds.
        public init(capacity: Int = 10_000, ttlSeconds: Int = 300) {
            self.capacity = capacity
            self.ttlSeconds = ttlSeconds
        }
    }

    /// The defaults: loopback, port 8443, TLS required.
    public init() {}

    /// The log level as swift-log's type.
    public var loggerLevel: Logger.Level {
        get throws(KeywardError) {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw .invalidArgument("logLevel '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            return level
        }
    }

    /// Checks the values' ranges.
    public func validate() throws(KeywardError) {
        guard (0...65535).contains(port) else { throw .invalidArgument("port \(port) is not 0 to 65535") }
        guard (1024...(64 * 1024 * 1024)).contains(maxBodyBytes) else { throw .invalidArgument("maxBodyBytes \(maxBodyBytes); choose 1 KiB to 64 MiB") }
        guard rateLimit.requestsPerSecond >= 0, rateLimit.burst >= 1 || rateLimit.requestsPerSecond == 0 else {
            throw .invalidArgument("rateLimit needs requestsPerSecond >= 0 and burst >= 1")
        }
        guard (1...10_000_000).contains(cache.capacity), (1...86_400).contains(cache.ttlSeconds) else {
            throw .invalidArgument("cache.capacity 1 to 10,000,000 and cache.ttlSeconds 1 to 86,400")
        }
        guard (0...300).contains(tokenCacheSeconds) else { throw .invalidArgument("tokenCacheSeconds is 0 to 300") }
        guard (0...600).contains(shutdownGraceSeconds) else { throw .invalidArgument("shutdownGraceSeconds is 0 to 600") }
        guard (0...10_000).contains(auditSyncMilliseconds) else { throw .invalidArgument("auditSyncMilliseconds is 0 to 10,000") }
        _ = try loggerLevel
        if tls == nil && !insecureHTTP {
            throw .invalidArgument("no TLS certificate configured; set tls.certificate and tls.privateKey, use --dev, or pass --insecure-http for a loopback benchmark")
        }
        if let tls {
            for (subject, rules) in tls.clientPolicies {
                for rule in rules {
                    do { _ = try AccessPolicy.parseRule(rule) } catch {
                        throw .invalidArgument("tls.clientPolicies['\(subject)']: \(error.description)")
                    }
                }
            }
            if !tls.clientPolicies.isEmpty && tls.clientCA == nil {
                throw .invalidArgument("tls.clientPolicies needs tls.clientCA (the CA that issues client certificates)")
            }
        }
    }

    /// The mTLS subjects' policies.
    public func certificatePolicies() throws(KeywardError) -> [String: AccessPolicy] {
        var policies: [String: AccessPolicy] = [:]
        for (subject, rules) in tls?.clientPolicies ?? [:] {
            var parsed: [AccessRule] = []
            for rule in rules { parsed.append(try AccessPolicy.parseRule(rule)) }
            policies[subject] = AccessPolicy(rules: parsed)
        }
        return policies
    }

    // MARK: - Loading

    /// Reads a YAML configuration file.
    public static func load(path: String) throws(KeywardError) -> ServerConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .invalidArgument("cannot read configuration file \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text, source: path)
    }

    /// Parses YAML configuration text.
    public static func parse(yaml text: String, source: String = "configuration") throws(KeywardError) -> ServerConfiguration {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch {
            throw .invalidArgument("\(source) is not valid YAML: \(error)")
        }
        var configuration = ServerConfiguration()
        guard let node else { return configuration }
        guard let root = node as? [String: Any] else { throw .invalidArgument("\(source): the top level must be a mapping") }
        var reader = Reader(source: source)
        try reader.apply(root, to: &configuration)
        return configuration
    }

    /// Applies `KEYWARD_*` environment overrides.
    public mutating func applyEnvironment(_ environment: [String: String]) throws(KeywardError) {
        var reader = Reader(source: "environment")
        if let value = environment["KEYWARD_HOST"] { host = value }
        if let value = environment["KEYWARD_PORT"] { port = try reader.int(value, "KEYWARD_PORT") }
        if let value = environment["KEYWARD_STORE"] { store = value }
        if let value = environment["KEYWARD_KEY_FILE"] { keyFile = value }
        if let value = environment["KEYWARD_LOG_LEVEL"] { logLevel = value }
        if let value = environment["KEYWARD_AUDIT_SYNC_MS"] { auditSyncMilliseconds = try reader.int(value, "KEYWARD_AUDIT_SYNC_MS") }
        if let value = environment["KEYWARD_MAX_BODY_BYTES"] { maxBodyBytes = try reader.int(value, "KEYWARD_MAX_BODY_BYTES") }
        if let value = environment["KEYWARD_RATE_LIMIT"] { rateLimit.requestsPerSecond = Double(try reader.int(value, "KEYWARD_RATE_LIMIT")) }
        if let value = environment["KEYWARD_RATE_BURST"] { rateLimit.burst = Double(try reader.int(value, "KEYWARD_RATE_BURST")) }
        if let value = environment["KEYWARD_CACHE_CAPACITY"] { cache.capacity = try reader.int(value, "KEYWARD_CACHE_CAPACITY") }
        if let value = environment["KEYWARD_CACHE_TTL"] { cache.ttlSeconds = try reader.int(value, "KEYWARD_CACHE_TTL") }
        if let certificate = environment["KEYWARD_TLS_CERTIFICATE"], let key = environment["KEYWARD_TLS_PRIVATE_KEY"] {
            tls = TLSSettings(certificate: certificate, privateKey: key, clientCA: tls?.clientCA, clientPolicies: tls?.clientPolicies ?? [:])
        }
        if let value = environment["KEYWARD_TLS_CLIENT_CA"] { tls?.clientCA = value }
    }

    private struct Reader {
        let source: String

        mutating func apply(_ root: [String: Any], to configuration: inout ServerConfiguration) throws(KeywardError) {
            let known: Set<String> = ["host", "port", "tls", "insecureHTTP", "maxBodyBytes", "rateLimit", "cache", "tokenCacheSeconds",
                                      "logLevel", "shutdownGraceSeconds", "store", "keyFile", "auditSyncMilliseconds"]
            try unknown(root, known, "")
            if let value = root["host"] { configuration.host = try string(value, "host") }
            if let value = root["port"] { configuration.port = try int(value, "port") }
            if let value = root["insecureHTTP"] { configuration.insecureHTTP = try bool(value, "insecureHTTP") }
            if let value = root["maxBodyBytes"] { configuration.maxBodyBytes = try int(value, "maxBodyBytes") }
            if let value = root["tokenCacheSeconds"] { configuration.tokenCacheSeconds = try int(value, "tokenCacheSeconds") }
            if let value = root["logLevel"] { configuration.logLevel = try string(value, "logLevel") }
            if let value = root["shutdownGraceSeconds"] { configuration.shutdownGraceSeconds = try int(value, "shutdownGraceSeconds") }
            if let value = root["auditSyncMilliseconds"] { configuration.auditSyncMilliseconds = try int(value, "auditSyncMilliseconds") }
            if let value = root["store"] { configuration.store = try string(value, "store") }
            if let value = root["keyFile"] { configuration.keyFile = try string(value, "keyFile") }
            if let value = root["rateLimit"] {
                let map = try mapping(value, "rateLimit")
                try unknown(map, ["requestsPerSecond", "burst"], "rateLimit.")
                if let rate = map["requestsPerSecond"] { configuration.rateLimit.requestsPerSecond = Double(try int(rate, "rateLimit.requestsPerSecond")) }
                if let burst = map["burst"] { configuration.rateLimit.burst = Double(try int(burst, "rateLimit.burst")) }
            }
            if let value = root["cache"] {
                let map = try mapping(value, "cache")
                try unknown(map, ["capacity", "ttlSeconds"], "cache.")
                if let capacity = map["capacity"] { configuration.cache.capacity = try int(capacity, "cache.capacity") }
                if let ttl = map["ttlSeconds"] { configuration.cache.ttlSeconds = try int(ttl, "cache.ttlSeconds") }
            }
            if let value = root["tls"] {
                let map = try mapping(value, "tls")
                try unknown(map, ["certificate", "privateKey", "clientCA", "clientPolicies"], "tls.")
                guard let certificate = map["certificate"], let key = map["privateKey"] else {
                    throw .invalidArgument("\(source): tls needs both certificate and privateKey")
                }
                var tls = TLSSettings(certificate: try string(certificate, "tls.certificate"), privateKey: try string(key, "tls.privateKey"))
                if let ca = map["clientCA"] { tls.clientCA = try string(ca, "tls.clientCA") }
                if let policies = map["clientPolicies"] {
                    for (subject, rules) in try mapping(policies, "tls.clientPolicies") {
                        guard let list = rules as? [Any] else { throw .invalidArgument("\(source): tls.clientPolicies['\(subject)'] must be a list of rules") }
                        var parsed: [String] = []
                        for rule in list { parsed.append(try string(rule, "tls.clientPolicies['\(subject)']")) }
                        tls.clientPolicies[subject] = parsed
                    }
                }
                configuration.tls = tls
            }
        }

        func unknown(_ map: [String: Any], _ known: Set<String>, _ prefix: String) throws(KeywardError) {
            if let extra = map.keys.sorted().first(where: { !known.contains($0) }) {
                throw .invalidArgument("\(source): unknown setting '\(prefix)\(extra)'; known: \(known.sorted().map { prefix + $0 }.joined(separator: ", "))")
            }
        }

        func mapping(_ value: Any, _ name: String) throws(KeywardError) -> [String: Any] {
            guard let map = value as? [String: Any] else { throw .invalidArgument("\(source): \(name) must be a mapping") }
            return map
        }

        func string(_ value: Any, _ name: String) throws(KeywardError) -> String {
            guard let text = value as? String else { throw .invalidArgument("\(source): \(name) must be a string") }
            return text
        }

        func int(_ value: Any, _ name: String) throws(KeywardError) -> Int {
            if let number = value as? Int { return number }
            if let text = value as? String, let number = Int(text) { return number }
            throw .invalidArgument("\(source): \(name) must be an integer")
        }

        func bool(_ value: Any, _ name: String) throws(KeywardError) -> Bool {
            guard let flag = value as? Bool else { throw .invalidArgument("\(source): \(name) must be true or false") }
            return flag
        }
    }
}
