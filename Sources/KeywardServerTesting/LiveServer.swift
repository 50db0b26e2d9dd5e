import Foundation
import Keyward
import KeywardServer
import Logging
import ServiceLifecycle

/// A `keyward serve` on a loopback port, for tests and examples: started as the server runs in
/// production (`KeywardServer.makeApplication` in a `ServiceGroup`), stopped by a graceful
/// shutdown. It listens on 127.0.0.1 at a port the system picks.
public struct LiveServer: Sendable {
    /// The port it listens on.
    public let port: Int
    /// `https://localhost:PORT`, or `http://127.0.0.1:PORT` for a plain-HTTP server.
    public let url: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `server` (its configuration says the port, 0 for any, and whether TLS is on).
    public static func start(_ server: KeywardServer) async throws -> LiveServer {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try server.makeApplication { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: Logger(label: "keyward-live-server")))
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
            throw LiveServerError.didNotStart
        }
        let scheme = server.configuration.tls != nil && !server.configuration.insecureHTTP ? "https://localhost" : "http://127.0.0.1"
        return LiveServer(port: port, url: "\(scheme):\(port)", group: group, task: task)
    }

    /// Starts a server for `service` with a new certificate for localhost, 127.0.0.1 and ::1 from
    /// `pki` (by default a new development CA), on any free port; `configure` adjusts the
    /// configuration.
    /// Certificate files go to `directory`.
    public static func startWithDevelopmentTLS(
        service: KeyService, directory: URL, pki given: DevelopmentPKI? = nil, configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> (server: LiveServer, pki: DevelopmentPKI, fingerprint: String) {
        let pki = try given ?? DevelopmentPKI()
        let leaf = try pki.issueServer()
        let certificate = directory.appendingPathComponent("server.pem").path
        let key = directory.appendingPathComponent("server-key.pem").path
        try Data((leaf.certificatePEM + "\n" + pki.caCertificatePEM).utf8).write(to: URL(fileURLWithPath: certificate))
        FileManager.default.createFile(atPath: key, contents: Data(leaf.privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600])
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.tls = .init(certificate: certificate, privateKey: key)
        configure(&configuration)
        let server = try await start(KeywardServer(service: service, configuration: configuration))
        return (server, pki, leaf.fingerprint)
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Why a `LiveServer` could not start.
public enum LiveServerError: Error, CustomStringConvertible {
    /// The server ended before it reported a listening port.
    case didNotStart

    public var description: String { "the server did not start listening" }
}
