import Foundation
import KeywardCrypto
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL store lives and how to reach it: the `--store` value
/// `postgres://USER@HOST:PORT/DATABASE?sslmode=…&sslrootcert=…`.
///
/// - The host is a name or address (TCP), or the directory of the server's Unix socket, as libpq
///   takes it: percent-encoded in the host's place (`postgres://USER@%2Frun%2Fpostgresql/DATABASE`)
///   or as `?host=/run/postgresql` with the host left empty. The socket is `DIR/.s.PGSQL.PORT`.
///
/// - The password never comes from the URL (a URL is a flag, visible in `ps` and shell
///   history): it is read from the file `KEYWARD_DATABASE_PASSWORD_FILE` names, or else from
///   `KEYWARD_DATABASE_PASSWORD`. A URL with a password is refused.
/// - TLS is required, with the server's certificate verified, for every host that is not on
///   this machine (`localhost`, `127.0.0.0/8`, `::1`, a Unix socket). `sslmode` overrides it:
///   `disable`, `require` (encrypted, certificate checked against `sslrootcert` or the system
///   roots, host name verified) or `verify-full` (the same). `sslmode=disable` for a remote host
///   must be asked for explicitly.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// How the connection is protected.
    public enum TLSMode: String, Sendable, Equatable {
        /// No TLS (loopback, or asked for).
        case disable
        /// TLS with the server's certificate and host name verified.
        case require
    }

    /// A host name or address, or (starting with `/`) the directory of the server's Unix socket.
    public var host: String
    public var port: Int
    public var username: String
    public var database: String
    public var tls: TLSMode
    /// A PEM file of CA certificates to verify the server with (`sslrootcert`); nil: system roots.
    public var rootCertificates: String?

    /// Whether a `--store` value names a PostgreSQL database rather than a SQLite file.
    public static func isPostgres(_ store: String) -> Bool {
        store.hasPrefix("postgres://") || store.hasPrefix("postgresql://")
    }

    /// Parses a `postgres://` URL.
    ///
    /// - Throws: `PostgresStoreError.badLocation` naming what is wrong.
    public init(_ text: String) throws(PostgresStoreError) {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw .badLocation("'\(Self.redacted(text))' is not a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)")
        }
        guard components.password == nil else {
            throw .badLocation("the URL carries a password; give it in the file KEYWARD_DATABASE_PASSWORD_FILE names, or in KEYWARD_DATABASE_PASSWORD, never on the command line")
        }
        guard let user = components.user, !user.isEmpty else { throw .badLocation("the URL names no user (postgres://USER@HOST/DATABASE)") }
        let queryItems = components.queryItems ?? []
        var host = components.host ?? ""
        if let socket = queryItems.first(where: { $0.name == "host" }) {
            guard host.isEmpty else { throw .badLocation("the URL names a host twice (\(host) and ?host=); give one") }
            host = socket.value ?? ""
            guard host.hasPrefix("/") else {
                throw .badLocation("?host= takes the directory of the server's Unix socket (an absolute path, as /run/postgresql); name a TCP host before the path instead")
            }
        }
        // An IPv6 address is bracketed in a URL ([::1]) and bare where it is connected to.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw .badLocation("the URL names no host") }
        if host.hasPrefix("/") {
            guard !host.contains("\0"), !host.split(separator: "/").contains("..") else {
                throw .badLocation("the socket directory '\(host)' is not a plain absolute path")
            }
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw .badLocation("the URL names no database (postgres://USER@HOST/DATABASE)") }
        self.host = host
        self.port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw .badLocation("port \(port) is out of range") }
        self.username = user.removingPercentEncoding ?? user
        self.database = database.removingPercentEncoding ?? database
        var mode: TLSMode = Self.isLocal(host) ? .disable : .require
        var root: String? = nil
        for item in queryItems {
            switch item.name {
            case "host":
                continue
            case "sslmode":
                switch item.value {
                case "disable": mode = .disable
                case "require", "verify-full", "verify-ca": mode = .require
                default: throw .badLocation("sslmode '\(item.value ?? "")' is not one of disable, require, verify-full")
                }
            case "sslrootcert":
                guard let value = item.value, !value.isEmpty else { throw .badLocation("sslrootcert names no file") }
                root = value
            default:
                throw .badLocation("unknown URL parameter '\(item.name)' (known: host, sslmode, sslrootcert)")
            }
        }
        if host.hasPrefix("/"), mode == .require {
            throw .badLocation("TLS is not spoken over a Unix socket (\(host)); drop sslmode, or name a TCP host to require TLS")
        }
        self.tls = mode
        self.rootCertificates = root
    }

    /// True for names and addresses of this machine (`LoopbackHost`), and for a Unix socket's
    /// directory.
    static func isLocal(_ host: String) -> Bool {
        host.hasPrefix("/") || LoopbackHost.contains(host)
    }

    /// The server's Unix socket file when `host` names its directory; nil for a TCP host.
    public var socketPath: String? {
        guard host.hasPrefix("/") else { return nil }
        return (host.hasSuffix("/") ? host : host + "/") + ".s.PGSQL.\(port)"
    }

    /// The URL without anything after the user name's `:` (for messages).
    static func redacted(_ text: String) -> String {
        guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at else { return text }
        let user = text[scheme.upperBound..<at]
        guard let colon = user.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    /// `postgres://USER@HOST:PORT/DATABASE` (never a password); a socket directory percent-encoded
    /// in the host's place.
    public var description: String {
        let shown = host.hasPrefix("/") ? host.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
            : host.contains(":") ? "[\(host)]" : host
        return "postgres://\(username)@\(shown):\(port)/\(database)"
    }

    /// The password from `KEYWARD_DATABASE_PASSWORD_FILE` (its first line; the file must be the
    /// owner's alone, `SecretFile`) or `KEYWARD_DATABASE_PASSWORD`; nil when neither is set
    /// (trust or peer authentication).
    public static func password(environment: [String: String] = ProcessInfo.processInfo.environment) throws(PostgresStoreError) -> String? {
        if let file = environment["KEYWARD_DATABASE_PASSWORD_FILE"], !file.isEmpty {
            let text = try SecretFile.text(file, "the password file (KEYWARD_DATABASE_PASSWORD_FILE)") { PostgresStoreError.badLocation($0) }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        if let value = environment["KEYWARD_DATABASE_PASSWORD"], !value.isEmpty { return value }
        return nil
    }

    /// The client configuration for this location.
    func clientConfiguration(password: String?) throws(PostgresStoreError) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch self.tls {
        case .disable:
            tls = .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let rootCertificates {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificates))
                } catch {
                    throw .badLocation("sslrootcert \(rootCertificates) cannot be read as PEM certificates: \(error)")
                }
            }
            tls = .require(configuration)
        }
        var configuration = socketPath.map { PostgresClient.Configuration(unixSocketPath: $0, username: username, password: password, database: database) }
            ?? PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(2)
        configuration.options.maximumConnections = 24
        configuration.options.minimumConnections = 2
        return configuration
    }
}

/// Why a PostgreSQL store could not be reached or opened.
public enum PostgresStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `--store` URL or the password source is wrong.
    case badLocation(String)

    public var description: String {
        switch self {
        case .badLocation(let message): "PostgreSQL store: \(message)"
        }
    }
}
