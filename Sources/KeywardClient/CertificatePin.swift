import KeywardCrypto
import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import NIOTLS
import NIOSSL

/// Checks a server's certificate against a SHA-256 fingerprint pin over a first TLS handshake
/// that accepts nothing else, and returns the root of the chain the server presented (the leaf
/// itself when it is self-signed), which the client then trusts alone.
///
/// For `keyward serve --dev` the root is a CA whose private key exists only inside the server
/// process, so trusting it amounts to trusting that server. Against a certificate from a public
/// CA, prefer `.certificateAuthority` with a private CA: NIOSSL cannot pin a leaf per connection.
enum CertificatePin {
    static func fetch(url: URL, fingerprint: String) async throws -> NIOSSLCertificate {
        let expected = fingerprint.lowercased().filter { $0.isHexDigit }
        guard expected.count == 64 else { throw KeywardClientError.configuration("a SHA-256 fingerprint is 64 hex digits") }
        let host = url.host ?? "localhost"
        let port = url.port ?? 443
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let context = try NIOSSLContext(configuration: tls)
        let found = NIOLockedValueBox<NIOSSLCertificate?>(nil)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let handshake = loop.makePromise(of: Void.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
                        guard let leaf = certificates.first, let der = try? leaf.toDERBytes(),
                              SHA256Hash.hex(der) == expected else {
                            promise.succeed(.failed)
                            return
                        }
                        found.withLockedValue { $0 = certificates.last }
                        promise.succeed(.certificateVerified)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(promise: handshake))
                }
            }
            .connect(host: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw KeywardClientError.transport("cannot connect to \(host):\(port) to check the pinned certificate: \(error)")
        }
        defer { channel.close(promise: nil) }
        do { try await handshake.futureResult.get() } catch {
            throw KeywardClientError.configuration("the server's certificate does not match the pinned fingerprint (\(error))")
        }
        guard let certificate = found.withLockedValue({ $0 }) else {
            throw KeywardClientError.configuration("the server's certificate does not match the pinned fingerprint")
        }
        return certificate
    }
}

/// Completes when the TLS handshake does, or fails with the connection.
private final class HandshakeWaiter: ChannelInboundHandler {
    typealias InboundIn = Any
    let promise: EventLoopPromise<Void>
    private var done = false

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    private func finish(_ error: (any Error)?) {
        guard !done else { return }
        done = true
        if let error { promise.fail(error) } else { promise.succeed(()) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { finish(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}
