import Foundation
import Hummingbird
import HummingbirdCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// HTTP/1.1 (plain with `--insecure-http`, or behind TLS from `HTTPSConnection`) served straight
/// from NIO's channel pipeline: each request is read whole in a channel handler, answered by the
/// router in a task that runs on the connection's event loop, and written back from there.
///
/// Hummingbird's own HTTP/1 channel passes every request part and response part through an
/// async-sequence bridge (`NIOAsyncChannel`) and a task on the global pool; profiled, that bridge
/// and its thread hops were a third of an audited request's CPU (decision 0014). The router,
/// the middleware and every route are the same ones either way; only the transport differs.
///
/// Invariants:
/// - One request at a time per connection, answered in order: pipelined requests wait in the
///   handler, and reading pauses while any wait.
/// - A body declared larger than `maxBodyBytes` (`Content-Length`) is refused with 413 (in the
///   shape of the front end the request is for, `ErrorShape`) as soon as its head arrives, and
///   one that grows past it (chunked) as soon as it does; either way the connection closes
///   without the rest being read. `Expect: 100-continue` is answered `100
///   Continue` for a body within the limit, and 413 for one past it, before the client sends it.
/// - `TransportLimits`: at most `maxConnections` at once; an idle connection closes after
///   `idleTimeout`, a request that takes longer than `requestReadTimeout` to arrive (a slowloris
///   client) after that, and a head longer than `maxHeaderBytes` at once (`ReadDeadlineHandler`
///   for a head across reads, the parser's limits for one in a single read); a body, however
///   it arrives, never counts as head.
/// - HTTP/1.0 connections close after each response unless the client asked for keep-alive.
/// - Malformed HTTP gets a 400 and the connection closes (NIO's protocol error handler).
/// - `Connection: close` closes the connection after its response; otherwise it stays open.
/// - On graceful shutdown, or when the client closes its side, an idle connection closes at once
///   and a busy one after the requests it has received are answered.
struct HTTP1Connection: ServerChildChannel {
    /// The connection's channel, which the server holds until it closes.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
    }

    let responder: RouterResponder<KeywardRequestContext>
    let maxBodyBytes: Int
    let limits: TransportLimits
    let logger: Logger
    /// Transit's path prefix (`/v1/<mount>/`): the transport's own refusals of its requests are
    /// Transit-shaped (`ErrorShape`).
    var transitPrefix = ErrorShape.defaultTransitPrefix
    /// True behind TLS (`HTTPSConnection`, which counts the connection itself): requests are
    /// marked `https`.
    var secure = false

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        if !secure, !limits.open.admit(channel, limit: limits.maxConnections) {
            return channel.eventLoop.makeFailedFuture(ConnectionLimitReached())
        }
        return channel.eventLoop.makeCompletedFuture {
            let executor = EventLoopTaskExecutor(channel.eventLoop)
            let deadline = ConnectionDeadline(limits: limits)
            let listMethod = ListMethodRewriter()
            try channel.pipeline.syncOperations.addHandler(ReadDeadlineHandler(deadline: deadline))
            try channel.pipeline.syncOperations.addHandler(listMethod)
            // The parser holds a head that arrives whole in one read to the head-size limit too.
            var parserLimits = NIOHTTPDecoderLimitConfiguration()
            parserLimits.maxHeaderFieldSize = limits.maxHeaderBytes
            parserLimits.maxHeaderListSize = limits.maxHeaderBytes
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: true, withOutboundHeaderValidation: false,
                withEncoderConfiguration: HTTPResponseEncoder.Configuration(), withDecoderLimitConfiguration: parserLimits)
            try channel.pipeline.syncOperations.addHandler(HTTP1RequestHandler(
                responder: responder, executor: executor, maxBodyBytes: maxBodyBytes, deadline: deadline, listMethod: listMethod,
                secure: secure, transitPrefix: transitPrefix, logger: self.logger))
            return Value(channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}

/// Reads one request (head, body, end) from NIO's HTTP/1 decoder, answers it through the router
/// on the loop's executor, and writes the response to NIO's encoder. Lives on one event loop;
/// `respond` hops back to it to write.
///
/// It converts between NIO's HTTP/1 parts and HTTP types itself (`RequestHeadConversion`), in
/// the same way as NIO's `HTTP1ToHTTPServerCodec`, rather than through that codec as a pipeline
/// stage of its own: each stage costs every request part a type-erased hop each way.
final class HTTP1RequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: RouterResponder<KeywardRequestContext>
    private let executor: EventLoopTaskExecutor
    private let maxBodyBytes: Int
    private let deadline: ConnectionDeadline
    /// Which requests' `LIST` method reached the parser as `LINK`.
    private let listMethod: ListMethodRewriter
    /// Requests arrive over TLS: their scheme is `https`.
    private let secure: Bool
    /// Transit's path prefix: the transport's refusals of its requests are Transit-shaped.
    private let transitPrefix: String
    private let logger: Logger
    /// The request being read, if its head has arrived and its end has not.
    private var head: HTTPRequest?
    private var body = ByteBuffer()
    /// A request is being answered; later ones wait in `waiting`, in order.
    private var answering = false
    private var waiting = CircularBuffer<Request>()
    /// A read the channel asked for while requests were waiting: reading resumes once they are answered.
    private var readHeld = false
    /// Graceful shutdown began, or the client closed its side: close once nothing is left to answer.
    private var closingWhenIdle = false
    /// The request being read was refused by the transport (413): the rest of it is ignored.
    private var refused = false
    /// A 413 to write once the request being answered is answered.
    private var pendingRefusal: (() -> Void)?

    init(responder: RouterResponder<KeywardRequestContext>, executor: EventLoopTaskExecutor, maxBodyBytes: Int, deadline: ConnectionDeadline,
         listMethod: ListMethodRewriter, secure: Bool, transitPrefix: String, logger: Logger) {
        self.responder = responder
        self.executor = executor
        self.maxBodyBytes = maxBodyBytes
        self.deadline = deadline
        self.listMethod = listMethod
        self.secure = secure
        self.transitPrefix = transitPrefix
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            deadline.headReceived()
            refused = false
            var head: HTTPRequest
            do {
                head = try RequestHeadConversion.request(from: received, secure: secure)
                if listMethod.takeRewritten(), received.method == .LINK { head.method = ListMethodRewriter.listMethod }
            } catch {
                // A method HTTP types cannot carry: nothing more can be read in order.
                refused = true
                errorCaught(context: context, error: error)
                return
            }
            if let length = head.headerFields[.contentLength].flatMap({ Int($0) }), length > maxBodyBytes {
                refuseBody(head, context: context)
                return
            }
            if let expect = head.headerFields[.expect], expect.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(HTTPResponse(status: .continue)))), promise: nil)
            }
            self.head = head
            body.clear()
        case .body(let part):
            guard !refused, let head else { return }
            guard body.readableBytes + part.readableBytes <= maxBodyBytes else {
                refuseBody(head, context: context)
                return
            }
            body.writeImmutableBuffer(part)
        case .end:
            guard !refused, let head else { return }
            deadline.requestEnded()
            self.head = nil
            let request = Request(head: head, body: RequestBody(buffer: body))
            body = ByteBuffer()
            if answering {
                waiting.append(request)
            } else {
                answering = true
                respond(to: request, context: context)
            }
        }
    }

    /// Refuses `head`'s body past `maxBodyBytes` without reading the rest of it, in the shape of
    /// the front end it is for (`ErrorShape`: 413, or AWS's 400 `ValidationException`), once the
    /// requests before it are answered, and closes the connection.
    private func refuseBody(_ head: HTTPRequest, context: ChannelHandlerContext) {
        refused = true
        self.head = nil
        body = ByteBuffer()
        let shape = ErrorShape.of(method: head.method, path: head.path ?? "/", transitPrefix: transitPrefix)
        let (status, fields, text) = APIError.bodyTooLarge(maxBodyBytes).rendered(as: shape, requestID: nil)
        var response = HTTPResponse(status: status, headerFields: fields)
        response.headerFields[.contentLength] = String(text.count)
        response.headerFields[.connection] = "close"
        response.headerFields[.date] = HTTPDate.now
        let write = { [self] in
            context.write(wrapOutboundOut(.head(HTTPResponseHead(response))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
        if answering {
            // The response to the request before it comes first; then this one, then close.
            closingWhenIdle = true
            pendingRefusal = write
        } else {
            write()
        }
    }

    /// Reads go on while one request is answered (a client that waits for each response sends
    /// nothing more, and stopping and restarting reads would cost two `epoll_ctl` calls per
    /// request); they pause only while pipelined requests wait, so the queue stays bounded.
    func read(context: ChannelHandlerContext) {
        if waiting.isEmpty {
            context.read()
        } else {
            readHeld = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Requests already received are answered; one half-received is read and answered too.
            closingWhenIdle = true
            if !answering && head == nil { context.close(promise: nil) }
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // Nothing more will arrive: answer what is complete (a half-received request cannot be).
            closingWhenIdle = true
            if !answering { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// A malformed request (NIO's error handler has already answered 400 when it could) or a
    /// failed connection: nothing more can be read in order, so the connection closes.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Runs the router for `request` on the loop's executor, then writes its response.
    private func respond(to request: Request, context: ChannelHandlerContext) {
        let channel = context.channel
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let responder = self.responder
        let logger = self.logger
        let close = Self.wantsClose(request.head)
        Task(executorPreference: executor) {
            let response = await responder.response(to: request, channel: channel, logger: logger)
            let bodyBytes: ByteBuffer
            do {
                let collector = ResponseCollector(allocator: channel.allocator)
                try await response.body.write(collector.writer)
                bodyBytes = collector.buffer
            } catch {
                logger.error("response body could not be produced", metadata: ["error": .string(String(describing: type(of: error)))])
                loop.execute { bound.value.context.close(promise: nil) }
                return
            }
            var head = response.head
            // No Content-Length on a response that cannot have a body (RFC 9110, 8.6).
            head.headerFields[.contentLength] = head.status == .noContent || head.status.kind == .informational
                ? nil : String(bodyBytes.readableBytes)
            let body: ByteBuffer? = request.method == .head ? nil : bodyBytes
            // On the loop already (the task's executor); `execute` queues without a wake-up.
            loop.execute { bound.value.handler.finish(head, body: body, close: close, context: bound.value.context) }
        }
    }

    /// Writes a response, then answers the next waiting request, resumes reading, or closes.
    private func finish(_ head: HTTPResponse, body: ByteBuffer?, close: Bool, context: ChannelHandlerContext) {
        let last = close || (closingWhenIdle && waiting.isEmpty)
        var head = head
        if last { head.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(head))), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        if let refusal = pendingRefusal, waiting.isEmpty {
            pendingRefusal = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            refusal()
            return
        }
        if last {
            waiting.removeAll()
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if let next = waiting.popFirst() {
            respond(to: next, context: context)
        } else {
            answering = false
            deadline.wentIdle()
            if readHeld {
                readHeld = false
                context.read()
            }
        }
    }

    /// True when the client asked to close after this request.
    static func wantsClose(_ head: HTTPRequest) -> Bool {
        guard let value = head.headerFields[.connection] else { return false }
        return value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
    }
}

/// NIO's HTTP/1 request head as an HTTP-types request, as `HTTP1ToHTTPServerCodec` converts it,
/// after one rule of HTTP/1.0 that conversion would lose with the version: an HTTP/1.0 connection
/// stays open only when the client asks (`Connection: keep-alive`), so every other HTTP/1.0
/// request is marked `Connection: close` and its connection closes after the response.
enum RequestHeadConversion {
    /// Throws when the method is not one HTTP types can carry.
    static func request(from head: HTTPRequestHead, secure: Bool) throws -> HTTPRequest {
        var head = head
        if head.version.major == 1, head.version.minor == 0,
           !head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "keep-alive" }) {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        return try HTTPRequest(head, secure: secure, splitCookie: false)
    }
}

/// The server already holds `TransportLimits.maxConnections` connections.
struct ConnectionLimitReached: Error {}

extension RouterResponder<KeywardRequestContext> {
    /// The router's answer to `request` on `channel`, with the `Date` header; a 500 in the one
    /// case `ErrorResponseMiddleware` cannot turn an error into the API's JSON error (no
    /// response could be built at all). Both transports answer through here.
    func response(to request: Request, channel: any Channel, logger: Logger) async -> Response {
        let context = KeywardRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
        var response: Response
        do {
            response = try await respond(to: request, context: context)
        } catch {
            logger.error("request failed without a response", metadata: ["error": .string(String(describing: type(of: error)))])
            response = Response(status: .internalServerError)
        }
        response.headers[.date] = HTTPDate.now
        return response
    }
}

/// Gathers a response body into one buffer (every Keyward response is a small JSON or text
/// document built in memory). A class, so the bytes outlive the writer `ResponseBody` consumes.
final class ResponseCollector {
    var buffer: ByteBuffer

    init(allocator: ByteBufferAllocator) { buffer = allocator.buffer(capacity: 0) }

    var writer: Writer { Writer(collector: self) }

    struct Writer: ResponseBodyWriter {
        let collector: ResponseCollector
        mutating func write(_ part: ByteBuffer) async throws { collector.buffer.writeImmutableBuffer(part) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}

/// The `Date` header value (RFC 9110 IMF-fixdate), formatted at most once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Now, as `Sun, 06 Nov 1994 08:49:37 GMT`.
    static var now: String {
        let second = Int(time(nil))
        return cache.withLock { cached in
            if cached.second != second { cached = (second, format(second)) }
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var t = time_t(second)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
