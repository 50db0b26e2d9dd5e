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
        /// The body was past the limit (413) or did not end within the timeout (408).
        case refused(APIError)
        /// The stream failed or was reset while its body was read: nothing can be answered.
        case unreadable
    }

    /// Reads `request`'s body through `reader` (its limit and errors), within `timeout`.
    static func read(_ request: Request, with reader: BodyReader, within timeout: Duration) async -> Outcome {
        if request.headers[.contentLength] == "0" { return .read(request) }
        return await withTaskGroup(of: Outcome?.self) { group -> Outcome in
            group.addTask {
                do throws(APIError) {
                    var read = request
                    read.body = RequestBody(buffer: try await reader.collect(request))
                    return .read(read)
                } catch {
                    return error.code == "body_too_large" ? .refused(error) : .unreadable
                }
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return nil }
                return .refused(APIError("request_timeout", .requestTimeout, "the request body did not arrive within \(timeout.components.seconds) s"))
            }
            // The first to finish decides; the other is cancelled (a cancelled read of the
            // stream ends at once, as does the sleep, which then answers nil).
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .unreadable
        }
    }

    /// `error` answered to `request` in the shape of the front end it is for (`ErrorShape`,
    /// Transit mounted at `transitPrefix`), as `HTTP1Connection` answers a body past the limit
    /// before any route.
    static func response(_ error: APIError, to request: Request, transitPrefix: String) -> Response {
        let shape = ErrorShape.of(method: request.method, path: request.uri.path, transitPrefix: transitPrefix)
        let (status, headers, body) = error.rendered(as: shape, requestID: nil)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
