import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
import KeywardCrypto
import KeywardServer
import KeywardServiceTestSupport
import KeywardStorage
import Logging
import NIOCore
import Synchronization

/// A store on a key file in a temporary directory, a manual clock, a server over it with plain
/// HTTP (TLS is tested on a live socket), a root token, and every log line captured.
struct ServerFixture {
    /// The temporary directory the store and key file are in.
    let temporary: TemporaryStore
    let store: InjectingStore
    let service: KeyService
    let clock: ManualClock
    let server: KeywardServer
    let rootToken: String
    let logs: LogCapture

    static func make(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> ServerFixture {
        let temporary = try TemporaryStore(label: "server")
        // A configuration the server refuses (a test of that refusal) leaves nothing behind.
        var made = false
        defer { if !made { temporary.remove() } }
        let store = InjectingStore(try SQLiteKeyStore(path: temporary.path("store.db")))
        let clock = ManualClock()
        let service = try await KeyService.initialize(store: store, root: temporary.root(), actor: .owner("test"), clock: clock)
        let root = try await service.issueToken(principal: "root", policy: .everything, lifetime: nil, actor: .owner("test"))
        var configuration = ServerConfiguration()
        configuration.insecureHTTP = true
        configuration.port = 0
        configuration.logLevel = "info"
        configuration.maxBodyBytes = 64 * 1024
        configure(&configuration)
        let logs = LogCapture()
        let server = try KeywardServer(service: service, configuration: configuration, logger: logs.logger)
        made = true
        return ServerFixture(temporary: temporary, store: store, service: service, clock: clock, server: server, rootToken: root.text, logs: logs)
    }

    /// The in-process application.
    func application() throws -> some ApplicationProtocol {
        Application(router: try server.makeRouter(), logger: logs.logger)
    }

    /// The store's directory.
    var directory: URL { temporary.directory }

    /// Deletes the store's directory.
    func remove() { temporary.remove() }

    /// A token for `principal` with rules in the CLI form.
    func token(_ rules: [String], lifetime: TimeInterval? = nil, principal: String = "app") async throws -> IssuedToken {
        var parsed: [AccessRule] = []
        for rule in rules { parsed.append(try AccessPolicy.parseRule(rule)) }
        return try await service.issueToken(principal: principal, policy: AccessPolicy(rules: parsed), lifetime: lifetime, actor: .owner("test"))
    }
}

/// One response, decoded.
struct Reply {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let bytes: [UInt8]

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:] }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    func string(_ name: String) -> String { json[name] as? String ?? "" }
    func bytes(_ name: String) -> [UInt8] { Array(Data(base64Encoded: string(name)) ?? Data()) }
}

extension TestClientProtocol {
    /// Sends `body` (a JSON string, or raw) with `token` as bearer.
    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, _ body: String? = nil, headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            Reply(status: response.status, headers: response.headers, bytes: Array(response.body.readableBytesView))
        }
    }
}

/// Collects every log line (message and metadata) for the leak checks.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "keyward-test") { _ in CapturingHandler(capture: self) }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let line = "\(event.level) \(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        capture.lines.withLock { $0.append(line) }
    }
}

/// Base64 of UTF-8 text.
func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
