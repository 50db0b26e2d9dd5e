import Hummingbird
import HummingbirdCore
import NIOCore

/// The body of a request that arrived over HTTP/2, read in full before the router sees it,
/// within the limits `HTTP1Connection` holds an HTTP/1.1 request to on the wire: at most
/// `maxBodyBytes`, all of it within `requestReadTimeout` of the stream's head.
///
/// HTTP/2 carries many streams on one connection, so neither the connection's idle timeout nor
/// a deadline on the connection sees one stream that trickles or stalls its body; without this
/// such a stream held its handler, and what it had sent, for as long as its client liked, up to
/// the connection's stream limit on every connection.
enum HTTP2RequestBody {
    /// What reading the body came to.
    enum Outcome: Sendable {
        /// The request, its body now in memory.
        case read(Request)
        /// More than the limit arrived.
        case tooLarge
        /// The body did not end within the timeout.
        case timedOut
        /// The stream failed or was reset while its body was read.
        case unreadable
    }

    /// Reads `request`'s body, at most `limit` bytes, within `timeout`.
    static func read(_ request: Request, limit: Int, within timeout: Duration) async -> Outcome {
        if request.headers[.contentLength] == "0" { return .read(request) }
        let body = request.body
        let outcome = await withTaskGroup(of: Outcome?.self) { group -> Outcome in
            group.addTask {
                do {
                    var read = request
                    read.body = RequestBody(buffer: try await body.collect(upTo: limit))
                    return .read(read)
                } catch is NIOTooManyBytesError {
                    return .tooLarge
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    return .tooLarge
                } catch {
                    return .unreadable
                }
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return nil }
                return .timedOut
            }
            // The first to finish decides; the other is cancelled (a cancelled read of the
            // stream ends at once, as does the sleep).
            var first: Outcome = .unreadable
            if let finished = await group.next() { first = finished ?? .unreadable }
            group.cancelAll()
            return first
        }
        return outcome
    }

    /// The answer to a request whose body could not be read: 413 or 408 in the native API's
    /// shape (as `HTTP1Connection` answers a body past the limit before any route), or nil when
    /// the stream is gone and nothing can be answered.
    static func refusal(_ outcome: Outcome, limit: Int, timeout: Duration) -> Response? {
        let error: APIError
        switch outcome {
        case .read, .unreadable: return nil
        case .tooLarge: error = .bodyTooLarge(limit)
        case .timedOut: error = APIError("request_timeout", .requestTimeout, "the request body did not arrive within \(timeout.components.seconds) s")
        }
        return Response(status: error.status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: error.body)))
    }
}
