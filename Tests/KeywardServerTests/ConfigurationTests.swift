import Foundation
import Keyward
import KeywardServer
import Testing

@Suite("Server configuration")
struct ConfigurationTests {
    /// Writes `yaml` to a temporary file and returns its path.
    private func file(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-config-\(UUID().uuidString).yaml").path
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("the file is read, the environment overrides it and flags override both")
    func layers() async throws {
        let path = try file("""
            host: 0.0.0.0
            port: 9443
            tls:
              certificate: chain.pem
              privateKey: key.pem
              clientCA: clients.pem
              clientPolicies:
                - "CN=Clients CA,O=Example | CN=billing,O=Example => encrypt,decrypt:alias=billing/*"
                - "CN=Clients CA,O=Example | CN=billing,O=Example => describe:alias=billing/*"
                - "CN=Clients CA,O=Example | CN=api.example.com => encrypt:*"
            rateLimit: {requestsPerSecond: 100, burst: 200}
            cache: {capacity: 50, ttlSeconds: 60}
            logLevel: info
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try await ServerConfiguration.read(file: path)
        #expect(fromFile.host == "0.0.0.0" && fromFile.port == 9443 && fromFile.tls?.clientCA == "clients.pem")
        #expect(fromFile.rateLimit == .init(requestsPerSecond: 100, burst: 200) && fromFile.cache == .init(capacity: 50, ttlSeconds: 60))
        try fromFile.validate()
        // A subject with dots and commas stays one subject, and its rules accumulate.
        #expect(try fromFile.certificatePolicies()["CN=Clients CA,O=Example | CN=billing,O=Example"]?.rules.count == 2)
        #expect(try fromFile.certificatePolicies()["CN=Clients CA,O=Example | CN=api.example.com"]?.rules.count == 1)

        let environment = ["KEYWARD_PORT": "10443", "KEYWARD_LOG_LEVEL": "warning", "KEYWARD_RATE_LIMIT_REQUESTS_PER_SECOND": "0",
                           "KEYWARD_TLS_CLIENT_CA": "other.pem", "KEYWARD_CACHE_TTL_SECONDS": "30", "KEYWARD_TOKEN": "not a setting"]
        let layered = try await ServerConfiguration.read(file: path, environment: environment)
        #expect(layered.port == 10443 && layered.logLevel == "warning" && layered.rateLimit.requestsPerSecond == 0)
        #expect(layered.tls?.clientCA == "other.pem" && layered.tls?.certificate == "chain.pem" && layered.cache.ttlSeconds == 30 && layered.host == "0.0.0.0")

        let flagged = try await ServerConfiguration.read(file: path, environment: environment, flags: ["port": "11443", "insecureHTTP": "true"])
        #expect(flagged.port == 11443 && flagged.insecureHTTP && flagged.logLevel == "warning")

        let defaults = try await ServerConfiguration.read()
        #expect(defaults == ServerConfiguration())
    }

    @Test("attack: a configuration file group or others can write (they could grant themselves keys through tls.clientPolicies) is refused; a read-only one, and a link to it, are read")
    func writableConfigurationRefused() async throws {
        let path = try file("port: 9443\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        for mode in [0o666, 0o620, 0o602] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            do {
                _ = try await ServerConfiguration.read(file: path)
                Issue.record("mode \(String(mode, radix: 8)) was read")
            } catch {
                #expect(error.description.contains("chmod go-w"), "\(error)")
            }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        // Another user's file (they could rewrite it), and a directory, are refused too.
        if geteuid() == 0 {
            try FileManager.default.setAttributes([.ownerAccountID: 65534], ofItemAtPath: path)
            await #expect(throws: KeywardError.self) { _ = try await ServerConfiguration.read(file: path) }
            do { _ = try await ServerConfiguration.read(file: path) } catch { #expect(error.description.contains("belongs to user 65534"), "\(error)") }
            try FileManager.default.setAttributes([.ownerAccountID: 0], ofItemAtPath: path)
        }
        do {
            _ = try await ServerConfiguration.read(file: FileManager.default.temporaryDirectory.path)
            Issue.record("a directory was read as a configuration file")
        } catch {
            #expect(error.description.contains("not a regular file"), "\(error)")
        }
        let link = path + ".link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        defer { try? FileManager.default.removeItem(atPath: link) }
        #expect(try await ServerConfiguration.read(file: link).port == 9443)
    }

    @Test("unknown keys, values of the wrong type, half a TLS pair and broken YAML are refused with the setting's name")
    func refusals() async throws {
        let refusals: [(String, String)] = [
            ("prot: 1", "unknown setting 'prot'"),
            ("tls: {certificate: a.pem, privateKey: b.pem, clientCa: c.pem}", "unknown setting 'tls.clientCa'"),
            ("port: eighty", "port must be an integer"),
            ("port: [1, 2]", "port must be an integer"),
            ("insecureHTTP: maybe", "insecureHTTP must be true or false"),
            ("host: [a, b]", "host must be a string"),
            ("tls: {certificate: a.pem}", "needs both certificate and privateKey"),
            ("- a list", "top level must be a mapping"),
            ("port: [", "not valid YAML"),
        ]
        for (yaml, message) in refusals {
            let path = try file(yaml)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try await ServerConfiguration.read(file: path)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.description.contains(message), "\(yaml): \(error.description)")
            }
        }
        await #expect(throws: KeywardError.self) { _ = try await ServerConfiguration.read(environment: ["KEYWARD_PORT": "eighty"]) }
        await #expect(throws: KeywardError.self) { _ = try await ServerConfiguration.read(flags: ["port": "eighty"]) }
        await #expect(throws: KeywardError.self) { _ = try await ServerConfiguration.read(flags: ["prot": "1"]) }
        await #expect(throws: KeywardError.self) { _ = try await ServerConfiguration.read(file: "/nonexistent/keyward.yaml") }
    }

    @Test("the AWS front end's, the lease's and the backup keys' settings are read from the environment and validated")
    func clusterAWSAndBackupSettings() async throws {
        let read = try await ServerConfiguration.read(environment: [
            "KEYWARD_AWS_REGION": "eu-west-1", "KEYWARD_AWS_ACCOUNT_ID": "123456789012", "KEYWARD_AWS_CLOCK_SKEW_SECONDS": "60",
            "KEYWARD_LEASE_SECONDS": "5", "KEYWARD_VERIFY_INTERVAL_SECONDS": "0", "KEYWARD_FULL_VERIFY_INTERVAL_SECONDS": "3600",
            "KEYWARD_BACKUP_RECIPIENTS": "/a.pub;/b.pub", "KEYWARD_BACKUP_IDENTITY": "/id", "KEYWARD_BACKUP_SIGNERS": "/s.pem",
            "KEYWARD_TRANSIT_MOUNT": "vault-transit",
        ])
        #expect(read.transitMount == "vault-transit")
        #expect(read.aws == .init(region: "eu-west-1", accountID: "123456789012", clockSkewSeconds: 60))
        #expect(read.leaseSeconds == 5 && read.verifyIntervalSeconds == 0 && read.fullVerifyIntervalSeconds == 3600)
        #expect(ServerConfiguration().fullVerifyIntervalSeconds == 86_400)
        #expect(read.backup == .init(recipients: ["/a.pub", "/b.pub"], identity: "/id", signers: ["/s.pem"]))
        for bad in [{ (c: inout ServerConfiguration) in c.aws.region = "EU West" }, { $0.aws.accountID = "12345" }, { $0.aws.clockSkewSeconds = 0 },
                    { $0.leaseSeconds = 1 }, { $0.verifyIntervalSeconds = -1 }, { $0.fullVerifyIntervalSeconds = -1 }, { $0.fullVerifyIntervalSeconds = 2_592_001 }, { $0.transitMount = "keys" }, { $0.transitMount = "a/b" }] {
            var configuration = ServerConfiguration()
            configuration.insecureHTTP = true
            bad(&configuration)
            #expect(throws: KeywardError.self) { try configuration.validate() }
        }
    }

    @Test("validation refuses out-of-range values, a missing TLS setup, bad policy rules and an entry with no subject")
    func validation() throws {
        var invalid = ServerConfiguration()
        #expect(throws: KeywardError.self) { try invalid.validate() }   // no TLS and no --insecure-http
        invalid.insecureHTTP = true
        invalid.port = 70000
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.port = 1
        invalid.logLevel = "loud"
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.logLevel = "info"
        invalid.tls = .init(certificate: "a", privateKey: "b", clientCA: "c", clientPolicies: ["CN=CA | CN=x": ["encrypt:key=not-a-uuid"]])
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.tls = .init(certificate: "a", privateKey: "b", clientCA: "c", clientPolicies: ["": ["encrypt:*"]])
        #expect(throws: KeywardError.self) { try invalid.validate() }
        // A rule bound to a subject alone (no issuer) is refused.
        invalid.tls = .init(certificate: "a", privateKey: "b", clientCA: "c", clientPolicies: ["CN=x": ["encrypt:*"]])
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.tls = .init(certificate: "a", privateKey: "b", clientCA: "c", clientPolicies: ["CN=CA | CN=x": ["encrypt:*"]])
        try invalid.validate()
    }

    @Test("attack: plain HTTP on a non-loopback address is refused unless a second, explicit setting allows it")
    func insecureHTTPStaysOnLoopback() throws {
        var configuration = ServerConfiguration()
        configuration.insecureHTTP = true
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            configuration.host = host
            try configuration.validate()
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "192.168.1.1", "127.0.0.1.evil.example", "keyward.example.com"] {
            configuration.host = host
            do {
                try configuration.validate()
                Issue.record("plain HTTP allowed on \(host)")
            } catch {
                #expect(error.description.contains("not a loopback address"), "\(error.description)")
            }
        }
        configuration.insecureHTTPBeyondLoopback = true
        configuration.host = "0.0.0.0"
        try configuration.validate()
    }
}
