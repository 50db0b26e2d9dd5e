import KeywardStorage
import Logging
import PostgresNIO
import ServiceLifecycle

/// postgres-nio's connection pool for one database, as a ServiceLifecycle `Service`: `keyward
/// serve` runs it in its ServiceGroup ahead of the server, so the pool is running before the
/// first query and closes only after the server has drained. Stores on it come from
/// `PostgresKeyStore.open(on:)`.
public struct PostgresPool: Service {
    /// Where the database is.
    public let location: PostgresLocation
    let client: PostgresClient
    /// For the audit writer's own connection (`PostgresAuditConnection`).
    let password: String?

    /// A pool for `location`, not yet running.
    ///
    /// - Parameter password: from `PostgresLocation.password()`, never from the URL.
    /// - Throws: `unavailable` for a configuration postgres-nio refuses (TLS set-up).
    public init(_ location: PostgresLocation, password: String?, logger: Logger = Logger(label: "keyward.postgres")) throws(StorageError) {
        let configuration: PostgresClient.Configuration
        do {
            configuration = try location.clientConfiguration(password: password)
        } catch {
            throw .unavailable(error.description)
        }
        self.location = location
        self.password = password
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// Runs the pool until the task is cancelled or the group shuts down (after the services
    /// started after it have stopped).
    public func run() async throws {
        await cancelWhenGracefulShutdown { await client.run() }
    }
}
