import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Keyward
@testable import KeywardServer
import NIOCore
import Testing

/// The web console in process: sessions, CSRF, headers, escaping, forms and what each page may
/// do. scripts/clients/console_browser.py drives the same pages in Chromium.
@Suite("Web console")
struct ConsoleTests {
    /// A signed-in browser, as the tests see it: its session cookie and CSRF token.
    struct Browser {
        let cookie: String
        let csrf: String
    }

    static let setCookie = HTTPField.Name.setCookie
    static let cookieName = HTTPField.Name.cookie

    /// GET /ui/login, then POST it with `token`; the session, or the refusal's reply.
    static func signIn(_ client: some TestClientProtocol, token: String) async throws -> (Browser?, Reply) {
        let form = try await client.call(.get, "/ui/login", token: nil)
        let nonce = form.headers[setCookie]?.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init) ?? ""
        let reply = try await post(client, "/ui/login", ["csrf": nonce, "token": token], cookie: "keyward_login=\(nonce)")
        guard reply.status == .seeOther else { return (nil, reply) }
        let session = reply.headers[values: setCookie].first { $0.hasPrefix("keyward_session=") }?.split(separator: ";").first.map(String.init) ?? ""
        let page = try await client.call(.get, "/ui/keys", token: nil, headers: [cookieName: session])
        return (Browser(cookie: session, csrf: csrf(in: page.text)), reply)
    }

    /// The CSRF token in a page's forms.
    static func csrf(in page: String) -> String {
        guard let range = page.range(of: #"name="csrf" value=""#) else { return "" }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    /// POSTs `fields` url-encoded.
    static func post(_ client: some TestClientProtocol, _ path: String, _ fields: [String: String], cookie: String?,
                     headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        headers[.contentType] = "application/x-www-form-urlencoded"
        if let cookie { headers[cookieName] = cookie }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            Reply(status: response.status, headers: response.headers, bytes: Array(response.body.readableBytesView))
        }
    }

    static func page(_ client: some TestClientProtocol, _ path: String, _ browser: Browser) async throws -> Reply {
        try await client.call(.get, path, token: nil, headers: [cookieName: browser.cookie])
    }

    @Test("sign-in sets an HttpOnly SameSite=Strict session cookie; every page carries a strict CSP, nosniff and no-referrer; without a session a page sends the browser to sign in")
    func signInAndHeaders() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let anonymous = try await client.call(.get, "/ui/keys", token: nil)
            #expect(anonymous.status == .seeOther && anonymous.headers[.location] == "/ui/login")
            let (browser, reply) = try await Self.signIn(client, token: fixture.rootToken)
            let cookie = reply.headers[values: Self.setCookie].first { $0.hasPrefix("keyward_session=") } ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"), "\(cookie)")
            let page = try await Self.page(client, "/ui/keys", try #require(browser))
            #expect(page.status == .ok && page.text.contains("<h1>Keys</h1>"))
            let policy = page.headers[HTTPField.Name("Content-Security-Policy")!] ?? ""
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe-inline")
                    && policy.contains("frame-ancestors 'none'"))
            #expect(page.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff" && page.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(!page.text.contains("<script>") && page.text.contains(#"<script src="/ui/static/console.js" defer>"#))
            // The token's text appears on no page; the session is named by another random value.
            #expect(!page.text.contains(fixture.rootToken) && !browser!.cookie.contains(fixture.rootToken))
            let script = try await client.call(.get, "/ui/static/console.js", token: nil)
            #expect(script.status == .ok && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
        }
    }

    @Test("attack: a form post without the session's CSRF token, with another session's, from another origin or marked cross-site is refused 403 and changes nothing")
    func csrfRefused() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["csrf/target"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let other = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            #expect(browser.csrf.count == 43 && browser.csrf != other.csrf)
            let path = "/ui/keys/\(key.metadata.id)/rotate"
            let attempts: [([String: String], HTTPFields)] = [
                ([:], [:]),
                (["csrf": ""], [:]),
                (["csrf": other.csrf], [:]),
                (["csrf": browser.csrf], [HTTPField.Name("Origin")!: "https://evil.example"]),
                (["csrf": browser.csrf], [HTTPField.Name("Sec-Fetch-Site")!: "cross-site"]),
                (["csrf": browser.csrf], [HTTPField.Name("Origin")!: "null"]),
            ]
            for (fields, headers) in attempts {
                let reply = try await Self.post(client, path, fields, cookie: browser.cookie, headers: headers)
                #expect(reply.status == .forbidden && reply.text.contains("csrf_refused"), "\(fields) \(headers): \(reply.status)")
            }
            #expect(try await fixture.service.describe(key: "csrf/target", actor: .owner("test")).metadata.currentVersion == 1)
            // The same form with its token (and the browser's same-origin markers) goes through.
            let good = try await Self.post(client, path, ["csrf": browser.csrf], cookie: browser.cookie,
                                           headers: [HTTPField.Name("Origin")!: "null", HTTPField.Name("Sec-Fetch-Site")!: "same-origin"])
            #expect(good.status == .seeOther)
            #expect(try await fixture.service.describe(key: "csrf/target", actor: .owner("test")).metadata.currentVersion == 2)
            // Sign-in's own form needs its cookie's nonce.
            let login = try await Self.post(client, "/ui/login", ["csrf": "guess", "token": fixture.rootToken], cookie: "keyward_login=other")
            #expect(login.status == .forbidden)
        }
    }

    @Test("attack: a cookie is worthless after sign-out and once its token is revoked; a narrowed policy takes effect at the next page")
    func sessionsEnd() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let team = try await fixture.token(["*:alias=team/*"], principal: "team")
        _ = try await fixture.service.createKey(CreateKeyRequest(aliases: ["team/a"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let root = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let out = try await Self.post(client, "/ui/logout", ["csrf": root.csrf], cookie: root.cookie)
            #expect(out.status == .seeOther && out.headers[.location] == "/ui/login")
            let replayed = try await Self.page(client, "/ui/keys", root)
            #expect(replayed.status == .seeOther && replayed.headers[.location] == "/ui/login")

            let browser = try #require(try await Self.signIn(client, token: team.text).0)
            #expect(try await Self.page(client, "/ui/keys", browser).text.contains("team/a"))
            _ = try await fixture.service.changeTokenPolicy(team.record.id, to: AccessPolicy(rules: [try AccessPolicy.parseRule("describe:alias=other/*")]),
                                                            actor: .owner("test"))
            #expect(!(try await Self.page(client, "/ui/keys", browser).text.contains("team/a")))
            try await fixture.service.revokeToken(team.record.id, actor: .owner("test"))
            let revoked = try await Self.page(client, "/ui/keys", browser)
            #expect(revoked.status == .seeOther && revoked.headers[.location] == "/ui/login")
        }
    }

    @Test("sessions end after their idle time and at their absolute lifetime, however busy; a full table drops the oldest")
    func sessionExpiry() {
        let sessions = ConsoleSessions(idle: .seconds(60), lifetime: .seconds(300), capacity: 2)
        let start = ContinuousClock.now
        let reference = ConsoleSessions.Credential.token(TokenReference("x".padding(toLength: 40, withPad: "y", startingAt: 0))!)
        let idle = sessions.open(reference, now: start)
        #expect(sessions.session(idle.cookie, now: start + .seconds(59)) != nil)
        #expect(sessions.session(idle.cookie, now: start + .seconds(59 + 61)) == nil)
        let busy = sessions.open(reference, now: start)
        for minute in 1...4 { #expect(sessions.session(busy.cookie, now: start + .seconds(minute * 50)) != nil) }
        #expect(sessions.session(busy.cookie, now: start + .seconds(301)) == nil)
        let first = sessions.open(reference, now: start)
        _ = sessions.open(reference, now: start + .seconds(1))
        _ = sessions.open(reference, now: start + .seconds(2))
        #expect(sessions.session(first.cookie, now: start + .seconds(3)) == nil && sessions.count == 2)
        #expect(sessions.session("not-a-session") == nil)
    }

    @Test("attack: one credential signing in again and again ends only its own oldest sessions, never another's, even with the table full")
    func sessionsFairAcrossCredentials() async throws {
        let sessions = ConsoleSessions(idle: .seconds(600), lifetime: .seconds(3600), capacity: 50)
        let start = ContinuousClock.now
        func credential(_ name: String) -> ConsoleSessions.Credential { .token(TokenReference(name.padding(toLength: 40, withPad: "y", startingAt: 0))!) }
        let victims = (0..<30).map { sessions.open(credential("v\($0)"), now: start) }
        var flood: [ConsoleSessions.Opened] = []
        for second in 1...200 { flood.append(sessions.open(credential("attacker"), now: start + .seconds(second))) }
        let later = start + .seconds(201)
        #expect(victims.allSatisfy { sessions.session($0.cookie, now: later) != nil }, "a victim's session was ended")
        // The attacker keeps its newest sessions only.
        let kept = flood.indices.filter { sessions.session(flood[$0].cookie, now: later) != nil }
        #expect(kept == Array((200 - ConsoleSessions.perCredential)..<200), "\(kept)")
        // A full table ends the oldest session of whoever holds the most: a second flood through
        // many credentials pushes out its own, not the victims'.
        for index in 0..<40 { _ = sessions.open(credential("many\(index % 8)"), now: later + .seconds(index)) }
        #expect(victims.allSatisfy { sessions.session($0.cookie, now: later + .seconds(41)) != nil } && sessions.count <= 50)
    }

    @Test("attack: a low-privileged token signing in to the console many times does not sign out an administrator")
    func signInFloodKeepsOthersSignedIn() async throws {
        let fixture = try await ServerFixture.make { configuration in configuration.console.maxSessions = 8 }
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let admin = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let reader = try await fixture.token(["describe:*"], principal: "reader")
            for _ in 0..<24 { #expect(try await Self.signIn(client, token: reader.text).0 != nil) }
            let page = try await Self.page(client, "/ui/keys", admin)
            #expect(page.status == .ok && page.text.contains("<h1>Keys</h1>"), "the administrator was signed out: \(page.status)")
        }
    }

    @Test("attack: failed sign-ins are charged to the peer; past the burst the sign-in answers 429 without looking the token up")
    func signInLimited() async throws {
        let fixture = try await ServerFixture.make { configuration in
            configuration.failedLogins.burst = 3
            configuration.failedLogins.perSecond = 0.01
        }
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<5 { statuses.append(try await Self.signIn(client, token: "kw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43)).1.status) }
            #expect(statuses == [.unauthorized, .unauthorized, .unauthorized, .tooManyRequests, .tooManyRequests], "\(statuses)")
            #expect(try await Self.signIn(client, token: fixture.rootToken).1.status == .tooManyRequests)
        }
    }

    @Test("attack: a description, tags and a refused alias holding markup are written as text, in elements and in attribute values")
    func hostileTextEscaped() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let hostile = #"<script>alert(1)</script>"'><img src=x onerror=alert(2)>"#
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["x/y"], tags: ["note": hostile], description: hostile), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let page = try await Self.page(client, "/ui/keys/\(key.metadata.id)", browser)
            #expect(page.status == .ok)
            #expect(!page.text.contains("<script>alert") && !page.text.contains("<img src=x"))
            #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img src=x onerror=alert(2)&gt;"))
            let alias = try await Self.post(client, "/ui/keys/\(key.metadata.id)/aliases", ["csrf": browser.csrf, "alias": hostile], cookie: browser.cookie)
            #expect(alias.status == .badRequest && alias.text.contains("&lt;script&gt;") && !alias.text.contains("<script>alert"))
        }
        for (name, bytes) in ConsoleTemplates.templates {
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(!text.contains("{{{") && !text.contains("{{&") && !text.contains("style=") && !text.contains("<script>"), "template \(name)")
        }
    }

    @Test("attack: saving a key's tags from a page loaded before another caller changed them applies only the user's edits: the other's tags are neither put back nor dropped")
    func staleTagFormKeepsOthersChanges() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(tags: ["a": "1", "b": "2", "odd=name": "x"]), actor: .owner("test"))
        let path = "/ui/keys/\(key.metadata.id)/metadata"
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let page = try await Self.page(client, "/ui/keys/\(key.metadata.id)", browser).text
            let shown = "a=1\nb=2\nodd=name=x"
            #expect(page.contains(#"name="tagsShown" value="a=1"#), "the form carries the tags it shows")
            // Meanwhile another caller withdraws b and sets c (as Transit's config or AWS's TagResource would).
            _ = try await fixture.service.update(key: key.metadata.id.description, tagChanges: TagChanges(set: ["c": "3"], remove: ["b"]), actor: .owner("test"))
            // The user adds d and changes a, from the page as it was.
            let saved = try await Self.post(client, path, ["csrf": browser.csrf, "description": "", "tagsShown": shown, "tags": "a=9\nb=2\nodd=name=x\nd=4"], cookie: browser.cookie)
            #expect(saved.status == .seeOther, "\(saved.text)")
            #expect(try await fixture.service.describe(key: key.metadata.id.description, actor: .owner("test")).metadata.tags == ["a": "9", "c": "3", "d": "4", "odd=name": "x"])
            // Removing a line removes that tag only.
            let removed = try await Self.post(client, path, ["csrf": browser.csrf, "description": "", "tagsShown": "a=9\nc=3\nd=4", "tags": "a=9\nc=3"], cookie: browser.cookie)
            #expect(removed.status == .seeOther)
            #expect(try await fixture.service.describe(key: key.metadata.id.description, actor: .owner("test")).metadata.tags == ["a": "9", "c": "3", "odd=name": "x"])
            // A form without the tags it showed is refused, changing nothing.
            let blind = try await Self.post(client, path, ["csrf": browser.csrf, "description": "", "tags": ""], cookie: browser.cookie)
            #expect(blind.status == .badRequest && blind.text.contains("reload the key"), "\(blind.text)")
            #expect(try await fixture.service.describe(key: key.metadata.id.description, actor: .owner("test")).metadata.tags.count == 3)
        }
    }

    @Test("a principal sees and acts on only the keys its policy covers, and the admin pages refuse it")
    func limitedPrincipal() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let team = try await fixture.token(["*:alias=team-a/*"], principal: "team-a")
        let mine = try await fixture.service.createKey(CreateKeyRequest(aliases: ["team-a/ledger"]), actor: .owner("test"))
        let theirs = try await fixture.service.createKey(CreateKeyRequest(aliases: ["team-b/payroll"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: team.text).0)
            let list = try await Self.page(client, "/ui/keys", browser).text
            #expect(list.contains("team-a/ledger") && !list.contains("team-b/payroll") && !list.contains(theirs.metadata.id.description))
            #expect(!list.contains("/ui/tokens") && !list.contains("/ui/audit"))
            #expect(try await Self.page(client, "/ui/keys/\(theirs.metadata.id)", browser).status == .forbidden)
            for path in ["/rotate", "/state"] {
                let reply = try await Self.post(client, "/ui/keys/\(theirs.metadata.id)\(path)", ["csrf": browser.csrf, "action": "disable"], cookie: browser.cookie)
                #expect(reply.status == .forbidden, "\(path)")
            }
            #expect(try await fixture.service.describe(key: "team-b/payroll", actor: .owner("test")).metadata.currentVersion == 1)
            #expect(try await Self.post(client, "/ui/keys/\(mine.metadata.id)/rotate", ["csrf": browser.csrf], cookie: browser.cookie).status == .seeOther)
            for path in ["/ui/tokens", "/ui/audit"] { #expect(try await Self.page(client, path, browser).status == .forbidden, "\(path)") }
            let mint = try await Self.post(client, "/ui/tokens", ["csrf": browser.csrf, "principal": "me", "rules": "*:*"], cookie: browser.cookie)
            #expect(mint.status == .forbidden)
        }
    }

    @Test("who may use a key: its key policy's statements, its live grants, and tokens only as far as the key policy lets their policies count")
    func whoMayUseIt() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let user = try await fixture.token(["encrypt,decrypt:*"], principal: "ledger-app")
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["ledger"]), actor: .owner("test"))
        _ = try await fixture.service.createGrant(key: "ledger", grantee: "auditor", operations: [.decrypt],
                                                  constraints: GrantConstraints(contextSubset: ["book": "2026"]), actor: .owner("test"))
        let before = try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            return try await Self.page(client, "/ui/keys/\(key.metadata.id)", browser).text
        }
        #expect(before.contains("grant ") && before.contains("to auditor") && before.contains("book=2026"))
        #expect(before.contains("token:\(user.record.id):ledger-app"))
        // A key policy that leaves callers' policies only describe: the token's row goes, the
        // statements show, a deny included.
        let policy = KeyPolicy(statements: [
            KeyPolicy.Statement(effect: .allow, principals: ["billing"], operations: [.encrypt], contextEquals: ["tenant": "a"]),
            KeyPolicy.Statement(effect: .deny, principals: ["*"], operations: [.export]),
        ], principalPolicyOperations: [.describe, .setKeyPolicy, .manageGrants], document: "{}")
        _ = try await fixture.service.setKeyPolicy(policy, key: "ledger", actor: .owner("test"))
        let after = try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            return try await Self.page(client, "/ui/keys/\(key.metadata.id)", browser).text
        }
        #expect(after.contains("key policy allows billing") && after.contains("tenant=a") && after.contains("key policy DENIES *"))
        #expect(!after.contains("token:\(user.record.id):ledger-app"), "a token whose policy no longer counts on the key is still listed")
    }

    @Test("destructive actions need the key's alias typed; console actions are audited with the console's route")
    func confirmationAndAudit() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(aliases: ["billing/main"]), actor: .owner("test"))
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let path = "/ui/keys/\(key.metadata.id)/state"
            for typed in ["", "billing", key.metadata.id.description + "x"] {
                let reply = try await Self.post(client, path, ["csrf": browser.csrf, "action": "schedule-destruction", "confirm": typed, "days": "7"], cookie: browser.cookie)
                #expect(reply.status == .badRequest, "confirm '\(typed)'")
            }
            #expect(try await fixture.service.describe(key: "billing/main", actor: .owner("test")).metadata.state == .active)
            let done = try await Self.post(client, path, ["csrf": browser.csrf, "action": "schedule-destruction", "confirm": "billing/main", "days": "7"], cookie: browser.cookie)
            #expect(done.status == .seeOther)
            #expect(try await fixture.service.describe(key: "billing/main", actor: .owner("test")).metadata.state == .pendingDestruction)
            let audit = try await fixture.service.latestAuditEntries(AuditQuery(limit: 20, keyID: key.metadata.id), actor: .owner("test")).entries
            let entry = audit.first { $0.event.operation == "schedule-destruction" && $0.event.outcome == "ok" }
            #expect(entry?.event.route == "POST /ui/keys/{key}/state" && entry?.event.actor.hasPrefix("token:") == true, "\(audit.map(\.event.operation))")
        }
    }

    @Test("bad forms get typed errors: another content type 415, a field twice or bad percent-encoding 400, an oversize form 413")
    func badForms() async throws {
        #expect(throws: APIError.self) { try FormBody(parsing: "a=1&a=2") }
        #expect(throws: APIError.self) { try FormBody(parsing: "a=%zz") }
        #expect(throws: APIError.self) { try FormBody(parsing: "na%3Cme=1") }
        #expect(try FormBody(parsing: "a=x+y%21&b=")["a"] == "x y!")
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        try await fixture.application().test(.router) { client in
            let browser = try #require(try await Self.signIn(client, token: fixture.rootToken).0)
            let json = try await client.call(.post, "/ui/keys", token: nil, #"{"spec":"AES-256-GCM"}"#, headers: [Self.cookieName: browser.cookie])
            #expect(json.status == .unsupportedMediaType)
            let big = try await Self.post(client, "/ui/keys", ["csrf": browser.csrf, "description": String(repeating: "d", count: 70_000)], cookie: browser.cookie)
            #expect(big.status == .contentTooLarge)
            let spec = try await Self.post(client, "/ui/keys", ["csrf": browser.csrf, "spec": "ROT13"], cookie: browser.cookie)
            #expect(spec.status == .badRequest && spec.text.contains("unknown key spec"))
        }
    }

    @Test("the newest audit entries come newest first, page towards the start, and filter like the oldest-first reader")
    func newestAuditEntries() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let key = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("test"))
        for _ in 0..<5 { _ = try await fixture.service.rotate(key: key.metadata.id.description, actor: .owner("test")) }
        let first = try await fixture.service.latestAuditEntries(AuditQuery(limit: 3, keyID: key.metadata.id, operation: "rotate"), actor: .owner("test"))
        #expect(first.entries.count == 3 && first.entries.map(\.sequence) == first.entries.map(\.sequence).sorted(by: >))
        let second = try await fixture.service.latestAuditEntries(AuditQuery(limit: 3, keyID: key.metadata.id, operation: "rotate"), before: first.nextBefore, actor: .owner("test"))
        #expect(second.entries.count == 2 && second.entries.allSatisfy { $0.sequence < first.entries.last!.sequence })
        let reader = try await fixture.token(["encrypt:*"])
        await #expect(throws: KeywardError.self) {
            try await fixture.service.latestAuditEntries(AuditQuery(limit: 3), actor: .principal("app", policy: reader.record.policy))
        }
    }

    @Test("attack: a token manager may not widen a token beyond its own grants, nor rewrite or revoke a token wider than itself; the tokens page offers it the forms only within its grants")
    func tokenPolicyChanges() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let manager = try await fixture.token(["manage-tokens:*", "encrypt,decrypt:alias=a/*"], principal: "manager")
        let wide = try await fixture.token(["*:*"], principal: "wide")
        let narrow = try await fixture.token(["encrypt:alias=a/*"], principal: "narrow")
        let caller = Caller.principal("manager", policy: manager.record.policy)
        await #expect(throws: KeywardError.self) {
            try await fixture.service.changeTokenPolicy(narrow.record.id, to: .everything, actor: caller)
        }
        await #expect(throws: KeywardError.self) {
            try await fixture.service.changeTokenPolicy(wide.record.id, to: AccessPolicy(rules: [try AccessPolicy.parseRule("encrypt:alias=a/*")]), actor: caller)
        }
        let changed = try await fixture.service.changeTokenPolicy(narrow.record.id, to: AccessPolicy(rules: [try AccessPolicy.parseRule("encrypt,decrypt:alias=a/*")]), actor: caller)
        #expect(changed.policy.rules.count == 1 && changed.policy.rules[0].operations == [.encrypt, .decrypt])
        #expect(try await fixture.service.authenticate(narrow.text).policy == changed.policy)
        // The tokens page offers the manager the forms only for tokens within its grants.
        try await fixture.application().test(.router) { client in
            let (signedIn, _) = try await Self.signIn(client, token: manager.text)
            let browser = try #require(signedIn)
            let page = try await Self.page(client, "/ui/tokens", browser).text
            #expect(page.contains("/ui/tokens/\(narrow.record.id)/revoke") && page.contains("/ui/tokens/\(narrow.record.id)/policy"))
            #expect(!page.contains("/ui/tokens/\(wide.record.id)/revoke") && !page.contains("/ui/tokens/\(wide.record.id)/policy"))
            #expect(page.contains("holds grants beyond yours"))
            let forced = try await Self.post(client, "/ui/tokens/\(wide.record.id)/revoke", ["csrf": browser.csrf, "confirm": wide.record.id.description], cookie: browser.cookie)
            #expect(forced.status == .forbidden, "\(forced.status)")
        }
        #expect(try await fixture.service.authenticate(wide.text).revokedAt == nil)
        #expect(try await fixture.service.verifyStore(actor: .owner("test")).isIntact)
    }

    @Test("with console.enabled false there is no /ui/ at all")
    func switchedOff() async throws {
        let fixture = try await ServerFixture.make { $0.console.enabled = false }
        defer { fixture.remove() }
        #expect(!(try fixture.server.routeList().contains { $0.path.hasPrefix("/ui") }))
        try await fixture.application().test(.router) { client in
            for path in ["/ui/login", "/ui/keys", "/ui/static/console.js"] {
                let reply = try await client.call(.get, path, token: fixture.rootToken)
                #expect(reply.status == .notFound && reply.errorCode == "route_not_found", "\(path): \(reply.status)")
            }
        }
    }

    @Test("the health history turns metric totals into per-interval rates and quantiles")
    func metricsHistory() {
        let metrics = ServiceMetrics()
        let history = MetricsHistory(metrics: metrics, interval: .seconds(5))
        history.record()
        for _ in 0..<98 { metrics.requestStarted(); metrics.requestFinished(method: "GET", route: "/x", status: 200, duration: .microseconds(200), errorCode: nil) }
        for _ in 0..<2 { metrics.requestStarted(); metrics.requestFinished(method: "GET", route: "/x", status: 503, duration: .milliseconds(40), errorCode: "unavailable") }
        history.record()
        let sample = try! #require(history.samples.last)
        #expect(sample.requestsPerSecond == 20 && sample.errors == ["unavailable": 2])
        #expect(sample.p50Milliseconds == 0.25 && sample.p99Milliseconds == 50)
        #expect(MetricsHistory.quantile(0.5, Array(repeating: 0, count: 15)) == nil)
    }
}
