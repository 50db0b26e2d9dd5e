import Foundation
import HTTPTypes
import NIOCore

/// Vault's `LIST` method over HTTP/1.1. Vault's clients list with it (hvac's `list_keys`, the Go
/// `api` package's `List`, `curl -X LIST`), but NIO's HTTP/1 parser (llhttp) knows a fixed set of
/// methods, and refuses any other as malformed. This handler, just before the parser, rewrites
/// the method of each request that is `LIST` to `LINK` (a method llhttp knows, of the same
/// length, that Keyward serves nowhere), and `HTTP1RequestHandler` turns that request's `LINK`
/// back into `LIST` (`takeRewritten`). A client's own `LINK` stays `LINK` (405).
///
/// To rewrite only methods, never a byte of a header or a body, it follows the framing of the
/// requests as the parser does: a head to its empty line, then a body of `Content-Length` bytes
/// (none without one). Anything it does not frame exactly as llhttp does (`Transfer-Encoding`,
/// a repeated or malformed `Content-Length`, a folded header line, `Upgrade`, `CONNECT`, a line
/// longer than it reads) ends rewriting on that connection: a later `LIST` there is refused as
/// malformed, as without this handler, and nothing else changes. The parser still decides what
/// is valid; this handler only ever changes the four bytes of a method that reads `LIST `.
///
/// Lives on one connection's event loop, as does `HTTP1RequestHandler`, which shares it.
final class ListMethodRewriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State: Equatable {
        /// Before a request's first byte (empty lines before a request line are skipped, as llhttp does).
        case requestStart
        /// In the request line, after the method was checked.
        case requestLine
        /// In a header line (or at its start).
        case headerLine
        /// In a body, with this many bytes left.
        case body(Int)
        /// Framing unknown: nothing more is rewritten on this connection.
        case passthrough
    }

    /// The method the parser's `LINK` is read as, for a rewritten request.
    static let listMethod = HTTPRequest.Method("LIST")!

    private static let list = Array("LIST ".utf8)
    private static let connect = Array("CONNECT ".utf8)
    /// The longest header line read whole (its name and value): longer ones matter only when
    /// they are one of the framing headers, which then ends rewriting.
    private static let maximumLine = 64

    private var state = State.requestStart
    /// Requests started so far on the connection, and the ordinals (1-based) of those whose
    /// `LIST` was rewritten and whose head the request handler has not taken yet.
    private var started = 0
    private var rewritten: [Int] = []
    /// Heads the request handler has taken (`takeRewritten`).
    private var heads = 0
    /// The start of a request that may read `LIST ` but has not fully arrived: held back until it has.
    private var held: ByteBuffer?
    /// The start of a header line that a read ended in the middle of (up to `maximumLine` bytes),
    /// and the length of all of it so far.
    private var partial: [UInt8] = []
    private var partialLength = 0
    /// The request being read: its `Content-Length`, if one came.
    private var contentLength: Int?

    /// Called for each request head the parser produces, in order: whether this request's `LIST`
    /// was rewritten to `LINK` (and so is to be read as `LIST`).
    func takeRewritten() -> Bool {
        heads += 1
        guard let first = rewritten.first, first == heads else { return false }
        rewritten.removeFirst()
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if state == .passthrough {
            context.fireChannelRead(data)
            return
        }
        if var start = held {
            held = nil
            start.writeBuffer(&buffer)
            buffer = start
        }
        let keep = scan(&buffer)
        if keep < buffer.readableBytes {
            held = buffer.getSlice(at: buffer.readerIndex + keep, length: buffer.readableBytes - keep)
            buffer.moveWriterIndex(to: buffer.readerIndex + keep)
        }
        if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        context.fireChannelInactive()
    }

    /// Follows the framing through `buffer`, rewriting each request's `LIST ` in place; returns
    /// how many bytes to pass on now (the rest is the start of a request that may be `LIST `).
    /// Runs for every read of every HTTP/1 request: it works on locals and finds line ends with
    /// `memchr`, so a request's head costs a few scans, not a step per byte.
    private func scan(_ buffer: inout ByteBuffer) -> Int {
        let base = buffer.readerIndex
        var rewrites: [Int] = []
        var keep = buffer.readableBytes
        var state = self.state
        buffer.withUnsafeReadableBytes { bytes in
            let count = bytes.count
            var index = 0
            scanning: while index < count {
                switch state {
                case .passthrough:
                    break scanning
                case .body(let left):
                    let taken = min(left, count - index)
                    index += taken
                    state = left == taken ? .requestStart : .body(left - taken)
                case .requestStart:
                    let byte = bytes[index]
                    if byte == 0x0D || byte == 0x0A {
                        index += 1
                        continue
                    }
                    let available = count - index
                    if available < Self.connect.count,
                       Self.isPrefix(bytes, from: index, length: available, of: Self.list) || Self.isPrefix(bytes, from: index, length: available, of: Self.connect) {
                        keep = index
                        break scanning
                    }
                    started += 1
                    contentLength = nil
                    partial.removeAll(keepingCapacity: true)
                    partialLength = 0
                    if Self.matches(bytes, at: index, Self.list) {
                        rewritten.append(started)
                        rewrites.append(index)
                    } else if Self.matches(bytes, at: index, Self.connect) {
                        state = .passthrough
                        break scanning
                    }
                    state = .requestLine
                case .requestLine:
                    guard let end = Self.lineFeed(bytes, from: index) else {
                        index = count
                        break
                    }
                    index = end + 1
                    state = .headerLine
                case .headerLine:
                    guard let end = Self.lineFeed(bytes, from: index) else {
                        let room = Self.maximumLine - partial.count
                        if room > 0 { partial.append(contentsOf: bytes[index..<min(count, index + room)]) }
                        partialLength += count - index
                        index = count
                        break
                    }
                    let line = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
                    index = end + 1
                    if partialLength > 0 {
                        let room = Self.maximumLine - partial.count
                        if room > 0 { partial.append(contentsOf: line.prefix(room)) }
                        partialLength += line.count
                        let whole = partialLength
                        state = partial.withUnsafeBytes { joined in
                            header(UnsafeRawBufferPointer(rebasing: joined[...]), length: whole)
                        }
                        partial.removeAll(keepingCapacity: true)
                        partialLength = 0
                    } else {
                        state = header(line, length: line.count)
                    }
                }
            }
        }
        self.state = state
        for offset in rewrites { buffer.setBytes("LINK".utf8, at: base + offset) }
        return keep
    }

    /// The state after one header line, `line` (all of it, CR included; or its first
    /// `maximumLine` bytes when it spanned reads, `length` being its whole length): the end of
    /// the head, a `Content-Length` kept, or the end of rewriting for anything this handler
    /// cannot frame as llhttp does.
    private func header(_ line: UnsafeRawBufferPointer, length: Int) -> State {
        var length = length
        var line = line
        if length == line.count, line.last == 0x0D {
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
            length -= 1
        }
        guard length > 0 else {
            let body = contentLength ?? 0
            return body > 0 ? .body(body) : .requestStart
        }
        guard let first = line.first, first != 0x20, first != 0x09, let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            // A folded line, one without a name, or a name longer than what was kept.
            return .passthrough
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        if Self.equalsIgnoringCase(name, "transfer-encoding") || Self.equalsIgnoringCase(name, "upgrade") {
            return .passthrough
        }
        guard Self.equalsIgnoringCase(name, "content-length") else { return .headerLine }
        guard length == line.count, contentLength == nil else { return .passthrough }
        var value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...])
        while let byte = value.first, byte == 0x20 || byte == 0x09 { value = UnsafeRawBufferPointer(rebasing: value.dropFirst()) }
        while let byte = value.last, byte == 0x20 || byte == 0x09 { value = UnsafeRawBufferPointer(rebasing: value.dropLast()) }
        guard !value.isEmpty, value.count <= 15, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .passthrough }
        contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return .headerLine
    }

    /// The index of the next LF in `bytes` from `start`, if any.
    private static func lineFeed(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, at index: Int, _ expected: [UInt8]) -> Bool {
        guard bytes.count - index >= expected.count else { return false }
        for offset in 0..<expected.count where bytes[index + offset] != expected[offset] { return false }
        return true
    }

    private static func isPrefix(_ bytes: UnsafeRawBufferPointer, from index: Int, length: Int, of expected: [UInt8]) -> Bool {
        guard length < expected.count else { return false }
        for offset in 0..<length where bytes[index + offset] != expected[offset] { return false }
        return true
    }

    /// Whether `bytes` is header name `name` (lowercase ASCII letters and `-`), in any case.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
        return true
    }
}
