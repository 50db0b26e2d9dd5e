import Foundation
import Keyward
import KeywardCrypto
import Logging

/// Everything `keyward serve` needs besides the store's secrets: where to listen, TLS, limits,
/// the key cache and logging.
///
/// `ServerConfiguration.read(file:environment:flags:)` fills it from a YAML file (`--config`),
/// then `KEYWARD_*` environment variables, then command-line flags, each setting declared once
/// in `ServerConfiguration.settings` (see `ServerConfiguration+Reading.swift`).
public struct ServerConfiguration: Sendable, Equatable {
    /// Address to listen on; loopback by default.
    public var host = "127.0.0.1"
    /// Port to listen on.
    public var port = 8443
    /// TLS settings; required unless `insecureHTTP`.
    public var tls: TLSSettings?
    /// Serve plain HTTP (loopback benchmarks only); never the default.
    public var insecureHTTP = false
    /// Allow `insecureHTTP` on an address that is not loopback (a TLS-terminating proxy on
    /// another host); a second, explicit choice, never implied by the first.
    public var insecureHTTPBeyondLoopback = false
    /// Largest request body in bytes.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Connection limits and timeouts.
    public var limits = ConnectionLimits()
    /// Requests per second per principal (0: unlimited) and the burst above it.
    public var rateLimit = RateLimitSettings()
    /// Failed authentications allowed per peer address.
    public var failedLogins = FailedLoginSettings()
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the real peer. Empty (the
    /// default): the socket's peer is the peer, and the header is ignored.
    public var trustedProxies: [String] = []
    /// Most keys held unwrapped at once, and for how long.
    public var cache = CacheSettings()
    /// Seconds a verified token is remembered (revocation elsewhere takes this long to apply).
    public var tokenCacheSeconds = 5
    /// swift-log level: trace, debug, info (one line per request), notice, warning, error.
    public var logLevel = "notice"
    /// Seconds between maintenance sweeps (due destructions and rotations, with no request
    /// involved).
    public var maintenanceIntervalSeconds = 60
    /// What backups over the API may be sealed to and restored from.
    public var backup = BackupSettings()
    /// The AWS KMS front end.
    public var aws = AWSSettings()
    /// The mount path of the Vault Transit front end: it serves `/v1/<mount>/...`, and its keys
    /// are Keyward keys with aliases `<mount>/<name>`.
    public var transitMount = "transit"
    /// The path prefix Transit is served under: `/v1/<transitMount>/`.
    var transitPrefix: String { "/v1/\(transitMount)/" }
    /// The web console at `/ui/`.
    public var console = ConsoleSettings()
    /// Seconds the node running the cluster's background work (the maintenance sweep and
    /// periodic verification) holds its lease; another node takes the work over within this
    /// long of the holder's death. Renewed every third of it.
    public var leaseSeconds = 15
    /// Seconds between full verifications of the store (every record's MAC and revision, the
    /// audit chain) by the node holding the lease; 0 turns periodic verification off.
    public var verifyIntervalSeconds = 3600
    /// Seconds between verifications that walk the audit chain from its first entry; those in
    /// between walk only the entries appended since the last (every record is checked each
    /// time), and trust the entries already walked. 0: every verification walks the whole log.
    public var fullVerifyIntervalSeconds = 86_400
    /// Seconds in-flight requests get to finish after SIGTERM.
    public var shutdownGraceSeconds = 10
    /// Milliseconds within which an audit batch is fsync'ed; 0 fsyncs every batch before its
    /// requests are answered. Either way an entry is written before its request is answered
    /// (fail-closed) and survives a crash of the process (decision 0010).
    public var auditSyncMilliseconds = 100
    /// Where the server writes an audit anchor (`AuditAnchor`) whenever the log has grown, every
    /// `auditAnchorIntervalSeconds` and at shutdown: `file:PATH` (appended, 0600), `stdout`, or
    /// `syslog`. Nil (the default) writes none. Keep the anchors on another system; `keyward audit
    /// verify --anchors` catches deleted newest entries and a store rolled back to an older copy.
    public var auditAnchor: String?
    /// Seconds between audit anchors.
    public var auditAnchorIntervalSeconds = 60
    /// Days audit entries stay in the store; 0 (the default) keeps them all. Older entries are
    /// written to `auditArchiveDirectory` as signed segment files, then removed, by the node
    /// running the cluster's background work, hourly (`KeyService.pruneAudit`).
    public var auditRetentionDays = 0
    /// Where audit retention writes its segment files (required with `auditRetentionDays`). In a
    /// cluster, a directory every node can write, or the archive is spread over the nodes.
    public var auditArchiveDirectory: String?
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
        /// A client certificate's issuer and subject (RFC 4514, `ISSUER | SUBJECT`, e.g.
        /// `CN=Clients CA,O=Example | CN=billing,O=Example`) to policy rules in the CLI form
        /// `OPERATIONS:SELECTOR`. In a file or the environment each entry is written
        /// `ISSUER | SUBJECT => OPERATIONS:SELECTOR`. The certificate must also carry the
        /// clientAuth extended key usage.
        public var clientPolicies: [String: [String]] = [:]
        /// PEM (`X509 CRL` blocks) or DER revocation lists for client certificates, each signed by
        /// a CA of `clientCA`. A revoked certificate is refused, and so is every certificate of an
        /// issuer whose list is past its next update. Re-read when the file changes.
        public var clientCRL: String?

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
        /// Average requests per second, a batch's items each counting as one; 0 turns limiting
        /// off.
        public var requestsPerSecond: Double = 20_000
        /// Requests allowed at once above the average.
        public var burst: Double = 40_000

        /// Limits; the defaults suit a single busy application.
        public init(requestsPerSecond: Double = 20_000, burst: Double = 40_000) {
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
        }
    }

    /// What each connection is held to: how many at once, how long they may idle, how long a
    /// request or a TLS handshake may take to arrive, how large a request head may be.
    public struct ConnectionLimits: Sendable, Equatable {
        /// Connections open at once; more are closed as they are accepted.
        public var maxConnections = 4096
        /// Seconds a connection may wait for its next request.
        public var idleTimeoutSeconds = 60
        /// Seconds a request may take to arrive, first byte to last.
        public var requestReadTimeoutSeconds = 10
        /// Seconds a TLS handshake and protocol negotiation may take.
        public var tlsHandshakeTimeoutSeconds = 10
        /// Largest request head (request line and headers) in bytes.
        public var maxHeaderBytes = 16 * 1024

        /// The defaults.
        public init() {}
    }

    /// The failed-login limit per peer address: every authentication attempt is charged before
    /// the credential is looked up and refunded when it succeeds.
    public struct FailedLoginSettings: Sendable, Equatable {
        /// Failed attempts per second a peer regains.
        public var perSecond: Double = 1
        /// Failed attempts a peer may make at once.
        public var burst: Double = 20
        /// Peers tracked at once (the oldest is forgotten beyond this).
        public var peers = 100_000

        /// Limits: 20 failures at once, then one a second.
        public init(perSecond: Double = 1, burst: Double = 20, peers: Int = 100_000) {
            self.perSecond = perSecond
            self.burst = burst
            self.peers = peers
        }
    }

    /// The AWS KMS front end (`POST /`): the region and account its ARNs name, and how far a
    /// signed request's time may be from the server's.
    public struct AWSSettings: Sendable, Equatable {
        /// The region in ARNs and in the credential scope clients sign for.
        public var region = "us-east-1"
        /// The 12-digit account id in ARNs.
        public var accountID = "111122223333"
        /// Seconds a request's `X-Amz-Date` may differ from the server's clock (AWS allows 300).
        public var clockSkewSeconds = 300

        /// The allowed skew.
        var clockSkew: TimeInterval { TimeInterval(clockSkewSeconds) }

        /// AWS front end settings.
        public init(region: String = "us-east-1", accountID: String = "111122223333", clockSkewSeconds: Int = 300) {
            self.region = region
            self.accountID = accountID
            self.clockSkewSeconds = clockSkewSeconds
        }
    }

    /// The web console (`/ui/`): whether it is served, and how long a sign-in lasts.
    public struct ConsoleSettings: Sendable, Equatable {
        /// Serve the console; false: `/ui/` is not a route at all.
        public var enabled = true
        /// Minutes a session lasts without a request.
        public var idleMinutes = 15
        /// Hours a session lasts at most, however busy.
        public var sessionHours = 8
        /// Sessions held at once; the oldest goes when a sign-in would pass it.
        public var maxSessions = 1000

        /// Console settings.
        public init(enabled: Bool = true, idleMinutes: Int = 15, sessionHours: Int = 8, maxSessions: Int = 1000) {
            self.enabled = enabled
            self.idleMinutes = idleMinutes
            self.sessionHours = sessionHours
            self.maxSessions = maxSessions
        }
    }

    /// Backups over the API (`/v1/admin/backup`, `/v1/admin/restore`): the keys the operator
    /// pins, so no API caller chooses where key material goes or which bundles are trusted.
    public struct BackupSettings: Sendable, Equatable {
        /// Recipient public key files (`keyward backup keygen`) a backup may be sealed to.
        public var recipients: [String] = []
        /// This server's own recipient identity file (secret, mode 0600), which restores open
        /// bundles with; unset: no restore over the API.
        public var identity: String?
        /// Backup signing public keys (`keyward backup signer`, PEM) of the stores whose
        /// bundles a restore accepts.
        public var signers: [String] = []

        /// Backup settings.
        public init(recipients: [String] = [], identity: String? = nil, signers: [String] = []) {
            self.recipients = recipients
            self.identity = identity
            self.signers = signers
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
        guard (1...1_000_000).contains(limits.maxConnections), (1...86_400).contains(limits.idleTimeoutSeconds),
              (1...3_600).contains(limits.requestReadTimeoutSeconds), (1...600).contains(limits.tlsHandshakeTimeoutSeconds),
              (1024...(1024 * 1024)).contains(limits.maxHeaderBytes) else {
            throw .invalidArgument("limits: maxConnections 1 to 1,000,000, idleTimeoutSeconds 1 to 86,400, requestReadTimeoutSeconds 1 to 3,600, "
                                   + "tlsHandshakeTimeoutSeconds 1 to 600, maxHeaderBytes 1 KiB to 1 MiB")
        }
        guard failedLogins.perSecond > 0, failedLogins.burst >= 1, (1...10_000_000).contains(failedLogins.peers) else {
            throw .invalidArgument("failedLogins needs perSecond > 0, burst >= 1 and peers 1 to 10,000,000 (the limit cannot be turned off)")
        }
        for proxy in trustedProxies where !PeerAddress.isIPAddress(proxy) {
            throw .invalidArgument("trustedProxies: '\(proxy)' is not an IP address")
        }
        guard (0...300).contains(tokenCacheSeconds) else { throw .invalidArgument("tokenCacheSeconds is 0 to 300") }
        guard (1...86_400).contains(maintenanceIntervalSeconds) else { throw .invalidArgument("maintenanceIntervalSeconds is 1 to 86,400") }
        guard !aws.region.isEmpty, aws.region.count <= 32, aws.region.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) else {
            throw .invalidArgument("aws.region must be lowercase letters, digits and '-' (like us-east-1)")
        }
        guard aws.accountID.count == 12, aws.accountID.allSatisfy(\.isNumber) else { throw .invalidArgument("aws.accountID must be 12 digits") }
        guard (1...3600).contains(aws.clockSkewSeconds) else { throw .invalidArgument("aws.clockSkewSeconds is 1 to 3,600") }
        guard (1...64).contains(transitMount.count), transitMount.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_" }),
              !["keys", "decrypt", "admin", "random", "health", "ready", "openapi.yaml"].contains(transitMount) else {
            throw .invalidArgument("transit.mount must be lowercase letters, digits, '-' or '_', and not a path of the native API")
        }
        guard (1...1440).contains(console.idleMinutes) else { throw .invalidArgument("console.idleMinutes is 1 to 1,440") }
        guard (1...168).contains(console.sessionHours) else { throw .invalidArgument("console.sessionHours is 1 to 168") }
        guard (1...100_000).contains(console.maxSessions) else { throw .invalidArgument("console.maxSessions is 1 to 100,000") }
        guard (2...600).contains(leaseSeconds) else { throw .invalidArgument("leaseSeconds is 2 to 600") }
        guard (0...604_800).contains(verifyIntervalSeconds) else { throw .invalidArgument("verifyIntervalSeconds is 0 to 604,800") }
        guard (0...2_592_000).contains(fullVerifyIntervalSeconds) else { throw .invalidArgument("fullVerifyIntervalSeconds is 0 to 2,592,000 (30 days)") }
        guard (0...600).contains(shutdownGraceSeconds) else { throw .invalidArgument("shutdownGraceSeconds is 0 to 600") }
        guard (0...10_000).contains(auditSyncMilliseconds) else { throw .invalidArgument("auditSyncMilliseconds is 0 to 10,000") }
        if let auditAnchor { _ = try AuditAnchorPublisher.Destination(auditAnchor) }
        guard (1...86_400).contains(auditAnchorIntervalSeconds) else { throw .invalidArgument("audit.anchorIntervalSeconds is 1 to 86,400") }
        guard (0...36_500).contains(auditRetentionDays) else { throw .invalidArgument("audit.retentionDays is 0 (keep everything) to 36,500") }
        if auditRetentionDays > 0 && auditArchiveDirectory == nil {
            throw .invalidArgument("audit.retentionDays needs audit.archiveDirectory: entries are archived there before they leave the store")
        }
        _ = try loggerLevel
        if insecureHTTP && !insecureHTTPBeyondLoopback && !LoopbackHost.contains(host) {
            throw .invalidArgument("plain HTTP on \(host), which is not a loopback address: tokens and plaintexts would cross the network in clear; "
                                   + "listen on 127.0.0.1 or ::1, configure TLS, or also set insecureHTTPBeyondLoopback (--insecure-http-beyond-loopback) "
                                   + "if a TLS-terminating proxy really fronts this address")
        }
        if tls == nil && !insecureHTTP {
            throw .invalidArgument("no TLS certificate configured; set tls.certificate and tls.privateKey, use --dev, or pass --insecure-http for a loopback benchmark")
        }
        if let tls {
            for (subject, rules) in tls.clientPolicies {
                let parts = subject.components(separatedBy: " | ")
                guard parts.count == 2, parts.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
                    throw .invalidArgument("tls.clientPolicies: '\(subject)' names no issuer; bind each rule to the CA that issues the certificate: "
                                           + "ISSUER | SUBJECT => OPERATIONS:SELECTOR")
                }
                for rule in rules {
                    do { _ = try AccessPolicy.parseRule(rule) } catch {
                        throw .invalidArgument("tls.clientPolicies['\(subject)']: \(error.description); write ISSUER | SUBJECT => OPERATIONS:SELECTOR")
                    }
                }
            }
            if tls.clientCRL != nil && tls.clientCA == nil {
                throw .invalidArgument("tls.clientCRL needs tls.clientCA (the CA whose revocations it lists)")
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
}
