import Foundation
import Keyward
import KeywardCrypto
import Synchronization

/// The console's sign-in sessions, held in this node's memory.
///
/// A session is named by 256 random bits, sent to the browser once in the `keyward_session`
/// cookie; the table is keyed by their SHA-256, so neither a lookup's timing nor a memory dump
/// of the table gives a usable cookie. A session keeps the token's `TokenReference` (its id and
/// hash, never its text), or the rule key of the client certificate it signed in with, and every
/// request checks that credential again, so a revocation or a policy change takes effect at the
/// next page.
///
/// A session ends at sign-out (`end`), after `idle` without a request, after `lifetime` at
/// most, when its credential signs in a `perCredential + 1`th time and it is that credential's
/// oldest, or when the table is full and it is the oldest of the credential holding the most.
/// So no credential, however often it signs in, ends another's sessions. Each has its own CSRF
/// token, which every form carries and every POST must return.
final class ConsoleSessions: Sendable {
    /// What a session signed in with, and checks again on every request.
    enum Credential: Sendable, Hashable {
        /// A Keyward token, by its reference.
        case token(TokenReference)
        /// A client certificate, by its `ISSUER | SUBJECT` rule key.
        case certificate(String)
    }

    /// One signed-in browser.
    struct Session: Sendable {
        /// What the user signed in with.
        let credential: Credential
        /// The CSRF token its forms carry (base64url, 256 bits).
        let csrf: String
        let createdAt: ContinuousClock.Instant
        var lastSeen: ContinuousClock.Instant
        /// A message for the next page (what the last action did), shown once.
        var notice: String?
    }

    /// A new session: the cookie value for the browser, and the CSRF token.
    struct Opened: Sendable {
        let cookie: String
        let csrf: String
    }

    let idle: Duration
    let lifetime: Duration
    let capacity: Int
    /// Most sessions one credential holds at once (browsers and devices signed in with it).
    static let perCredential = 16
    private let sessions = Mutex<[[UInt8]: Session]>([:])

    init(idle: Duration, lifetime: Duration, capacity: Int) {
        self.idle = idle
        self.lifetime = lifetime
        self.capacity = capacity
    }

    convenience init(_ settings: ServerConfiguration.ConsoleSettings) {
        self.init(idle: .seconds(settings.idleMinutes * 60), lifetime: .seconds(settings.sessionHours * 3600), capacity: settings.maxSessions)
    }

    /// Opens a session for `credential`.
    func open(_ credential: Credential, now: ContinuousClock.Instant = .now) -> Opened {
        let cookie = Self.randomText()
        let csrf = Self.randomText()
        sessions.withLock { sessions in
            sessions = sessions.filter { !expired($0.value, now) }
            let held = Dictionary(grouping: sessions, by: \.value.credential)
            if let own = held[credential], own.count >= Self.perCredential {
                Self.endOldest(own, in: &sessions)
            } else if sessions.count >= capacity, let heaviest = held.values.max(by: { $0.count < $1.count }) {
                Self.endOldest(heaviest, in: &sessions)
            }
            sessions[Self.key(cookie)] = Session(credential: credential, csrf: csrf, createdAt: now, lastSeen: now)
        }
        return Opened(cookie: cookie, csrf: csrf)
    }

    /// The live session named by `cookie`, its idle time restarted; nil (and the session
    /// dropped) when it is unknown, idle too long or past its lifetime.
    func session(_ cookie: String, now: ContinuousClock.Instant = .now) -> Session? {
        let key = Self.key(cookie)
        return sessions.withLock { sessions in
            guard var session = sessions[key] else { return nil }
            guard !expired(session, now) else {
                sessions[key] = nil
                return nil
            }
            session.lastSeen = now
            sessions[key] = session
            return session
        }
    }

    private static func endOldest(_ some: [Dictionary<[UInt8], Session>.Element], in sessions: inout [[UInt8]: Session]) {
        guard let oldest = some.min(by: { $0.value.createdAt < $1.value.createdAt }) else { return }
        sessions[oldest.key] = nil
    }

    /// Ends the session named by `cookie` (sign-out): the cookie is worthless from then on.
    func end(_ cookie: String) {
        _ = sessions.withLock { $0.removeValue(forKey: Self.key(cookie)) }
    }

    /// Ends every session of the token `id` (it was revoked or its session refused).
    func endAll(of id: KeyID) {
        sessions.withLock { sessions in
            sessions = sessions.filter { entry in
                if case .token(let reference) = entry.value.credential { return reference.id != id }
                return true
            }
        }
    }

    /// Leaves `notice` for the session's next page.
    func leave(_ notice: String, for cookie: String) {
        sessions.withLock { sessions in sessions[Self.key(cookie)]?.notice = notice }
    }

    /// Takes the notice left for the session, if any.
    func takeNotice(_ cookie: String) -> String? {
        sessions.withLock { sessions in
            let key = Self.key(cookie)
            defer { sessions[key]?.notice = nil }
            return sessions[key]?.notice
        }
    }

    /// Sessions held now (live or not yet swept).
    var count: Int { sessions.withLock { $0.count } }

    /// Whether `presented` is the session's CSRF token (constant time).
    static func csrfMatches(_ presented: String?, _ session: Session) -> Bool {
        guard let presented else { return false }
        return ConstantTime.equals(Array(presented.utf8), Array(session.csrf.utf8))
    }

    private func expired(_ session: Session, _ now: ContinuousClock.Instant) -> Bool {
        session.lastSeen.duration(to: now) > idle || session.createdAt.duration(to: now) > lifetime
    }

    private static func key(_ cookie: String) -> [UInt8] { SHA256Hash.hash(utf8: cookie) }

    /// 256 random bits (the system's CSPRNG, `getrandom`) as base64url without padding.
    static func randomText() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
