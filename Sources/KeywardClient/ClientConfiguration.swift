import Foundation

/// How a `KeywardClient` reaches the service.
public struct KeywardClientConfiguration: Sendable {
    /// How the server's certificate is checked.
    public enum Trust: Sendable, Equatable {
        /// The system's CA store.
        case systemRoots
        /// Only certificates issued by this CA (PEM); `keyward serve --dev` writes it to
        /// `.keyward-dev/ca.pem`.
        case certificateAuthority(pem: String)
        /// Only this exact server certificate (PEM), whatever name it carries.
        case pinnedCertificate(pem: String)
        /// Only a server certificate with this SHA-256 fingerprint (hex, colons optional), as
        /// `keyward serve --dev` prints it. The server's leaf certificate is checked against it
        /// in every TLS handshake; no CA is trusted.
        case pinnedFingerprint(sha256: String)
    }

    /// Retries of requests the service refused with 429 or 503, or that failed in transport:
    /// exponential backoff with jitter, honouring `Retry-After`. A call that creates or changes
    /// something (a key, a version, a lifecycle state, a token, the KEK, a restore) is not
    /// retried after a transport failure, which may have come after the service acted.
    public struct Retry: Sendable, Equatable {
        /// Attempts in all (1: no retry).
        public var maximumAttempts: Int
        /// The first backoff; each further one doubles, up to `maximumDelay`.
        public var initialDelay: Duration
        /// The longest single wait.
        public var maximumDelay: Duration

        /// Retry settings; by default 4 attempts, 100 ms doubling to at most 2 s.
        public init(maximumAttempts: Int = 4, initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(2)) {
            self.maximumAttempts = maximumAttempts
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
        }
    }

    /// The service's base URL, e.g. `https://127.0.0.1:8443`.
    public var url: String
    /// The API token (`kw_...`); nil when a client certificate authenticates.
    public var token: String?
    /// How the server's certificate is checked.
    public var trust: Trust
    /// A client certificate and key (PEM) for mTLS.
    public var clientCertificate: (certificatePEM: String, privateKeyPEM: String)?
    /// Retries on 429 and 503.
    public var retry: Retry
    /// Time limit per attempt.
    public var timeout: Duration
    /// Allows an `http://` URL whose host is not a loopback address. Off by default: the token
    /// and every plaintext would cross the network in clear (the server, likewise, serves plain
    /// HTTP beyond loopback only when told twice).
    public var allowsPlainHTTPBeyondLoopback = false

    /// A configuration for `url` with `token`.
    public init(url: String, token: String?, trust: Trust = .systemRoots,
                clientCertificate: (certificatePEM: String, privateKeyPEM: String)? = nil,
                retry: Retry = Retry(), timeout: Duration = .seconds(30)) {
        self.url = url
        self.token = token
        self.trust = trust
        self.clientCertificate = clientCertificate
        self.retry = retry
        self.timeout = timeout
    }
}
