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
}

/// Where one HTTP/1 connection stands, for its deadlines: shared by `ReadDeadlineHandler`
/// (bytes arriving) and `HTTP1RequestHandler` (a head parsed, a request complete, the last
/// response written), both on the connection's event loop. Transitions only record a deadline;
/// one timer per connection checks it twice a second, so a request costs no timer of its own.
final class ConnectionDeadline {
    enum State { case idle, readingHead, readingBody, answering }

    let limits: TransportLimits
    private(set) var state = State.idle
    private(set) var deadline: NIODeadline
    private var headBytes = 0

    init(limits: TransportLimits) {
        self.limits = limits
        deadline = .now() + limits.idleTimeout
    }

    /// Bytes arrived: the first of a new request (while idle or answering) starts its read deadline.
    func received() {
        if state == .idle || state == .answering {
            state = .readingHead
            headBytes = 0
            deadline = .now() + limits.requestReadTimeout
        }
    }

    /// The parser has read `count` more bytes. False when they leave a head still unfinished and
    /// longer than `maxHeaderBytes`. Bytes that finished a head, and all after them, are not a
    /// head's: a read that brings a head and the body after it counts for nothing here (the
    /// parser's own limit, `HTTP1Connection`, holds that head to `maxHeaderBytes`).
    func parsed(_ count: Int) -> Bool {
        guard state == .readingHead else { return true }
        headBytes += count
        return headBytes <= limits.maxHeaderBytes
    }

    /// The request's head has been parsed: the head-size limit no longer applies. A pipelined
    /// head that arrived with the end of the request before it (the state still `answering`)
    /// starts its read deadline here, so its body is not taken for the head of another request.
    func headReceived() {
        switch state {
        case .readingHead:
            state = .readingBody
        case .answering:
            state = .readingBody
            deadline = .now() + limits.requestReadTimeout
        case .idle, .readingBody:
            break
        }
    }
    /// The request's last byte has arrived: no deadline while the server works on it.
    func requestEnded() { state = .answering }
    /// Every response has been written: the connection waits for its next request, unless one
    /// has begun to arrive meanwhile (pipelined), whose read deadline and head limit stand.
    func wentIdle() {
        guard state == .answering else { return }
        state = .idle
        deadline = .now() + limits.idleTimeout
    }

    /// Whether the connection has overstayed its current deadline.
    var expired: Bool { state != .answering && NIODeadline.now() > deadline }
}

/// Enforces a connection's idle and request-read deadlines and head-size limit
/// (`ConnectionDeadline`) on raw bytes, before the HTTP decoder.
final class ReadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadline: ConnectionDeadline
    private var check: RepeatedTask?

    init(deadline: ConnectionDeadline) { self.deadline = deadline }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let deadline = NIOLoopBound(self.deadline, eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { task in
            if deadline.value.expired {
                task.cancel()
                channel.close(promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        deadline.received()
        // The parser reads the bytes first (synchronously), so that a head finished in them
        // is known before they are counted against the head-size limit.
        context.fireChannelRead(data)
        if !deadline.parsed(count) {
            // Past the largest head the server accepts: nothing more is read.
            context.close(promise: nil)
        }
    }
}
