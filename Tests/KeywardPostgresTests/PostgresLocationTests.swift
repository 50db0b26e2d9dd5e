import Foundation
import Keyward
import KeywardPostgres
import KeywardStorage
import Testing

@Suite("PostgreSQL locations and failures")
struct PostgresLocationTests {
    @Test("a postgres:// URL gives user, host, port and database; TLS is required for any host not on this machine unless asked otherwise")
    func parsing() throws {
        let local = try PostgresLocation("postgres://keyward@127.0.0.1:5433/kms")
        #expect(local.username == "keyward" && local.host == "127.0.0.1" && local.port == 5433 && local.database == "kms" && local.tls == .disable)
        #expect(try PostgresLocation("postgresql://k@localhost/kms").tls == .disable)
        #expect(try PostgresLocation("postgres://k@localhost/kms").port == 5432)
        let remote = try PostgresLocation("postgres://k@db.internal/kms")
        #expect(remote.tls == .require)
        #expect(try PostgresLocation("postgres://k@db.internal/kms?sslmode=disable").tls == .disable)
        #expect(try PostgresLocation("postgres://k@127.0.0.1/kms?sslmode=verify-full&sslrootcert=/etc/ca.pem").rootCertificates == "/etc/ca.pem")
        #expect(remote.description == "postgres://k@db.internal:5432/kms")
        // An IPv6 address is connected to without the URL's brackets, and shown with them.
        let six = try PostgresLocation("postgres://k@[::1]:5433/kms")
        #expect(six.host == "::1" && six.tls == .disable && six.description == "postgres://k@[::1]:5433/kms")
        #expect(try PostgresLocation("postgres://k@[2001:db8::7]/kms").tls == .require)
    }

    @Test("attack: a host name that only looks local (127.attacker.example, localhost.attacker.example) still requires TLS")
    func lookalikeHostsRequireTLS() throws {
        for host in ["127.attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example", "127.0.0.256", "1270.0.0.1"] {
            #expect(try PostgresLocation("postgres://k@\(host)/kms").tls == .require, "\(host)")
        }
        for host in ["127.0.0.1", "127.9.8.7", "LOCALHOST", "[::1]"] {
            #expect(try PostgresLocation("postgres://k@\(host)/kms").tls == .disable, "\(host)")
        }
    }

    @Test("a Unix socket's directory, percent-encoded in the host's place or given as ?host=, is a local host without TLS; its socket is DIR/.s.PGSQL.PORT")
    func unixSocket() throws {
        let encoded = try PostgresLocation("postgres://k@%2Frun%2Fpostgresql:5433/kms")
        #expect(encoded.host == "/run/postgresql" && encoded.port == 5433 && encoded.tls == .disable)
        #expect(encoded.socketPath == "/run/postgresql/.s.PGSQL.5433")
        let query = try PostgresLocation("postgres://k@/kms?host=/run/postgresql/")
        #expect(query.socketPath == "/run/postgresql/.s.PGSQL.5432" && query.tls == .disable)
        // The description is a URL that names the same place.
        #expect(encoded.description == "postgres://k@%2Frun%2Fpostgresql:5433/kms")
        #expect(try PostgresLocation(encoded.description) == encoded)
        #expect(try PostgresLocation("postgres://k@127.0.0.1/kms").socketPath == nil)
    }

    @Test("a socket directory is refused when it is ambiguous or TLS is asked of it", arguments: [
        "postgres://k@db/kms?host=/run/postgresql", "postgres://k@/kms?host=db.internal", "postgres://k@/kms?host=",
        "postgres://k@/kms?host=/run/postgresql&sslmode=require", "postgres://k@%2Frun%2F..%2Fetc/kms",
    ])
    func badSockets(_ text: String) {
        #expect(throws: PostgresStoreError.self) { _ = try PostgresLocation(text) }
    }

    @Test("a store reached through the server's Unix socket works end to end: the pool and the audit writer both connect over it",
          .enabled(if: StoreBackend.serverURL != nil || StoreBackend.postgresRequired))
    func storeOverUnixSocket() async throws {
        let environment = ProcessInfo.processInfo.environment
        let directory = try #require(environment["KEYWARD_TEST_PGDATA"], "scripts/postgres.sh puts the socket in KEYWARD_TEST_PGDATA")
        let database = try await StoreBackend.postgres.makeDatabase()
        defer { database.remove() }
        let name = try #require(database.databaseName)
        let port = try #require(environment["KEYWARD_TEST_PGPORT"])
        let encoded = directory.replacingOccurrences(of: "/", with: "%2F")
        let location = try PostgresLocation("postgres://keyward@\(encoded):\(port)/\(name)")
        #expect(location.socketPath == directory + "/.s.PGSQL." + port)
        try KeyFileRootOfTrust.generate(at: database.keyFile)
        let service = try await KeyService.initialize(store: try await PostgresKeyStore.connect(location, password: nil, operationTimeout: .seconds(60)),
                                                      root: KeyFileRootOfTrust(path: database.keyFile), actor: .owner("test"))
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("test")).metadata.id.description
        let sealed = try await service.encrypt(Array("over the socket".utf8), key: key, actor: .owner("test"))
        #expect(try await service.decrypt(sealed.ciphertext, actor: .owner("test")).plaintext == Array("over the socket".utf8))
        // Every connection to this database but the query's own (psql over TCP) came over the socket.
        #expect(try await database.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = '\(name)' AND client_addr IS NOT NULL AND pid <> pg_backend_pid()") == "0")
        #expect(try await database.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = '\(name)' AND application_name = 'keyward-audit'") == "1")
        #expect(try await database.scalar("SELECT count(*) FROM audit") != "0")
    }

    @Test("attack: a password in the URL (visible in ps and shell history) is refused, and never echoed back in the error")
    func passwordInURLRefused() {
        do {
            _ = try PostgresLocation("postgres://k:hunter2secret@db/kms")
            Issue.record("a URL with a password was accepted")
        } catch {
            #expect(error.description.contains("KEYWARD_DATABASE_PASSWORD"))
            #expect(!error.description.contains("hunter2secret"))
        }
    }

    @Test("bad URLs get a typed error naming what is wrong", arguments: [
        "postgres://db/kms", "postgres://k@/kms", "postgres://k@db", "postgres://k@db/", "postgres://k@db/kms?sslmode=allow",
        "postgres://k@db/kms?color=blue", "postgres://k@db:99999/kms", "mysql://k@db/kms", "postgres://k@db/kms?sslrootcert=",
    ])
    func badURLs(_ text: String) {
        #expect(throws: PostgresStoreError.self) { _ = try PostgresLocation(text) }
    }

    @Test("the password comes from the file KEYWARD_DATABASE_PASSWORD_FILE names (first line), else KEYWARD_DATABASE_PASSWORD; an unreadable file, or one others can read, is an error")
    func passwordSources() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: file.path, contents: Data("from-file\nignored\n".utf8), attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try PostgresLocation.password(environment: ["KEYWARD_DATABASE_PASSWORD_FILE": file.path, "KEYWARD_DATABASE_PASSWORD": "env"]) == "from-file")
        #expect(try PostgresLocation.password(environment: ["KEYWARD_DATABASE_PASSWORD": "env"]) == "env")
        #expect(try PostgresLocation.password(environment: [:]) == nil)
        #expect(throws: PostgresStoreError.self) { _ = try PostgresLocation.password(environment: ["KEYWARD_DATABASE_PASSWORD_FILE": "/nonexistent/pw"]) }
        // Attack: a password file others can read is refused, naming its mode.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        do {
            _ = try PostgresLocation.password(environment: ["KEYWARD_DATABASE_PASSWORD_FILE": file.path])
            Issue.record("a world-readable password file was used")
        } catch {
            #expect(error.description.contains("mode 644"), "\(error)")
        }
    }

    @Test("a database that does not answer fails the connection with 'unavailable' within the operation timeout instead of hanging")
    func unreachableDatabase() async throws {
        // A loopback port nothing listens on.
        let location = try PostgresLocation("postgres://keyward@127.0.0.1:9/keyward")
        let started = ContinuousClock.now
        do {
            _ = try await PostgresKeyStore.connect(location, password: nil, operationTimeout: .seconds(1))
            Issue.record("connected to a port nothing listens on")
        } catch {
            guard case .unavailable = error else { Issue.record("expected unavailable, got \(error)"); return }
        }
        #expect(started.duration(to: .now) < .seconds(10))
    }

    @Test("two nodes migrating an empty database at the same moment both start; each migration is applied once", .enabled(if: StoreBackend.serverURL != nil || StoreBackend.postgresRequired))
    func concurrentMigrations() async throws {
        let database = try await StoreBackend.postgres.makeDatabase()
        defer { database.remove() }
        async let one = database.open()
        async let two = database.open()
        async let three = database.open()
        _ = try await (one, two, three)
        // One row per migration: none applied twice.
        #expect(try await database.scalar("SELECT count(*) FROM keyward_migrations") == "5")
        #expect(try await database.scalar("SELECT count(DISTINCT version) FROM keyward_migrations") == "5")
        #expect(try await database.scalar("SELECT value FROM store_generation") == "0")
    }

    @Test("a database migrated by a newer Keyward is refused with unavailable, naming both versions", .enabled(if: StoreBackend.serverURL != nil || StoreBackend.postgresRequired))
    func newerSchemaRefused() async throws {
        let database = try await StoreBackend.postgres.makeDatabase()
        defer { database.remove() }
        _ = try await database.open()
        try await database.execute("INSERT INTO keyward_migrations (version, name) VALUES (999, 'from the future')")
        do {
            _ = try await database.open()
            Issue.record("a schema from a newer Keyward was accepted")
        } catch let error as StorageError {
            guard case .unavailable(let message) = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(message.contains("999") && message.contains("upgrade"), "\(message)")
        }
    }
}
