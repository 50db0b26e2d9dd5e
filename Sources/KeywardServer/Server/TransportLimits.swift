import NIOCore
import NIOHTTP1
import Synchronization

/// The limits every connection is held to, from `ServerConfiguration.limits`.
///
/// - `maxConnections`: connections open at once; one more is closed as soon as it is accepted.
/// - `idleTimeout`: how long a connection may wait for the first byte of its next request.
/// - `requestReadTimeout`: how long a request may take to arrive, from its first byte to its
///   last (a slowloris client that trickles its head or body is cut off after this).
/// - `tlsHandshakeTimeout`: how long a TLS handshake and protocol negotiation may take.
/// - `maxHeaderBytes`: the largest request head; a longer one closes the connection.
struct TransportLimits: Sendable {
    let maxConnections: Int
    let idleTimeout: TimeAmount
    let requestReadTimeout: TimeAmount
    let tlsHandshakeTimeout: TimeAmount
    let maxHeaderBytes: Int
    /// Connections open now, across the server.
    let open = ConnectionCounter()
}

/// Counts open connections against `TransportLimits.maxConnections`.
final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Takes a place for `channel` and gives it back when the channel closes; false (and the
    /// channel closed) when every place is taken.
    func admit(_ channel: any Channel, limit: Int) -> Bool {
        let now = count.add(1, ordering: .relaxed).newValue
        guard now <= limit else {
            count.subtract(1, ordering: .relaxed)
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in count.subtract(1, ordering: .relaxed) }
        return true
    }

    /// Connections open now.
    var current: Int { count.load(ordering: .relaxed) }
}

/// What the request handler tells `ReadDeadlineHandler` about the request in progress; sent as
/// outbound user events, which travel from the request handler towards the socket.
enum RequestProgress: Sendable {
    /// The request's head has been parsed: the head-size limit no longer applies.
    case headReceived
    /// The request's last byte has arrived: the server is working on it.
    case requestEnded
    /// The response has been written: the connection waits for the next request.
    case responseSent
}

/// Enforces the idle and request-read deadlines and the head-size limit on one HTTP/1
/// connection, on raw bytes, before the HTTP decoder. Lives on the connection's event loop.
final class ReadDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private enum State { case idle, readingHead, readingBody, answering }

    private let limits: TransportLimits
    private var state = State.idle
    private var headBytes = 0
    private var timer: Scheduled<Void>?

    init(limits: TransportLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(limits.idleTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytes
        switch state {
        case .idle, .answering:
            state = .readingHead
            headBytes = 0
            arm(limits.requestReadTimeout, context: context)
            fallthrough
        case .readingHead:
            headBytes += bytes
            if headBytes > limits.maxHeaderBytes {
                // Past the largest head the server accepts: nothing more is read.
                context.close(promise: nil)
                return
            }
        case .readingBody:
            break
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? RequestProgress else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch progress {
        case .headReceived:
            state = .readingBody
        case .requestEnded:
            state = .answering
            timer?.cancel()
            timer = nil
        case .responseSent:
            if state == .answering {
                state = .idle
                arm(limits.idleTimeout, context: context)
            }
        }
        promise?.succeed(())
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}

/// HTTP/1.0 keeps a connection open only when the client asks (`Connection: keep-alive`):
/// this marks every other HTTP/1.0 request `Connection: close`, so its connection closes after
/// the response. Sits between NIO's HTTP decoder and the HTTP-types codec, which drops the version.
final class HTTP10ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), head.version.major == 1, head.version.minor == 0 else {
            context.fireChannelRead(data)
            return
        }
        let keepAlive = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "keep-alive" }
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
