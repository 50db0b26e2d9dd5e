import Foundation
import KeywardServer
import Testing

/// `keyward serve --dev` serves the certificate an earlier run wrote again only when it still can.
@Suite("Development certificates")
struct DevelopmentPKITests {
    @Test("A certificate an earlier run wrote is reused only while its key matches, it names the host and it has a day left")
    func reuse() throws {
        let pki = try DevelopmentPKI(days: 30)
        let issued = try pki.issueServer(hosts: ["127.0.0.1", "kms.test"])
        let chain = issued.certificatePEM + "\n" + pki.caCertificatePEM
        let reused = try #require(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: issued.privateKeyPEM, hosts: ["kms.test"]))
        #expect(reused.fingerprint == issued.fingerprint && reused.der == issued.der)
        #expect(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: issued.privateKeyPEM, hosts: ["127.0.0.1", "localhost"]) != nil)

        let other = try pki.issueServer()
        #expect(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: other.privateKeyPEM, hosts: []) == nil, "another certificate's key")
        #expect(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: issued.privateKeyPEM, hosts: ["10.0.0.8"]) == nil, "a host it does not name")
        #expect(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: issued.privateKeyPEM, hosts: [],
                                              now: Date().addingTimeInterval(29.5 * 86_400)) == nil, "less than a day left")
        #expect(DevelopmentPKI.reusableServer(certificatePEM: "not a certificate", privateKeyPEM: issued.privateKeyPEM, hosts: []) == nil)
        #expect(DevelopmentPKI.reusableServer(certificatePEM: chain, privateKeyPEM: "not a key", hosts: []) == nil)
    }
}
