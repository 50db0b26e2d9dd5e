import Foundation
import Hummingbird
import HummingbirdCore
import Keyward
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// `keyward serve`: the HTTPS API over a `KeyService`. A thin adapter: routes decode JSON, call
/// the service with a `Caller` built from the request's credential, and encode the result;
/// authentication, rate limits, request ids, error mapping, audit of refused requests and
/// metrics are middleware.
public struct KeywardServer: Sendable {
    /// The service the API fronts now (replaced after another process rotates the KEK, when
    /// the server was given a way to open the store again).
    public var service: KeyService { slot.current }
    /// Holds the service; `StoreWatcher` replaces it.
    let slot: KeyServiceSlot
    /// Opens the store again (a new connection, the same root of trust), to take up a KEK
    /// another process rotated; nil: the server stops writing until it is restarted.
    let reopen: (@Sendable () async throws(KeywardError) -> KeyService)?
    /// The settings it was built with.
    public let configuration: ServerConfiguration
    /// The metrics `/metrics` reports.
    public let metrics = ServiceMetrics()
    let shutdown = ShutdownState()
    let logger: Logger
    /// Verified tokens, shared by the routes and the `StoreWatcher` that clears them.
    let tokens: TokenAuthenticator
    /// The root of trust, for KEK rotation over the API.
    let rootOfTrust: (any RootOfTrust)?
    /// The backup recipients, identity and trusted signers the operator pinned.
    let backupKeys: BackupKeys
    /// The maintenance sweep's last result (`/v1/admin/maintenance`).
    let maintenanceLog = MaintenanceLog()
    /// mTLS principals: the client-certificate rules and revocation lists.
    let certificates: CertificateAuthenticator
    /// Requests per authenticated principal (the API and the console).
    let limiter: RateLimiter
    /// Failed authentications per peer address (the API and the console's sign-in).
    let failures: RateLimiter
    /// The recent traffic the console's health page draws.
    let history: MetricsHistory
    /// The web console, unless `console.enabled` is false.
    let console: Console?

    /// A server for `service` with `configuration` (validated here). `reopen` opens the same
    /// store anew (its own connection, the same root of trust): with it, a KEK rotated by
    /// another process is taken up within the store watcher's poll; without it, the server
    /// answers 503 with the reason until it is restarted.
    ///
    /// `rootOfTrust`, when given, lets `POST /v1/admin/kek/rotate` rotate the KEK (the server
    /// wraps the new KEK with it); without it that route answers 503.
    public init(service: KeyService, configuration: ServerConfiguration,
                reopen: (@Sendable () async throws(KeywardError) -> KeyService)? = nil,
                rootOfTrust: (any RootOfTrust)? = nil,
                logger: Logger = Logger(label: "keyward")) throws(KeywardError) {
        try configuration.validate()
        self.rootOfTrust = rootOfTrust
        self.backupKeys = try BackupKeys(configuration.backup)
        self.slot = KeyServiceSlot(service)
        self.reopen = reopen
        self.configuration = configuration
        self.tokens = TokenAuthenticator(slot: slot, ttl: .seconds(configuration.tokenCacheSeconds),
                                         coherenceBound: service.options.coherenceBound.map { .milliseconds(Int64($0 * 1000)) })
        var revocation: ClientRevocation?
        if let tls = configuration.tls, let crl = tls.clientCRL, let ca = tls.clientCA {
            revocation = try ClientRevocation(path: crl, caPath: ca)
        }
        certificates = CertificateAuthenticator(policies: try configuration.certificatePolicies(), revocation: revocation)
        limiter = RateLimiter(rate: configuration.rateLimit.requestsPerSecond, burst: configuration.rateLimit.burst)
        failures = RateLimiter(rate: configuration.failedLogins.perSecond, burst: configuration.failedLogins.burst, capacity: configuration.failedLogins.peers)
        history = MetricsHistory(metrics: metrics)
        if configuration.console.enabled {
            let templates: ConsoleTemplates
            do { templates = try ConsoleTemplates() } catch { throw .invalidArgument("the console's templates do not parse: \(error)") }
            console = Console(slot: slot, tokens: tokens, sessions: ConsoleSessions(configuration.console), templates: templates, limiter: limiter, failures: failures,
                              history: history, maintenance: maintenanceLog, draining: shutdown,
                              secureCookies: configuration.tls != nil && !configuration.insecureHTTP,
                              certificates: certificates)
        } else {
            console = nil
        }
        var logger = logger
        logger.logLevel = try configuration.loggerLevel
        self.logger = logger
    }

    /// The router with every route and middleware (also what the in-process tests drive).
    public func makeRouter() throws(KeywardError) -> Router<KeywardRequestContext> {
        try makeRoutes()
    }

    func makeRoutes() throws(KeywardError) -> Router<KeywardRequestContext> {
        // The routes alone first, to know which methods each path serves (405 versus 404).
        let bare = Router(context: KeywardRequestContext.self)
        registerRoutes(bare)
        let table = RouteTable(bare.routes.map { ($0.method, $0.path.description) })
        let router = Router(context: KeywardRequestContext.self)
        // Outermost first: each concern is one middleware (Middleware/).
        router.add(middleware: RequestIDMiddleware(peers: PeerAddress(trustedProxies: Set(configuration.trustedProxies)),
                                                   transitPrefix: configuration.transitPrefix))
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: RequestAuditMiddleware(slot: slot))
        router.add(middleware: ErrorResponseMiddleware(routes: table))
        router.add(middleware: AuthenticationMiddleware(
            tokens: tokens, limiter: limiter, failures: failures,
            certificates: certificates, aws: configuration.aws, maxBodyBytes: configuration.maxBodyBytes))
        registerRoutes(router)
        return router
    }

    private func registerRoutes(_ router: Router<KeywardRequestContext>) {
        let body = BodyReader(limit: configuration.maxBodyBytes)
        SystemRoutes.register(router, slot: slot, metrics: metrics, draining: shutdown)
        KeyRoutes.register(router, slot: slot, body: body)
        AWSKMSRoutes.register(router, slot: slot, settings: configuration.aws)
        TransitRoutes.register(router, slot: slot, body: body, mount: configuration.transitMount, backupKeys: backupKeys)
        OperationRoutes.register(router, slot: slot, body: body)
        AdminRoutes.register(router, slot: slot, body: body, tokens: tokens, maintenance: maintenanceLog, root: rootOfTrust, backupKeys: backupKeys)
        console?.register(router.group("/ui").add(middleware: ConsoleHeadersMiddleware()))
    }

    /// The routes the server serves, as (method, path template): for the OpenAPI check.
    public func routeList() throws(KeywardError) -> [(method: String, path: String)] {
        try makeRoutes().routes.map { ($0.method.rawValue, $0.path.description) }
    }

    /// The server as a service: HTTPS (HTTP/2 and HTTP/1.1 by ALPN, `HTTPSConnection`) unless
    /// `insecureHTTP`, which serves plain HTTP/1.1 (`HTTP1Connection`). Both run the same
    /// router. `onRunning` receives the bound port once the server listens.
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws(KeywardError) -> any Service {
        let router = try makeRouter().buildResponder()
        let configuration = HummingbirdCore.ServerConfiguration(address: .hostname(self.configuration.host, port: self.configuration.port), serverName: nil)
        let running: @Sendable (any Channel) async -> Void = { channel in await onRunning(channel.localAddress?.port ?? 0) }
        let group = EventLoopGroupProvider.singleton.eventLoopGroup
        var server: any Service
        let settings = self.configuration.limits
        let limits = TransportLimits(maxConnections: settings.maxConnections, idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds)),
                                     requestReadTimeout: .seconds(Int64(settings.requestReadTimeoutSeconds)),
                                     tlsHandshakeTimeout: .seconds(Int64(settings.tlsHandshakeTimeoutSeconds)), maxHeaderBytes: settings.maxHeaderBytes)
        if let tls = self.configuration.tls, !self.configuration.insecureHTTP {
            let connection: HTTPSConnection
            do {
                connection = try HTTPSConnection(tls: try ServerTLS.configuration(tls), router: router,
                                                 maxBodyBytes: self.configuration.maxBodyBytes, limits: limits,
                                                 transitPrefix: self.configuration.transitPrefix, logger: logger)
            } catch let error as KeywardError {
                throw error
            } catch {
                throw .invalidArgument("TLS setup failed: \(error)")
            }
            server = connection.server(configuration: configuration, onServerRunning: running, eventLoopGroup: group, logger: logger)
        } else {
            let connection = HTTP1Connection(responder: router, maxBodyBytes: self.configuration.maxBodyBytes, limits: limits, logger: logger,
                                             transitPrefix: self.configuration.transitPrefix)
            server = connection.server(configuration: configuration, onServerRunning: running, eventLoopGroup: group, logger: logger)
        }
        server = Listener(server: server, address: "\(self.configuration.host):\(self.configuration.port)")
        // Nodes coordinate through the store when they have an id (`keyward serve` gives each
        // one); a server without one runs the background work itself, unleased.
        let lease = slot.current.options.nodeID == nil ? nil : LeaseKeeper(slot: slot, duration: .seconds(self.configuration.leaseSeconds), logger: logger)
        let verifyEvery = self.configuration.verifyIntervalSeconds
        let maintenance = MaintenanceScheduler(slot: slot, interval: .seconds(self.configuration.maintenanceIntervalSeconds),
                                               verifyInterval: verifyEvery > 0 ? .seconds(verifyEvery) : nil,
                                               fullVerifyInterval: self.configuration.fullVerifyIntervalSeconds > 0 ? .seconds(self.configuration.fullVerifyIntervalSeconds) : nil,
                                               retention: self.configuration.auditArchiveDirectory.flatMap { directory in
                                                   self.configuration.auditRetentionDays > 0 ? (self.configuration.auditRetentionDays, directory) : nil
                                               },
                                               lease: lease, log: maintenanceLog, logger: logger)
        let watcher = StoreWatcher(slot: slot, tokens: tokens, reopen: reopen, logger: logger)
        var services: [any Service] = [server, DrainWatcher(state: shutdown, logger: logger), maintenance, watcher, history]
        if let lease {
            services.append(lease)
            services.append(AuditSequencer(slot: slot, lease: lease, interval: .milliseconds(20), idleInterval: .milliseconds(200), logger: logger))
        }
        if let anchor = self.configuration.auditAnchor {
            services.append(AuditAnchorPublisher(slot: slot, destination: try AuditAnchorPublisher.Destination(anchor),
                                                 interval: .seconds(self.configuration.auditAnchorIntervalSeconds), logger: logger))
        }
        return ServiceBundle(services: services, logger: logger)
    }

    /// Runs until SIGTERM or SIGINT, then stops accepting connections, reports not-ready, and
    /// lets in-flight requests finish (up to `shutdownGraceSeconds`).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let app = try makeApplication(onRunning: onRunning)
        var group = ServiceGroupConfiguration(
            services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(configuration.shutdownGraceSeconds)
        try await ServiceGroup(configuration: group).run()
    }
}

/// The HTTP server, whose failure to listen is told in words an operator can act on rather
/// than as the socket call's error.
struct Listener: Service {
    let server: any Service
    let address: String

    func run() async throws {
        do {
            try await server.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw KeywardError.invalidArgument("cannot listen on \(address): the address is in use (another keyward serve, or another "
                                               + "program, listens there); stop it, or choose another port with --port")
        } catch let error as IOError where error.errnoCode == EACCES {
            throw KeywardError.invalidArgument("cannot listen on \(address): permission denied (ports below 1024 need privileges); "
                                               + "choose another port with --port")
        } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
            throw KeywardError.invalidArgument("cannot listen on \(address): no interface here has that address; choose another with --host")
        }
    }
}

/// Services run together, as one: they start together and shut down gracefully together.
struct ServiceBundle: Service {
    let services: [any Service]
    let logger: Logger

    func run() async throws {
        try await ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger)).run()
    }
}

/// Marks the server as draining once graceful shutdown begins, so `/v1/ready` turns 503 while
/// in-flight requests finish.
struct DrainWatcher: Service {
    let state: ShutdownState
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        state.begin()
        logger.notice("graceful shutdown: no new connections; finishing in-flight requests")
    }
}
