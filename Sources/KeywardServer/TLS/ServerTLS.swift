import Foundation
import Keyward
import KeywardCrypto
import NIOSSL

/// The server's TLS configuration: TLS 1.2 and up, HTTP/2 and HTTP/1.1 by ALPN, and, with a
/// client CA, mutual TLS (a client without a certificate from that CA fails the handshake).
enum ServerTLS {
    static func configuration(_ settings: ServerConfiguration.TLSSettings) throws(KeywardError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(settings.certificate) } catch {
            throw .invalidArgument("cannot read the TLS certificate \(settings.certificate): \(error)")
        }
        guard !chain.isEmpty else { throw .invalidArgument("\(settings.certificate) holds no PEM certificate") }
        // The key's file passes the secret-file checks (the owner's alone, not a link).
        var pem = try SecretFile.contents(settings.privateKey, "the TLS private key") { KeywardError.invalidArgument($0) }
        defer { SecureZero.wipe(&pem) }
        do { key = try NIOSSLPrivateKey(bytes: pem, format: .pem) } catch {
            throw .invalidArgument("cannot read the TLS private key \(settings.privateKey): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if let ca = settings.clientCA {
            let roots: [NIOSSLCertificate]
            let pem = try ProtectedFile.contents(ca, "the client CA") { KeywardError.invalidArgument($0) }
            do { roots = try NIOSSLCertificate.fromPEMBytes(pem) } catch {
                throw .invalidArgument("cannot read the client CA \(ca): \(error)")
            }
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }
}
