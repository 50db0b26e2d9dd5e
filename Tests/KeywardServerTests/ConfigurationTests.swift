import Foundation
import Keyward
import KeywardServer
import Testing

@Suite("Server configuration")
struct ConfigurationTests {
    @Test("YAML is read, then the environment overrides it; unknown keys, bad types and bad values are refused with the setting's name")
    func layers() throws {
        var configuration = try ServerConfiguration.parse(yaml: """
            host: 0.0.0.0
            port: 9443
            tls:
              certificate: chain.pem
              privateKey: key.pem
              clientCA: clients.pem
              clientPolicies:
                "CN=billing,O=Example": ["encrypt,decrypt:alias=billing/*"]
            rateLimit: {requestsPerSecond: 100, burst: 200}
            cache: {capacity: 50, ttlSeconds: 60}
            logLevel: info
            """)
        #expect(configuration.host == "0.0.0.0" && configuration.port == 9443 && configuration.tls?.clientCA == "clients.pem")
        #expect(configuration.rateLimit == .init(requestsPerSecond: 100, burst: 200) && configuration.cache == .init(capacity: 50, ttlSeconds: 60))
        try configuration.validate()
        #expect(try configuration.certificatePolicies()["CN=billing,O=Example"]?.rules.count == 1)
        try configuration.applyEnvironment(["KEYWARD_PORT": "10443", "KEYWARD_LOG_LEVEL": "warning", "KEYWARD_RATE_LIMIT": "0"])
        #expect(configuration.port == 10443 && configuration.logLevel == "warning" && configuration.rateLimit.requestsPerSecond == 0)

        let refusals: [(String, String)] = [
            ("prot: 1", "unknown setting 'prot'"),
            ("tls: {certificate: a.pem, privateKey: b.pem, clientCa: c.pem}", "unknown setting 'tls.clientCa'"),
            ("port: eighty", "port must be an integer"),
            ("tls: {certificate: a.pem}", "needs both certificate and privateKey"),
            ("- a list", "top level must be a mapping"),
            ("port: [", "not valid YAML"),
        ]
        for (yaml, message) in refusals {
            do {
                _ = try ServerConfiguration.parse(yaml: yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.description.contains(message), "\(yaml): \(error.description)")
            }
        }
        var invalid = ServerConfiguration()
        #expect(throws: KeywardError.self) { try invalid.validate() }   // no TLS and no --insecure-http
        invalid.insecureHTTP = true
        invalid.port = 70000
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.port = 1
        invalid.logLevel = "loud"
        #expect(throws: KeywardError.self) { try invalid.validate() }
        invalid.logLevel = "info"
        invalid.tls = .init(certificate: "a", privateKey: "b", clientPolicies: ["CN=x": ["encrypt:key=not-a-uuid"]])
        #expect(throws: KeywardError.self) { try invalid.validate() }
    }
}
