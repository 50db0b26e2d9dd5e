/// What a `KeywardClient` call can fail with.
public enum KeywardClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The service answered with an error: its stable code (`key_not_found`, `access_denied`,
    /// ...; see openapi.yaml), the HTTP status and the service's message.
    case api(code: String, status: Int, message: String)
    /// The request did not complete (connection refused, TLS failure, timeout), after retries.
    case transport(String)
    /// The service's answer could not be read.
    case invalidResponse(String)
    /// A configuration value is unusable (URL, certificate, pin, retry settings).
    case configuration(String)
    /// An envelope message is malformed or does not decrypt.
    case invalidEnvelope(String)

    public var description: String {
        switch self {
        case .api(let code, let status, let message): "Keyward refused the request (\(status) \(code)): \(message)"
        case .transport(let why): "could not reach Keyward: \(why)"
        case .invalidResponse(let why): "unreadable answer from Keyward: \(why)"
        case .configuration(let why): "client configuration: \(why)"
        case .invalidEnvelope(let why): "envelope message: \(why)"
        }
    }

    /// Whether retrying may help (429 and 503, and transport failures).
    var isRetryable: Bool {
        switch self {
        case .api(_, let status, _): status == 429 || status == 503
        case .transport: true
        default: false
        }
    }
}
