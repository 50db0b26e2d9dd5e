import Foundation
import Hummingbird
import HTTPTypes
import Keyward
import KeywardCrypto
import NIOCore
import Synchronization

/// The web console at `/ui/`: server-rendered pages over the same `KeyService` calls, policies
/// and audit as the API (docs/console.md).
///
/// Every page is reached through `page` and every form through `action`, the two doors a
/// reviewer checks:
/// - `page` needs a live session, checks the session's token again (revoked, expired or
///   re-scoped tokens take effect at once) and applies the principal's rate limit;
/// - `action` does the same, then refuses the form unless it carries the session's CSRF token
///   and, when the browser names one, comes from this origin.
///
/// Handlers call `KeyService` with a `Caller` whose audit route names the console
/// (`POST /ui/keys/{key}/rotate`). Failures become an HTML page with the API's status and
/// message. Key material never reaches a page; a token's text appears once, on the page that
/// issued it.
struct Console: Sendable {
    let slot: KeyServiceSlot
    /// The API's verified tokens, forgotten when the console revokes a token or changes its
    /// policy, so this node's API applies the change at once.
    let tokens: TokenAuthenticator
    let sessions: ConsoleSessions
    let templates: ConsoleTemplates
    /// Requests per principal (shared with the API).
    let limiter: RateLimiter
    /// Failed sign-ins per peer (shared with the API's failed-login limit).
    let failures: RateLimiter
    let history: MetricsHistory
    let maintenance: MaintenanceLog
    let draining: ShutdownState
    /// Whether the session cookie carries `Secure` (always, but for plain HTTP on loopback).
    let secureCookies: Bool
    /// mTLS principals: certificate sign-in, and the rules key pages list.
    let certificates: CertificateAuthenticator
    /// The last audit chain check made from the console.
    let auditCheck = AuditCheckLog()

    /// The console's routes: a group under `/ui` whose middleware (the security headers) runs
    /// for console requests only, never on the API's request path.
    typealias Routes = RouterGroup<KeywardRequestContext>

    static let sessionCookie = "keyward_session"
    static let loginCookie = "keyward_login"

    /// Who a page is for: the session (its cookie and CSRF token) and the principal.
    struct User: Sendable {
        let cookie: String
        let session: ConsoleSessions.Session
        let principal: Principal

        /// The `Caller` for `KeyService`, its audit context naming the console route.
        func caller(_ request: Request, _ context: KeywardRequestContext) -> Caller {
            .principal(principal.name, policy: principal.policy, expiresAt: principal.expiresAt, context: context.auditContext(request))
        }
    }

    // MARK: The two doors

    /// Registers a page: GET `path`, for a signed-in user.
    func page(_ router: Console.Routes, _ path: String,
              _ handler: @escaping @Sendable (Request, KeywardRequestContext, User) async throws -> Response) {
        router.on(.get, path) { request, context in
            await respond(request, context) { (signed: inout User?) async throws -> Response in
                guard let user = try await signedIn(request, context) else { return Self.toLogin() }
                signed = user
                return try await handler(request, context, user)
            }
        }
    }

    /// Registers a form action: POST `path`, for a signed-in user, with the session's CSRF
    /// token and from this origin.
    func action(_ router: Console.Routes, _ path: String,
                _ handler: @escaping @Sendable (Request, KeywardRequestContext, User, FormBody) async throws -> Response) {
        router.on(.post, path) { request, context in
            await respond(request, context) { (signed: inout User?) async throws -> Response in
                try Self.checkOrigin(request)
                guard let user = try await signedIn(request, context) else { return Self.toLogin() }
                signed = user
                let form = try await FormBody.read(request)
                guard ConsoleSessions.csrfMatches(form["csrf"], user.session) else {
                    throw APIError("csrf_refused", .forbidden, "the form did not carry this session's CSRF token; reload the page and try again")
                }
                return try await handler(request, context, user, form)
            }
        }
    }

    /// The signed-in user of `request`, or nil (no cookie, unknown or expired session, or a
    /// token that no longer authenticates, which ends the session).
    private func signedIn(_ request: Request, _ context: KeywardRequestContext) async throws(APIError) -> User? {
        guard let cookie = request.cookies[Self.sessionCookie]?.value, !cookie.isEmpty,
              let session = sessions.session(cookie) else { return nil }
        let principal: Principal
        do throws(APIError) {
            principal = try await authenticate(session.credential, context)
        } catch {
            guard error.status == .unauthorized else { throw error }
            sessions.end(cookie)
            return nil
        }
        context.tracking?.authenticated(as: principal.name)
        if let wait = limiter.admit(principal.name) { throw APIError.rateLimited(wait) }
        return User(cookie: cookie, session: session, principal: principal)
    }

    /// The principal `credential` authenticates as now: a token checked again in the store, or
    /// the connection's client certificate, which must be the one the session signed in with (a
    /// cookie replayed over another connection carries no certificate, or another one).
    func authenticate(_ credential: ConsoleSessions.Credential, _ context: KeywardRequestContext) async throws(APIError) -> Principal {
        switch credential {
        case .token(let reference):
            do {
                let record = try await slot.current.authenticate(reference)
                return Principal(name: "token:\(record.id):\(record.principal)", policy: record.policy, expiresAt: record.expiresAt)
            } catch {
                if case .unauthenticated = error { throw APIError.unauthenticated(error.description) }
                throw APIError(error)
            }
        case .certificate(let key):
            let identity: CertificateAuthenticator.ClientIdentity?
            do { identity = try await certificates.identity(context) } catch { throw APIError.unauthenticated("the client certificate could not be read") }
            guard let identity, identity.key == key else {
                throw APIError.unauthenticated("this session signed in with a client certificate this connection does not present")
            }
            return try certificates.principal(identity)
        }
    }

    /// A cross-origin form post is refused before anything else, by what the browser says of
    /// it: `Sec-Fetch-Site` must be `same-origin` when sent, and `Origin`, when it names an
    /// origin, must name the host the request was sent to. (Under `Referrer-Policy: no-referrer`
    /// browsers send `Origin: null` even for the console's own forms, so `null` is accepted only
    /// with `Sec-Fetch-Site: same-origin`.) Clients that send neither, such as scripts, still
    /// need the CSRF token.
    static func checkOrigin(_ request: Request) throws(APIError) {
        let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]
        if let site, site != "same-origin" {
            throw APIError("csrf_refused", .forbidden, "a form posted from another site (\(site.prefix(20))) is refused")
        }
        guard let origin = request.headers[HTTPField.Name("Origin")!] else { return }
        if origin == "null" {
            guard site == "same-origin" else { throw APIError("csrf_refused", .forbidden, "a form posted from an opaque origin is refused") }
            return
        }
        let host = request.head.authority ?? ""
        guard let url = URL(string: origin), let originHost = url.host else {
            throw APIError("csrf_refused", .forbidden, "a form posted from an unreadable origin is refused")
        }
        let named = url.port.map { "\(originHost):\($0)" } ?? originHost
        guard named.lowercased() == host.lowercased() else {
            throw APIError("csrf_refused", .forbidden, "a form posted from another origin is refused")
        }
    }

    /// Runs `work`; an error becomes the error page, with the API's status and message (and the
    /// navigation of the user `work` found signed in, if any), and is recorded for the audit and
    /// metrics middleware.
    func respond(_ request: Request, _ context: KeywardRequestContext, _ work: (inout User?) async throws -> Response) async -> Response {
        var user: User?
        do {
            return try await work(&user)
        } catch {
            let apiError = APIError(any: error)
            context.tracking?.fail(apiError)
            var response = html("error", ErrorPage(chrome: Chrome(title: "Error", user: user), status: Int(apiError.status.code),
                                                   code: apiError.code, message: apiError.message), status: apiError.status)
            if let retry = apiError.retryAfter { response.headers[.retryAfter] = String(retry) }
            return response
        }
    }

    // MARK: Responses

    /// `template` rendered with `model` as an HTML page.
    func html(_ template: String, _ model: Any, status: HTTPResponse.Status = .ok) -> Response {
        let text = templates.render(model, template)
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// 303 to `path` (after a form: the browser then GETs the page).
    static func redirect(_ path: String) -> Response { Response.redirect(to: path, type: .normal) }

    /// 303 to the sign-in page.
    static func toLogin() -> Response { redirect("/ui/login") }

    /// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure unless `secure` is
    /// false (plain HTTP on loopback only), `maxAge` 0 deletes it.
    static func cookie(_ name: String, _ value: String, path: String, secure: Bool, maxAge: Int? = nil) -> String {
        var text = "\(name)=\(value); Path=\(path); HttpOnly; SameSite=Strict"
        if secure { text += "; Secure" }
        if let maxAge { text += "; Max-Age=\(maxAge)" }
        return text
    }

    /// The chrome of a page for `user`: title, principal, navigation, CSRF token, notice.
    func chrome(_ title: String, _ user: User) -> Chrome {
        var chrome = Chrome(title: title, user: user)
        chrome.notice = sessions.takeNotice(user.cookie)
        return chrome
    }
}

/// What every page's header and footer show.
struct Chrome: Sendable {
    var title: String
    var principal: String?
    var csrf: String?
    var canManageTokens = false
    var canReadAudit = false
    var notice: String?

    init(title: String, user: Console.User?) {
        self.title = title
        principal = user?.principal.name
        csrf = user?.session.csrf
        canManageTokens = user?.principal.policy.allowsEverywhere(.manageTokens) ?? false
        canReadAudit = user?.principal.policy.allowsEverywhere(.readAudit) ?? false
    }
}

/// The error page.
struct ErrorPage: Sendable {
    var chrome: Chrome
    var status: Int
    var code: String
    var message: String
}

/// The last audit chain check run from the console: when, by whom, and what it found.
final class AuditCheckLog: Sendable {
    struct Check: Sendable {
        let at: Date
        let by: String
        let entries: Int
        let problems: [String]
        /// The head's sequence number and hash (hex) read just before the check.
        let headSequence: Int64?
        let headHash: String?
    }

    private let last = Mutex<Check?>(nil)

    func record(_ check: Check) { last.withLock { $0 = check } }
    var latest: Check? { last.withLock { $0 } }
}

/// Sets the console's security headers on every console response (the `/ui` group's middleware): a strict Content-Security-Policy
/// (scripts and styles only from `/ui/static/`, no inline script, no framing), nosniff,
/// no-referrer, no caching of pages, and over HTTPS `Strict-Transport-Security` for a year, so a
/// browser that has seen the console never tries it over plain HTTP (RFC 6797 forbids it on a
/// plain-HTTP response; a TLS-terminating proxy sets its own).
struct ConsoleHeadersMiddleware: RouterMiddleware {
    typealias Context = KeywardRequestContext

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Content-Security-Policy")!] = Self.contentSecurityPolicy
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        if request.head.scheme == "https" { response.headers[HTTPField.Name("Strict-Transport-Security")!] = "max-age=31536000" }
        return response
    }
}

extension RouterGroup<KeywardRequestContext> {
    /// Registers `handler` for `method` on `path`, written in full (`/ui/keys/{key}`) so a reader
    /// finds each page by its address; the group's `/ui` prefix is taken off here.
    func on(_ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, KeywardRequestContext) async throws -> Response) {
        precondition(path == "/ui" || path.hasPrefix("/ui/"), "a console route lies under /ui")
        on(RouterPath(String(path.dropFirst(3))), method: method, use: handler)
    }
}
