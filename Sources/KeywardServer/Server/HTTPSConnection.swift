import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// HTTPS: TLS, then ALPN picks the protocol. HTTP/1.1 (or no ALPN) is served by
/// `HTTP1Connection`'s pipeline, each request on the connection's event loop; HTTP/2 by
/// Hummingbird's HTTP/2 channel, one stream per request. Both run the same router.
///
/// Invariants: the TLS handler is first in every connection's pipeline, so nothing is read
/// before the handshake (and, with a client CA, the client's certificate) has been verified; a
/// connection that negotiates any protocol but `h2` or `http/1.1` is closed; a handshake and
/// negotiation that take longer than `TransportLimits.tlsHandshakeTimeout` close the
/// connection; connections past `maxConnections` are closed as they are accepted; an HTTP/2
/// connection with no open stream closes after `idleTimeout`; an HTTP/2 request's body is read
/// before routing, and answered 413 past `maxBodyBytes` and 408 when it takes longer than
/// `requestReadTimeout` (`HTTP2RequestBody`).
struct HTTPSConnection: ServerChildChannel {
    /// What the handshake chose, once it has completed.
    enum Negotiated: Sendable {
        case http1(HTTP1Connection.Value)
        case http2(HTTP2Channel.Value)
    }

    /// The connection and its negotiation's outcome.
    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    private let context: NIOSSLContext
    private let http1: HTTP1Connection
    private let http2: HTTP2Channel
    private let limits: TransportLimits

    /// TLS from `tls` (its ALPN list is set to `h2`, `http/1.1`), answering through `router`.
    init(tls: TLSConfiguration, router: RouterResponder<KeywardRequestContext>, maxBodyBytes: Int, limits: TransportLimits,
         transitPrefix: String = ErrorShape.defaultTransitPrefix, logger: Logger) throws {
        var tls = tls
        tls.applicationProtocols = ["h2", "http/1.1"]
        context = try NIOSSLContext(configuration: tls)
        self.limits = limits
        http1 = HTTP1Connection(responder: router, maxBodyBytes: maxBodyBytes, limits: limits, logger: logger, transitPrefix: transitPrefix, secure: true)
        let idle = Duration.nanoseconds(limits.idleTimeout.nanoseconds)
        let readTimeout = Duration.nanoseconds(limits.requestReadTimeout.nanoseconds)
        let reader = BodyReader(limit: maxBodyBytes)
        http2 = HTTP2Channel(responder: { request, writer, channel in
            let response: Response
            switch await HTTP2RequestBody.read(request, with: reader, within: readTimeout) {
            case .read(let read): response = await router.response(to: read, channel: channel, logger: logger)
            case .refused(let error): response = HTTP2RequestBody.response(error, to: request, transitPrefix: transitPrefix)
            case .unreadable: return
            }
            try await writer.write(response: response.head, body: response.body)
        }, configuration: .init(idleTimeout: idle))
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard limits.open.admit(channel, limit: limits.maxConnections) else {
            return channel.eventLoop.makeFailedFuture(ConnectionLimitReached())
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            let http1 = self.http1, http2 = self.http2
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).map { .http1($0) }
                case .negotiated:
                    return channel.close().flatMapThrowing { throw UnexpectedALPNProtocol() }
                }
            }
            try channel.pipeline.syncOperations.addHandler(negotiation)
            let deadline = channel.eventLoop.scheduleTask(in: limits.tlsHandshakeTimeout) { channel.close(promise: nil) }
            negotiation.protocolNegotiationResult.whenComplete { _ in deadline.cancel() }
            return Value(negotiated: negotiation.protocolNegotiationResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1(let connection): await http1.handle(value: connection, logger: logger)
            case .http2(let connection): await http2.handle(value: connection, logger: logger)
            }
        } catch {
            logger.debug("TLS or protocol negotiation failed", metadata: ["error": .string(String(describing: type(of: error)))])
        }
    }
}

/// ALPN settled on a protocol this server does not speak.
struct UnexpectedALPNProtocol: Error {}
