import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto
import KeywardServer
import KeywardStorage
import KeywardPostgres
import Logging
import ServiceLifecycle

/// `keyward serve`: the HTTPS API. `--dev` sets everything up in a local folder; production
/// reads `--config FILE` (YAML), then `KEYWARD_*` variables, then these flags (later wins).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTPS API (cryptography as a service).",
        discussion: """
            keyward serve --dev: a store, a key file, a development CA and server certificate, and a root \
            token, all in ./.keyward-dev (or --dev-dir); prints the URL, the certificate fingerprint, the \
            token and a curl example.

            keyward serve --config keyward.yaml: production. See docs/operations.md for the settings.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Development mode: local store, key file, self-signed certificate and root token.") var dev = false
    @Option(help: "Development folder (with --dev).") var devDir = ".keyward-dev"
    @Option(help: "The root token to create in development mode (32 to 256 printable characters, not beginning with kw_ unless Keyward generated it), for scripts.")
    var devRootToken: String?
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 8443; 0 picks a free one).") var port: Int?
    @Option(help: "PEM certificate chain.") var tlsCertificate: String?
    @Option(help: "PEM private key.") var tlsPrivateKey: String?
    @Option(help: "PEM CA for client certificates (turns on mTLS).") var tlsClientCa: String?
    @Flag(help: "Serve plain HTTP (loopback benchmarks only).") var insecureHttp = false
    @Flag(help: "With --insecure-http: allow an address that is not loopback (a TLS proxy in front).") var insecureHttpBeyondLoopback = false
    @Option(help: "Requests per second per principal (0: unlimited).") var rateLimit: Int?
    @Option(help: "Log level: trace, debug, info (one line per request), notice, warning, error.") var logLevel: String?
    @Option(help: "Milliseconds within which audit batches are fsync'ed (0: every batch before answering).") var auditSyncMs: Int?

    func run() async throws {
        AllocatorTuning.reexecuteUntuned()
        try await guarded {
            try Keyward.harden()
            if (tlsCertificate == nil) != (tlsPrivateKey == nil) {
                throw ValidationError("--tls-certificate and --tls-private-key go together")
            }
            var flags: [String: String] = [:]
            flags["host"] = host
            flags["port"] = port.map(String.init)
            flags["tls.certificate"] = tlsCertificate
            flags["tls.privateKey"] = tlsPrivateKey
            flags["tls.clientCA"] = tlsClientCa
            flags["insecureHTTP"] = insecureHttp ? "true" : nil
            flags["insecureHTTPBeyondLoopback"] = insecureHttpBeyondLoopback ? "true" : nil
            flags["rateLimit.requestsPerSecond"] = rateLimit.map(String.init)
            flags["logLevel"] = logLevel
            flags["auditSyncMilliseconds"] = auditSyncMs.map(String.init)
            var settings = try await ServerConfiguration.read(file: config, environment: ProcessInfo.processInfo.environment, flags: flags)

            if !dev { try settings.validate() }
            // The configured level governs every logger (the PostgreSQL driver's, the service
            // group's), not only the server's own.
            let level = try settings.loggerLevel
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            // Every node honours another's change within a second: the store watcher confirms
            // the caches every 250 ms, and past 1 s without a confirmation they are bypassed.
            let options = KeyService.Options(cacheCapacity: settings.cache.capacity, cacheTTL: TimeInterval(settings.cache.ttlSeconds), coherenceBound: 1,
                                               nodeID: NodeIdentity.make(), sequencedAudit: true)
            var storeOptions = self.storeOptions
            if storeOptions.store == nil { storeOptions.store = settings.store }
            if storeOptions.keyFile == nil { storeOptions.keyFile = settings.keyFile }
            if !dev, storeOptions.isPostgres {
                // PostgreSQL: the connection pool runs in the ServiceGroup, ahead of the server, so
                // it runs before the first query and closes only after the server has drained.
                let location: PostgresLocation
                let pool: PostgresPool
                do {
                    location = try PostgresLocation(storeOptions.storePath)
                    pool = try PostgresPool(location, password: try PostgresLocation.password())
                } catch let error as PostgresStoreError {
                    throw CLIError(.failure, error.description)
                }
                let opened = storeOptions, configured = settings
                let launch = ServerLaunch {
                    let connect: @Sendable () async throws -> any KeyStore = { try await PostgresKeyStore.open(on: pool) }
                    let (service, root) = try await opened.openWithRoot(options: options, store: try await connect())
                    try await self.serve(service: service, root: root, settings: configured, banner: [], connect: connect, options: options, inGroup: true)
                }
                var group = ServiceGroupConfiguration(services: [.init(service: pool), .init(service: launch)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "keyward"))
                group.maximumGracefulShutdownDuration = .seconds(settings.shutdownGraceSeconds)
                try await ServiceGroup(configuration: group).run()
                return
            }
            let service: KeyService
            let root: any RootOfTrust
            var opened = storeOptions
            var banner: [String] = []
            if dev {
                (service, banner) = try await developmentSetup(&settings, options: options)
                opened.store = URL(fileURLWithPath: devDir).appendingPathComponent("keyward.db").path
                root = try KeyFileRootOfTrust(path: URL(fileURLWithPath: devDir).appendingPathComponent("root.key").path)
            } else {
                (service, root) = try await storeOptions.openWithRoot(options: options, auditDurability: settings.auditDurability, serving: true)
            }
            let durability = settings.auditDurability
            let location = opened
            try await serve(service: service, root: root, settings: settings, banner: banner,
                            connect: { try await location.connectStore(auditDurability: durability, serving: true) }, options: options, inGroup: false)
        }
    }

    /// Runs the server over `service`. A KEK rotated by another process is taken up by opening
    /// the store again with the same root of trust, through a fresh store (`connect`), so the
    /// old service's writes stay fenced. In a ServiceGroup already (`inGroup`), the server runs
    /// as its service; otherwise it runs its own, which handles the signals.
    private func serve(service: KeyService, root: any RootOfTrust, settings: ServerConfiguration, banner: [String],
                       connect: @escaping @Sendable () async throws -> any KeyStore, options: KeyService.Options, inGroup: Bool) async throws {
        let reopen: @Sendable () async throws(KeywardError) -> KeyService = { () async throws(KeywardError) -> KeyService in
            let store: any KeyStore
            do {
                store = try await connect()
            } catch let error as StorageError {
                throw .storage(error)
            } catch {
                throw .storage(.unavailable("\(error)"))
            }
            return try await KeyService.open(store: store, root: { (_) throws(KeywardError) -> any RootOfTrust in root }, options: options)
        }
        let server = try KeywardServer(service: service, configuration: settings, reopen: reopen, rootOfTrust: root)
        let scheme = settings.insecureHTTP ? "http" : "https"
        let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        let announce: @Sendable (Int) async -> Void = { port in
            var text = "keyward listening on \(scheme)://\(host):\(port)\n"
            for line in banner { text += line.replacingOccurrences(of: "{url}", with: "\(scheme)://\(host):\(port)") + "\n" }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        if inGroup {
            try await server.makeApplication(onRunning: announce).run()
        } else {
            try await server.run(onRunning: announce)
        }
    }

    /// Creates (or reuses) the development store, key file, certificates and root token.
    private func developmentSetup(_ settings: inout ServerConfiguration, options: KeyService.Options) async throws -> (KeyService, [String]) {
        let directory = URL(fileURLWithPath: devDir)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let storePath = directory.appendingPathComponent("keyward.db").path
        let keyFile = directory.appendingPathComponent("root.key").path
        let service: KeyService
        if FileManager.default.fileExists(atPath: storePath) {
            service = try await KeyService.open(store: try SQLiteKeyStore(path: storePath, auditDurability: settings.auditDurability),
                                                root: { (_) throws(KeywardError) -> any RootOfTrust in try KeyFileRootOfTrust(path: keyFile) },
                                                options: options)
        } else {
            if !FileManager.default.fileExists(atPath: keyFile) { try KeyFileRootOfTrust.generate(at: keyFile) }
            service = try await KeyService.initialize(store: try SQLiteKeyStore(path: storePath, auditDurability: settings.auditDurability), root: try KeyFileRootOfTrust(path: keyFile),
                                                      actor: .owner("dev-setup"), options: options)
        }
        let caPath = directory.appendingPathComponent("ca.pem").path
        let certificatePath = directory.appendingPathComponent("server.pem").path
        let keyPath = directory.appendingPathComponent("server-key.pem").path
        // A certificate an earlier run left, still good and issued by the CA in ca.pem (the
        // chain ends with it), is served again, so the CA clients trust stays the same across restarts, and a start that fails (its port taken by the
        // running one) leaves the running server's files alone.
        let server: DevelopmentPKI.Issued
        if let authority = try? String(contentsOfFile: caPath, encoding: .utf8),
           let chain = try? String(contentsOfFile: certificatePath, encoding: .utf8),
           chain.hasSuffix(authority),
           let key = try? SecretFile.text(keyPath, "the development TLS private key", rejection: { CLIError(.usage, $0) }),
           let reused = DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: key, hosts: [settings.host]) {
            server = reused
        } else {
            let pki = try DevelopmentPKI()
            server = try pki.issueServer(hosts: [settings.host])
            // Each file is written whole to a temporary name and renamed over the old one.
            try Data(pki.caCertificatePEM.utf8).write(to: URL(fileURLWithPath: caPath), options: .atomic)
            // The chain: the leaf, then the development CA (whose key is never written anywhere).
            try Data((server.certificatePEM + "\n" + pki.caCertificatePEM).utf8).write(to: URL(fileURLWithPath: certificatePath), options: .atomic)
            let temporary = keyPath + ".new"
            try? FileManager.default.removeItem(atPath: temporary)
            guard FileManager.default.createFile(atPath: temporary, contents: Data(server.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600]),
                  rename(temporary, keyPath) == 0 else {
                throw CLIError(.failure, "could not write the development TLS private key \(keyPath): \(String(cString: strerror(errno)))")
            }
        }
        if !settings.insecureHTTP {
            settings.tls = ServerConfiguration.TLSSettings(certificate: certificatePath, privateKey: keyPath,
                                                           clientCA: settings.tls?.clientCA, clientPolicies: settings.tls?.clientPolicies ?? [:])
        }
        if port == nil, ProcessInfo.processInfo.environment["KEYWARD_PORT"] == nil, config == nil { settings.port = 8443 }

        let token: String
        if let devRootToken {
            if (try? await service.authenticate(devRootToken)) != nil {
                token = devRootToken
            } else {
                token = try await service.issueToken(principal: "dev-root", policy: .everything, lifetime: nil, text: devRootToken, actor: .owner("dev-setup")).text
            }
        } else {
            token = try await service.issueToken(principal: "dev-root", policy: .everything, lifetime: 30 * 86_400, actor: .owner("dev-setup")).text
        }
        var banner = [
            "development mode: store \(storePath), key file \(keyFile) (never use --dev in production)",
        ]
        if !settings.insecureHTTP {
            banner.append("TLS certificate SHA-256 fingerprint: \(server.fingerprint)")
            banner.append("CA certificate: \(caPath)")
        }
        banner.append("root token (shown once, full access): \(token)")
        banner.append("try:")
        banner.append("  export KEYWARD_TOKEN='\(token)'")
        banner.append("  curl -s\(settings.insecureHTTP ? "" : " --cacert \(caPath)") -H \"Authorization: Bearer $KEYWARD_TOKEN\" -d '{\"spec\":\"AES-256-GCM\",\"aliases\":[\"demo\"]}' {url}/v1/keys")
        banner.append("  curl -s\(settings.insecureHTTP ? "" : " --cacert \(caPath)") -H \"Authorization: Bearer $KEYWARD_TOKEN\" -d '{\"plaintext\":\"aGVsbG8=\"}' {url}/v1/keys/demo/encrypt")
        return (service, banner)
    }
}

extension ServerConfiguration {
    /// How the SQLite store syncs audit appends: each batch, or within `auditSyncMilliseconds`.
    var auditDurability: AuditDurability {
        auditSyncMilliseconds == 0 ? .eachBatch : .within(.milliseconds(auditSyncMilliseconds))
    }
}

/// A service that opens the store and runs the server, for a ServiceGroup whose earlier services
/// (the PostgreSQL pool) must be running first.
private struct ServerLaunch: Service {
    let body: @Sendable () async throws -> Void

    init(_ body: @escaping @Sendable () async throws -> Void) { self.body = body }

    func run() async throws { try await body() }
}
