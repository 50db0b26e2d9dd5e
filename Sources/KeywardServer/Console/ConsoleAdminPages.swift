import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto
import NIOCore

/// The console's sign-in and sign-out, its token, audit and health pages, and its static files.
extension Console {
    func register(_ router: Console.Routes) {
        registerSignIn(router)
        registerKeyPages(router)
        registerTokenPages(router)
        registerAuditPage(router)
        registerHealthPage(router)
        router.on(.get, "/ui/static/{file}") { _, context in
            guard let name = context.parameters.get("file"), let response = ConsoleTemplates.staticFile(name) else {
                throw APIError("route_not_found", .notFound, "no such console file")
            }
            return response
        }
        router.on(.get, "/ui") { _, _ in Self.redirect("/ui/keys") }
    }

    // MARK: Sign-in

    private func registerSignIn(_ router: Console.Routes) {
        router.on(.get, "/ui/login") { request, context in
            await respond(request, context) { (_: inout Console.User?) async throws -> Response in
                // Sign-in's own CSRF defence (there is no session yet): a random value in a
                // SameSite=Strict cookie that the form must repeat.
                let nonce = ConsoleSessions.randomText()
                // Under mTLS, a connection whose certificate has a rule may sign in with it.
                var certificate: String?
                if certificates.isEnabled, let identity = try? await certificates.identity(context), (try? certificates.principal(identity)) != nil {
                    certificate = identity.subject
                }
                var response = html("login", LoginPage(chrome: Chrome(title: "Sign in", user: nil), csrf: nonce, certificate: certificate))
                response.headers[.setCookie] = Self.cookie(Self.loginCookie, nonce, path: "/ui/login", secure: secureCookies, maxAge: 900)
                return response
            }
        }

        router.on(.post, "/ui/login") { request, context in
            await respond(request, context) { (_: inout Console.User?) async throws -> Response in
                try Self.checkOrigin(request)
                let form = try await FormBody.read(request)
                guard let expected = request.cookies[Self.loginCookie]?.value, let presented = form["csrf"],
                      ConstantTime.equals(Array(expected.utf8), Array(presented.utf8)) else {
                    throw APIError("csrf_refused", .forbidden, "the sign-in form has expired or was not sent from this console; reload the sign-in page")
                }
                // Charged to the peer before the lookup, refunded on success, as the API does.
                let peer = "peer:" + (context.peer ?? "unknown")
                if let wait = failures.admit(peer) { throw APIError.tooManyFailures(wait) }
                let credential: ConsoleSessions.Credential
                if form["method"] == "certificate" {
                    guard certificates.isEnabled, let identity = try? await certificates.identity(context) else {
                        throw APIError.unauthenticated("this connection presents no client certificate")
                    }
                    credential = .certificate(identity.key)
                } else {
                    let text = form["token"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                    guard let reference = TokenReference(text) else { throw APIError.unauthenticated("that is not a Keyward token") }
                    credential = .token(reference)
                }
                let principal: Principal
                do throws(APIError) {
                    principal = try await authenticate(credential, context)
                } catch {
                    guard error.status == .unauthorized else { throw error }
                    let reason = form["method"] == "certificate" ? error.message : "the token was not accepted"
                    throw APIError.unauthenticated(reason)
                }
                failures.refund(peer)
                context.tracking?.authenticated(as: principal.name)
                let opened = sessions.open(credential)
                var response = Self.redirect("/ui/keys")
                response.headers[values: .setCookie] = [
                    Self.cookie(Self.sessionCookie, opened.cookie, path: "/ui", secure: secureCookies),
                    Self.cookie(Self.loginCookie, "", path: "/ui/login", secure: secureCookies, maxAge: 0),
                ]
                return response
            }
        }

        action(router, "/ui/logout") { _, _, user, _ in
            sessions.end(user.cookie)
            var response = Self.redirect("/ui/login")
            response.headers[.setCookie] = Self.cookie(Self.sessionCookie, "", path: "/ui", secure: secureCookies, maxAge: 0)
            return response
        }
    }

    // MARK: Tokens

    private func registerTokenPages(_ router: Console.Routes) {
        page(router, "/ui/tokens") { request, context, user in
            var after: KeyID?
            if let text = request.uri.queryParameters.get("after"), !text.isEmpty {
                guard let id = KeyID(parsing: text) else { throw APIError.invalidRequest("'after' must be a token id from the previous page") }
                after = id
            }
            let page = try await slot.current.listTokens(after: after, limit: 50, actor: user.caller(request, context))
            let now = Date()
            let mine = user.principal.policy
            let rows = page.tokens.map { token in
                let live = token.revokedAt == nil && !(token.expiresAt.map { $0 <= now } ?? false)
                return TokenRow(id: token.id.description, principal: token.principal, rules: token.policy.rules.map(\.text).joined(separator: "\n"),
                         created: ConsoleCharts.stamp(token.createdAt), expires: token.expiresAt.map(ConsoleCharts.stamp) ?? "never",
                         status: token.revokedAt != nil ? "revoked" : (token.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active",
                         live: live, manageable: live && mine.covers(token.policy), aws: token.awsSecretVersion != nil)
            }
            return html("tokens", TokensPage(chrome: chrome("Tokens", user), tokens: rows,
                                             next: page.nextCursor.map { "/ui/tokens?after=\($0)" }))
        }

        action(router, "/ui/tokens") { request, context, user, form in
            let principal = try form.required("principal")
            let policy = try Self.policy(form.required("rules"))
            var lifetime: TimeInterval?
            if let hours = form["hours"], !hours.isEmpty {
                guard let value = Double(hours), value > 0 else { throw APIError.invalidRequest("the lifetime is a number of hours") }
                lifetime = value * 3600
            }
            let issued = try await slot.current.issueToken(principal: principal, policy: policy, lifetime: lifetime, actor: user.caller(request, context))
            // Shown on this response only; never stored, never redirected through a URL.
            return html("token-created", TokenCreatedPage(chrome: chrome("Token issued", user), id: issued.record.id.description,
                                                          principal: principal, text: issued.text))
        }

        action(router, "/ui/tokens/{id}/revoke") { request, context, user, form in
            let id = try Self.tokenID(context)
            guard form["confirm"]?.trimmingCharacters(in: .whitespaces) == id.description else {
                throw APIError.invalidRequest("to revoke, type the token's id exactly")
            }
            try await slot.current.revokeToken(id, actor: user.caller(request, context))
            tokens.forgetAll()
            sessions.endAll(of: id)
            sessions.leave("Token \(id) revoked.", for: user.cookie)
            return Self.redirect("/ui/tokens")
        }

        action(router, "/ui/tokens/{id}/policy") { request, context, user, form in
            let id = try Self.tokenID(context)
            _ = try await slot.current.changeTokenPolicy(id, to: try Self.policy(form.required("rules")), actor: user.caller(request, context))
            tokens.forgetAll()
            sessions.leave("Token \(id) now has the new policy.", for: user.cookie)
            return Self.redirect("/ui/tokens")
        }
    }

    /// A policy from rule lines in the CLI's `OPERATIONS:SELECTOR` form.
    static func policy(_ text: String) throws(KeywardError) -> AccessPolicy {
        var rules: [AccessRule] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let rule = line.trimmingCharacters(in: .whitespaces)
            if !rule.isEmpty { rules.append(try AccessPolicy.parseRule(rule)) }
        }
        guard !rules.isEmpty else { throw .invalidArgument("a policy needs at least one rule, e.g. encrypt,decrypt:alias=app/*") }
        return AccessPolicy(rules: rules)
    }

    private static func tokenID(_ context: KeywardRequestContext) throws -> KeyID {
        guard let id = KeyID(parsing: try context.parameter("id")) else { throw APIError.invalidRequest("not a token id") }
        return id
    }

    // MARK: Audit

    private func registerAuditPage(_ router: Console.Routes) {
        page(router, "/ui/audit") { request, context, user in
            let query = request.uri.queryParameters
            var form = AuditFilters()
            var audit = AuditQuery(limit: 100)
            if let text = query.get("principal"), !text.isEmpty { audit.actor = text; form.principal = text }
            if let text = query.get("operation"), !text.isEmpty { audit.operation = text; form.operation = text }
            if let text = query.get("key"), !text.isEmpty {
                audit.keyID = try await slot.current.resolve(text)
                form.key = text
            }
            if let text = query.get("since"), !text.isEmpty { audit.since = try Self.time(text, "since"); form.since = text }
            if let text = query.get("until"), !text.isEmpty { audit.until = try Self.time(text, "until"); form.until = text }
            var outcome: String?
            if let text = query.get("outcome"), !text.isEmpty {
                guard ["ok", "denied", "error"].contains(text) else { throw APIError.invalidRequest("outcome is ok, denied or error") }
                outcome = text
                form.outcome = text
            }
            var before: Int64?
            if let text = query.get("before"), !text.isEmpty {
                guard let value = Int64(text), value > 0 else { throw APIError.invalidRequest("'before' is a sequence number") }
                before = value
            }
            var entries: [AuditRow] = []
            var next = before
            // The outcome is filtered here, so read on until a page is full or the log ends.
            repeat {
                let page = try await slot.current.latestAuditEntries(audit, before: next, actor: user.caller(request, context))
                for (sequence, event) in page.entries where outcome == nil || event.outcome == outcome {
                    entries.append(AuditRow(sequence: Int(sequence), time: ConsoleCharts.stamp(event.time), principal: event.actor, operation: event.operation,
                                            key: event.keyID?.description ?? "", keyPath: event.keyID.map(Self.keyPath),
                                            outcome: event.outcome, detail: event.detail ?? "", route: event.route ?? "", console: event.route?.contains(" /ui/") ?? false))
                }
                next = page.nextBefore
            } while entries.count < 100 && next != nil && outcome != nil
            var olderQuery = URLComponents()
            olderQuery.queryItems = [("principal", form.principal), ("operation", form.operation), ("key", form.key), ("outcome", form.outcome),
                                     ("since", form.since), ("until", form.until)].filter { !$0.1.isEmpty }.map { URLQueryItem(name: $0.0, value: $0.1) }
                + [URLQueryItem(name: "before", value: next.map(String.init) ?? "")]
            let check = auditCheck.latest
            return html("audit", AuditPage(chrome: chrome("Audit", user), filters: form, entries: entries,
                                           older: next == nil ? nil : "/ui/audit?" + (olderQuery.percentEncodedQuery ?? ""),
                                           checked: check.map { CheckView(at: ConsoleCharts.stamp($0.at), by: $0.by, entries: $0.entries, problems: $0.problems, intact: $0.problems.isEmpty,
                                                                                head: $0.headSequence.map { "#\($0)" } ?? "-", headHash: $0.headHash ?? "-") }))
        }

        action(router, "/ui/audit/verify") { request, context, user, _ in
            // The head is read first: the check that follows covers the chain at least up to it.
            let head = try await slot.current.auditAnchor()
            let result = try await slot.current.verifyAudit(actor: user.caller(request, context))
            auditCheck.record(.init(at: Date(), by: user.principal.name, entries: result.entries, problems: Array(result.problems.prefix(20)),
                                    headSequence: head?.sequence, headHash: head.map { Hex.encode($0.hash) }))
            sessions.leave(result.isIntact ? "The audit chain verifies: \(result.entries) entries." : "The audit chain has \(result.problems.count) problems.", for: user.cookie)
            return Self.redirect("/ui/audit")
        }
    }

    /// A time filter: `2026-12-05T14:03` (a datetime-local field, UTC) or ISO 8601.
    static func time(_ text: String, _ name: String) throws(APIError) -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssXXXXX", "yyyy-MM-dd"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        throw APIError.invalidRequest("'\(name)' is a time like 2026-12-05T14:03 (UTC)")
    }

    // MARK: Health

    private func registerHealthPage(_ router: Console.Routes) {
        page(router, "/ui/health") { request, context, user in
            let service = slot.current
            var ready = "ready"
            if draining.isDraining {
                ready = "shutting down"
            } else {
                do throws(KeywardError) { try await service.checkReady() } catch { ready = "not ready: \(error.description)" }
            }
            let samples = history.samples
            let times = samples.map(\.at)
            let traffic = ConsoleCharts.lines([("requests/s", "rate", samples.map { $0.requestsPerSecond })], times: times, unit: "req/s")
            let latency = ConsoleCharts.lines([("p50", "p50", samples.map(\.p50Milliseconds)), ("p99", "p99", samples.map(\.p99Milliseconds))],
                                              times: times, unit: "ms")
            var codes: [String: Int] = [:]
            for sample in samples { for (code, count) in sample.errors { codes[code, default: 0] += count } }
            let errors = codes.sorted { $0.value > $1.value }
            let errorBars = ConsoleCharts.bars(errors.map(\.value), names: errors.map(\.key), labelEvery: 1)
            var nodes: [NodeRow] = []
            var leader: String?
            let seesCluster = user.principal.policy.allowsEverywhere(.maintenance)
            if seesCluster {
                let status = try await service.clusterStatus(actor: user.caller(request, context))
                nodes = status.nodes.map { NodeRow(node: $0.node, seen: ConsoleCharts.stamp($0.at), age: String(format: "%.1f s", $0.age),
                                                   generation: Int($0.seenGeneration), current: $0.node == status.node) }
                leader = status.leases.first.map { "\($0.holder) (fencing token \($0.token), until \(ConsoleCharts.stamp($0.expiresAt)))" }
            }
            return html("health", HealthPage(chrome: chrome("Health", user), ready: ready, isReady: ready == "ready", node: service.options.nodeID ?? "single node",
                                             traffic: traffic, latency: latency, errors: errorBars, errorCodes: errors.map { TagRow(name: $0.key, value: String($0.value)) },
                                             window: "\(samples.count) samples of \(Int(history.interval.components.seconds)) s",
                                             seesCluster: seesCluster, nodes: nodes, leader: leader ?? "none",
                                             maintenance: maintenance.summary ?? "not run yet on this node"))
        }
    }
}

// MARK: Page models

struct LoginPage: Sendable {
    var chrome: Chrome
    var csrf: String
    /// The subject of the connection's client certificate, when it may sign in.
    var certificate: String?
}

struct TokenRow: Sendable {
    var id: String
    var principal: String
    var rules: String
    var created: String
    var expires: String
    var status: String
    var live: Bool
    /// Live, and within the signed-in user's grants: only then may it rewrite or revoke it
    /// (`KeyService.authorizeManaging`), so only then are the forms shown.
    var manageable: Bool
    var aws: Bool
}

struct TokensPage: Sendable {
    var chrome: Chrome
    var tokens: [TokenRow]
    var next: String?
}

struct TokenCreatedPage: Sendable {
    var chrome: Chrome
    var id: String
    var principal: String
    var text: String
}

struct AuditFilters: Sendable {
    var principal = ""
    var operation = ""
    var key = ""
    var outcome = ""
    var since = ""
    var until = ""
    var outcomes: [FormOption] { ["ok", "denied", "error"].map { FormOption(value: $0, selected: $0 == outcome) } }
}

struct AuditRow: Sendable {
    var sequence: Int
    var time: String
    var principal: String
    var operation: String
    var key: String
    /// The key's page; nil for entries that name no key (an empty string would still render).
    var keyPath: String?
    var outcome: String
    var detail: String
    var route: String
    var console: Bool
}

struct CheckView: Sendable {
    var at: String
    var by: String
    var entries: Int
    var problems: [String]
    var intact: Bool
    /// The last entry the check covered, and its hash (hex).
    var head: String
    var headHash: String
}

struct AuditPage: Sendable {
    var chrome: Chrome
    var filters: AuditFilters
    var entries: [AuditRow]
    var older: String?
    var checked: CheckView?
}

struct NodeRow: Sendable {
    var node: String
    var seen: String
    var age: String
    var generation: Int
    var current: Bool
}

struct HealthPage: Sendable {
    var chrome: Chrome
    var ready: String
    var isReady: Bool
    var node: String
    var traffic: ConsoleCharts.Lines
    var latency: ConsoleCharts.Lines
    var errors: ConsoleCharts.Bars
    var errorCodes: [TagRow]
    var window: String
    var seesCluster: Bool
    var nodes: [NodeRow]
    var leader: String
    var maintenance: String
}
