import Foundation
import KeywardCrypto
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// HTTP/1.1 over TLS to one server whose leaf certificate must carry a pinned SHA-256
/// fingerprint, checked in every TLS handshake, on every connection.
///
/// AsyncHTTPClient verifies chains but offers no per-connection hook, so `.pinnedFingerprint`
/// uses this transport instead: NIOSSL's custom verification callback sees the chain the server
/// presents and accepts it only when its first certificate (the leaf) hashes to the pin. Nothing
/// else is trusted: not the chain's CA, not the system roots, and no certificate is fetched once
/// and trusted after. Idle connections are kept for reuse while the server keeps them alive.
final class PinnedTransport: Sendable {
    /// A response read in full.
    struct Response: Sendable {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        var body: ByteBuffer
    }

    private let host: String
    private let port: Int
    private let context: NIOSSLContext
    private let pin: String
    private let idle = NIOLockedValueBox<[any Channel]>([])
    private let closed = NIOLockedValueBox(false)

    /// The largest response body read, as AsyncHTTPClient's path allows.
    static let maximumBody = 64 * 1024 * 1024

    /// A transport to `url`'s host and port, pinned to `fingerprint` (64 hex digits, colons
    /// optional). `identity` adds a client certificate and key for mTLS.
    init(url: URL, fingerprint: String, identity: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)?) throws(KeywardClientError) {
        let hex = fingerprint.lowercased().filter { $0 != ":" }
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
            throw .configuration("a SHA-256 fingerprint is 64 hex digits (colons optional)")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        // Peer verification on, so that the handshake asks the callback below, which replaces
        // the chain and name checks: the pin is the whole of the trust. (With `.none` NIOSSL
        // would not ask it, and any certificate would pass.)
        tls.certificateVerification = .noHostnameVerification
        if let identity {
            tls.certificateChain = identity.chain.map { .certificate($0) }
            tls.privateKey = .privateKey(identity.key)
        }
        do { context = try NIOSSLContext(configuration: tls) } catch {
            throw .configuration("TLS material: \(error)")
        }
        host = url.host ?? "localhost"
        port = url.port ?? 443
        pin = hex
    }

    /// Sends one request and reads its whole response, within `timeout`.
    func execute(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer?, timeout: Duration) async throws -> Response {
        let channel = try await connection()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: port == 443 ? host : "\(host):\(port)")
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        let promise = channel.eventLoop.makePromise(of: Response.self)
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) {
            promise.fail(KeywardClientError.transport("no response within \(timeout)"))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(PinnedExchange(head: head, body: body, response: promise), promise: nil)
        do {
            let response = try await promise.futureResult.get()
            deadline.cancel()
            let keepAlive = response.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" } == false
            if keepAlive && channel.isActive { release(channel) } else { channel.close(promise: nil) }
            return response
        } catch {
            deadline.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    /// Opens a connection now, so that a wrong pin or an unreachable server shows at once; the
    /// connection is kept for the first request.
    func probe() async throws(KeywardClientError) {
        do { release(try await connection()) } catch let error as KeywardClientError {
            throw error
        } catch {
            throw .transport("cannot connect to \(host):\(port): \(error)")
        }
    }

    /// Closes the idle connections; later calls fail.
    func shutdown() async {
        closed.withLockedValue { $0 = true }
        let channels = idle.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }

    private func release(_ channel: any Channel) {
        let keep = closed.withLockedValue { !$0 }
        guard keep else { channel.close(promise: nil); return }
        idle.withLockedValue { $0.append(channel) }
    }

    /// An idle connection that is still open, or a new one whose handshake passed the pin.
    private func connection() async throws -> any Channel {
        guard closed.withLockedValue({ !$0 }) else { throw KeywardClientError.configuration("the client was shut down") }
        while let channel = idle.withLockedValue({ $0.popLast() }) {
            if channel.isActive { return channel }
        }
        let context = context
        let pin = pin
        let serverName = Self.isAddress(host) ? nil : host
        let handshake = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                let done = channel.eventLoop.makePromise(of: Void.self)
                handshake.withLockedValue { $0 = done }
                return channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName) { chain, verdict in
                        guard let leaf = chain.first, let der = try? leaf.toDERBytes(), SHA256Hash.hex(der) == pin else {
                            verdict.succeed(.failed)
                            return
                        }
                        verdict.succeed(.certificateVerified)
                    }
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PinnedExchangeHandler(handshake: done))
                }
            }
            .connect(host: host, port: port).get()
        do {
            try await handshake.withLockedValue { $0 }?.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw KeywardClientError.configuration("the server's certificate does not match the pinned fingerprint (\(error))")
        }
        return channel
    }

    private static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}

/// One request and the promise of its response.
struct PinnedExchange: Sendable {
    let head: HTTPRequestHead
    let body: ByteBuffer?
    let response: EventLoopPromise<PinnedTransport.Response>
}

/// Writes one exchange at a time and completes it with the response it reads; reports the TLS
/// handshake's outcome. Owns the channel's in-flight exchange.
final class PinnedExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = PinnedExchange
    typealias OutboundOut = HTTPClientRequestPart

    private let handshake: EventLoopPromise<Void>
    private var handshakeDone = false
    private var pending: EventLoopPromise<PinnedTransport.Response>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(handshake: EventLoopPromise<Void>) { self.handshake = handshake }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard pending == nil else {
            exchange.response.fail(KeywardClientError.transport("a connection carries one request at a time"))
            return
        }
        pending = exchange.response
        head = nil
        body.clear()
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let payload = exchange.body, payload.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            head = received
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= PinnedTransport.maximumBody else {
                fail(KeywardClientError.invalidResponse("response body over \(PinnedTransport.maximumBody) bytes"))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            guard let received = head, let promise = pending else { return }
            pending = nil
            promise.succeed(.init(status: received.status, headers: received.headers, body: body))
            body = ByteBuffer()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { finishHandshake(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finishHandshake(error)
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishHandshake(ChannelError.ioOnClosedChannel)
        fail(KeywardClientError.transport("the server closed the connection"))
        context.fireChannelInactive()
    }

    private func finishHandshake(_ error: (any Error)?) {
        guard !handshakeDone else { return }
        handshakeDone = true
        if let error { handshake.fail(error) } else { handshake.succeed(()) }
    }

    private func fail(_ error: any Error) {
        pending?.fail(error)
        pending = nil
    }
}
