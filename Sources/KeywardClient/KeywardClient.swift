import AsyncHTTPClient
import Foundation
import KeywardAPI
import KeywardCrypto
import NIOCore
import NIOHTTP1
import NIOSSL

/// The Swift client for `keyward serve`: keys and cryptographic operations by key id or alias,
/// over HTTPS with the configured trust, retries on 429 and 503 with backoff, and typed errors.
/// Key material never comes to the client, except data keys it asks for.
///
/// ```swift
/// let client = try await KeywardClient(configuration: .init(url: "https://127.0.0.1:8443", token: token,
///                                                            trust: .certificateAuthority(pem: caPEM)))
/// let sealed = try await client.encrypt(Array("hello".utf8), key: "app/orders")
/// let opened = try await client.decrypt(sealed.bytes)
/// try await client.shutdown()
/// ```
public final class KeywardClient: Sendable {
    let http: HTTPClient
    /// Set for `.pinnedFingerprint`, which AsyncHTTPClient cannot check per connection.
    let pinned: PinnedTransport?
    let base: String
    /// The base URL's path, which the pinned transport puts before each request's path.
    let prefix: String
    let token: String?
    let retry: KeywardClientConfiguration.Retry
    let timeout: Duration

    /// A client for the service `configuration` names. With `.pinnedFingerprint`, connects once
    /// at once, so that a wrong pin fails here; every later connection is checked against the
    /// pin in its own handshake.
    public init(configuration: KeywardClientConfiguration) async throws(KeywardClientError) {
        guard let url = URL(string: configuration.url), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw .configuration("'\(configuration.url)' is not an http(s) URL")
        }
        guard scheme == "https" || configuration.allowsPlainHTTPBeyondLoopback || LoopbackHost.contains(url.host ?? "") else {
            throw .configuration("\(configuration.url) is plain HTTP to \(url.host ?? "") beyond this machine: the token and every plaintext would cross "
                                 + "the network in clear; use https (plain HTTP goes only to a loopback address)")
        }
        guard configuration.retry.maximumAttempts >= 1 else { throw .configuration("retry.maximumAttempts must be at least 1") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            switch configuration.trust {
            case .systemRoots:
                break
            case .certificateAuthority(let pem):
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
            case .pinnedCertificate(let pem):
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
                tls.certificateVerification = .noHostnameVerification
            case .pinnedFingerprint:
                break
            }
            var identity: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)?
            if let pems = configuration.clientCertificate {
                identity = (try NIOSSLCertificate.fromPEMBytes(Array(pems.certificatePEM.utf8)),
                            try NIOSSLPrivateKey(bytes: Array(pems.privateKeyPEM.utf8), format: .pem))
            }
            if let identity {
                tls.certificateChain = identity.chain.map { .certificate($0) }
                tls.privateKey = .privateKey(identity.key)
            }
            if case .pinnedFingerprint(let fingerprint) = configuration.trust {
                guard scheme == "https" else { throw KeywardClientError.configuration("a fingerprint pin needs an https URL") }
                let transport = try PinnedTransport(url: url, fingerprint: fingerprint, identity: identity)
                try await transport.probe()
                pinned = transport
            } else {
                pinned = nil
            }
        } catch let error as KeywardClientError {
            throw error
        } catch {
            throw .configuration("TLS material: \(error)")
        }
        var httpConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        // A connection that cannot be made fails the attempt at once (within 10 s for a host
        // that does not answer), and `send` retries it with its own backoff: the pool's own
        // retrying would hold each attempt until its whole timeout, so a stopped server took
        // minutes to report.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        httpConfiguration.timeout.connect = .seconds(10)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        base = configuration.url.hasSuffix("/") ? String(configuration.url.dropLast()) : configuration.url
        prefix = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        token = configuration.token
        retry = configuration.retry
        timeout = configuration.timeout
    }

    /// Closes the connections. Call once, when done.
    public func shutdown() async throws {
        await pinned?.shutdown()
        try await http.shutdown()
    }

    // MARK: - Transport

    /// One API call: JSON body in, the decoded answer out; retries 429, 503 and transport
    /// failures with exponential backoff and jitter, honouring `Retry-After`. A call that is not
    /// `repeatable` (it creates or changes something: a key, a version, a token, the KEK) is not
    /// retried after a transport failure, which may have come after the server acted: it would
    /// act twice. 429 and 503 come before any effect, and are retried either way.
    func call<T: Decodable>(_ method: HTTPMethod, _ path: String, _ body: (some Encodable)? = nil as Never?, as type: T.Type,
                            repeatable: Bool = true) async throws(KeywardClientError) -> T {
        var payload: Data?
        if let body {
            do { payload = try Self.encoder.encode(body) } catch { throw .configuration("request body: \(error)") }
        }
        // Replies can carry plaintexts and data keys: both copies of the body are cleared once
        // decoded (each is the only reference to its bytes, so the clearing is in place).
        var bytes = try await send(method, path, payload, repeatable: repeatable)
        var data = Data(bytes)
        defer {
            SecureZero.wipe(&bytes)
            data.resetBytes(in: data.startIndex..<data.endIndex)
        }
        do { return try Self.decoder.decode(T.self, from: data) } catch {
            throw .invalidResponse("\(method.rawValue) \(path): \(error)")
        }
    }

    /// Replies as the API writes them: ISO 8601 dates.
    static let decoder = JSONDecoder.keywardAPI

    /// Request bodies as the API reads them: ISO 8601 dates.
    static let encoder = JSONEncoder.api

    func send(_ method: HTTPMethod, _ path: String, _ payload: Data?, repeatable: Bool = true) async throws(KeywardClientError) -> [UInt8] {
        var delay = retry.initialDelay
        var attempt = 1
        while true {
            let outcome: Result<[UInt8], KeywardClientError>
            var retryAfter: Duration?
            do {
                var headers = HTTPHeaders()
                if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
                if payload != nil { headers.add(name: "Content-Type", value: "application/json") }
                let status: HTTPResponseStatus
                let replyHeaders: HTTPHeaders
                var buffer: ByteBuffer
                if let pinned {
                    let response = try await pinned.execute(method: method, uri: prefix + path, headers: headers,
                                                            body: payload.map { ByteBuffer(bytes: $0) }, timeout: timeout)
                    (status, replyHeaders, buffer) = (response.status, response.headers, response.body)
                } else {
                    var request = HTTPClientRequest(url: base + path)
                    request.method = method
                    request.headers = headers
                    if let payload { request.body = .bytes(ByteBuffer(bytes: payload)) }
                    let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
                    (status, replyHeaders) = (response.status, response.headers)
                    buffer = try await response.body.collect(upTo: PinnedTransport.maximumBody)
                }
                let bytes = Array(buffer.readableBytesView)
                // Cleared once copied out; in place when the collected buffer is this one's alone.
                buffer.withUnsafeMutableReadableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
                if (200..<300).contains(status.code) {
                    outcome = .success(bytes)
                } else {
                    if let seconds = replyHeaders.first(name: "Retry-After").flatMap(Int.init) { retryAfter = .seconds(seconds) }
                    if let error = try? JSONDecoder().decode(ErrorReply.self, from: Data(bytes)) {
                        outcome = .failure(.api(code: error.error.code, status: Int(status.code), message: error.error.message))
                    } else {
                        outcome = .failure(.api(code: "http_\(status.code)", status: Int(status.code), message: status.reasonPhrase))
                    }
                }
            } catch let error as KeywardClientError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(.transport(Self.reason(error, url: base)))
            }
            switch outcome {
            case .success(let bytes): return bytes
            case .failure(let error):
                guard error.isRetryable, attempt < retry.maximumAttempts else { throw error }
                if case .transport = error, !repeatable { throw error }
                let jittered = delay * Double.random(in: 0.5...1.0)
                try? await Task.sleep(for: min(retry.maximumDelay, max(jittered, retryAfter ?? .zero)))
                delay = min(retry.maximumDelay, delay * 2)
                attempt += 1
            }
        }
    }

    /// Why a request to `url` did not complete, in words: the system's reason for a socket
    /// failure (connection refused, no route to host), or the client's (a timeout, TLS).
    static func reason(_ error: any Error, url: String) -> String {
        let why: String
        let plainCut = "the server closed the connection without answering: if it serves HTTPS (the default), use an https:// URL"
        switch error {
        // A TLS server cuts a plain request off; the client sees the close, or a reset when the
        // server closed with the request's bytes unread (which of the two is a race).
        case let io as IOError where io.errnoCode == ECONNRESET && url.hasPrefix("http://"):
            why = plainCut
        case let io as IOError:
            why = String(cString: strerror(io.errnoCode)).lowercased()
                + (io.errnoCode == ECONNREFUSED ? " (is keyward serve running and listening there?)" : "")
        case let client as HTTPClientError where client == .connectTimeout:
            why = "no connection within 10 s (is the address right, and reachable from here?)"
        case let client as HTTPClientError where client == .deadlineExceeded:
            why = "no answer within the request's time limit"
        case let tls as NIOSSLError where String(describing: tls).contains("CERTIFICATE_VERIFY_FAILED"):
            why = "the server's certificate is not one this client trusts: trust the CA that issued it (the CLI's --ca-file or "
                + "KEYWARD_CACERT; .certificateAuthority in the configuration) or pin its fingerprint"
        case let tls as NIOSSLExtraError where tls == .failedToValidateHostname:
            why = "the server's certificate does not name this host: use a name or address the certificate lists"
        case let tls as NIOSSLError where String(describing: tls).contains("WRONG_VERSION_NUMBER"):
            why = "the server did not answer in TLS: if it serves plain HTTP (`keyward serve --insecure-http`), use an http:// URL"
        case let tls as NIOSSLError:
            why = "the TLS handshake failed (\(Self.tlsReason(tls)))"
        case let client as HTTPClientError where client == .remoteConnectionClosed && url.hasPrefix("http://"):
            why = plainCut
        default:
            why = String(describing: error)
        }
        return "\(url): \(why)"
    }

    /// BoringSSL's reason for a failed handshake (`CERTIFICATE_VERIFY_FAILED`, ...) without the
    /// library's error structure and source paths; the whole error when it names none.
    static func tlsReason(_ error: NIOSSLError) -> String { tlsReason(fromDescription: String(describing: error)) }

    /// `tlsReason` of an error's description.
    static func tlsReason(fromDescription text: String) -> String {
        let parts = text.split(separator: ":")
        // BoringSSL's queue reads `error:100000f7:SSL routines:OPENSSL_internal:REASON at file:line`.
        if let marker = parts.firstIndex(where: { $0.hasSuffix("OPENSSL_internal") }), marker + 1 < parts.count,
           let reason = parts[marker + 1].split(separator: " ").first, !reason.isEmpty {
            return String(reason)
        }
        return text
    }

    static func path(_ key: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
    }

    static func decode(_ text: String, _ field: String) throws(KeywardClientError) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw .invalidResponse("field '\(field)' is not base64") }
        return Array(data)
    }
}
