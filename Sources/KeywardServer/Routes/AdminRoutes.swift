import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto
import Synchronization

/// `/v1/admin`: administration over the API, so a cluster needs no shell on a node. Each route
/// is a thin adapter: `KeyService` checks that the caller's policy grants the administrative
/// operation on every key (`manage-tokens`, `read-audit`, `verify-store`, `rotate-kek`,
/// `maintenance`, `backup`, `restore`) and audits the request.
enum AdminRoutes {
    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, body: BodyReader, tokens: TokenAuthenticator,
                         maintenance: MaintenanceLog, root: (any RootOfTrust)?, backupKeys: BackupKeys) {
        routes.on(.post, "/v1/admin/tokens") { request, context in
            let create = try await body.decode(CreateTokenBody.self, from: request)
            let (policy, lifetime) = try credentialTerms(create)
            let issued = try await slot.current.issueToken(principal: create.principal, policy: policy, lifetime: lifetime, actor: try context.caller(request))
            return Response.reply(IssuedTokenReply(id: issued.record.id, principal: issued.record.principal, token: issued.text,
                                                   expiresAt: issued.record.expiresAt), status: .created)
        }

        routes.on(.post, "/v1/admin/credentials/aws") { request, context in
            let create = try await body.decode(CreateTokenBody.self, from: request)
            let (policy, lifetime) = try credentialTerms(create)
            let issued = try await slot.current.issueAWSCredential(principal: create.principal, policy: policy, lifetime: lifetime,
                                                                   actor: try context.caller(request))
            return Response.reply(IssuedAWSCredentialReply(id: issued.record.id, principal: issued.record.principal, accessKeyId: issued.accessKeyID,
                                                           secretAccessKey: issued.secretAccessKey, expiresAt: issued.record.expiresAt), status: .created)
        }

        routes.on(.get, "/v1/admin/tokens") { request, context in
            let query = request.uri.queryParameters
            var after: KeyID?
            if let cursor = query.get("after") {
                guard let id = KeyID(parsing: cursor) else { throw APIError.invalidRequest("'after' must be a token id from nextCursor") }
                after = id
            }
            let limit = try integer(query.get("limit"), "limit", default: 100)
            let page = try await slot.current.listTokens(after: after, limit: limit, actor: try context.caller(request))
            return Response.reply(TokenPageReply(tokens: page.tokens.map {
                TokenReply(id: $0.id, principal: $0.principal, rules: $0.policy.rules.map(\.text), createdAt: $0.createdAt,
                           expiresAt: $0.expiresAt, revokedAt: $0.revokedAt, accessKeyId: $0.awsAccessKeyID)
            }, nextCursor: page.nextCursor))
        }

        routes.on(.post, "/v1/admin/tokens/{token}/revoke") { request, context in
            guard let id = KeyID(parsing: try context.parameter("token")) else { throw APIError.invalidRequest("a token id is a UUID") }
            try await slot.current.revokeToken(id, actor: try context.caller(request))
            // This node refuses it at once; the others within a second (their store watchers).
            tokens.forgetAll()
            return Response.reply(StatusReply(status: "revoked"))
        }

        routes.on(.put, "/v1/admin/tokens/{token}/policy") { request, context in
            let change = try await body.decode(TokenPolicyBody.self, from: request)
            guard let id = KeyID(parsing: try context.parameter("token")) else { throw APIError.invalidRequest("a token id is a UUID") }
            var rules: [AccessRule] = []
            for rule in change.rules { rules.append(try AccessPolicy.parseRule(rule)) }
            guard !rules.isEmpty else { throw APIError.invalidRequest("a policy needs at least one rule") }
            let record = try await slot.current.changeTokenPolicy(id, to: AccessPolicy(rules: rules), actor: try context.caller(request))
            // This node applies it at once; the others within a second (their store watchers).
            tokens.forgetAll()
            return Response.reply(TokenReply(id: record.id, principal: record.principal, rules: record.policy.rules.map(\.text), createdAt: record.createdAt,
                                             expiresAt: record.expiresAt, revokedAt: record.revokedAt, accessKeyId: record.awsAccessKeyID))
        }

        routes.on(.post, "/v1/admin/verify") { request, context in
            let report = try await slot.current.verifyStore(actor: try context.caller(request))
            return Response.reply(VerificationReply(intact: report.isIntact, keys: report.keys, versions: report.versions, aliases: report.aliases,
                                                    tokens: report.tokens, auditEntries: report.audit.entries,
                                                    problems: report.allProblems))
        }

        routes.on(.get, "/v1/admin/audit") { request, context in
            let query = request.uri.queryParameters
            if query.get("tail") != nil {
                guard ["after", "limit", "key", "actor", "operation", "since", "until"].allSatisfy({ query.get($0) == nil }) else {
                    throw APIError.invalidRequest("'tail' reads the newest entries; it does not combine with after, limit or a filter")
                }
                let count = try integer(query.get("tail"), "tail", default: 20)
                let entries = try await slot.current.auditTail(count, actor: try context.caller(request))
                return Response.reply(AuditPageReply(entries: entries.map(Self.entryReply), nextAfter: nil))
            }
            var filter = AuditQuery(after: Int64(try integer(query.get("after"), "after", default: 0)), limit: try integer(query.get("limit"), "limit", default: 100))
            if let key = query.get("key") {
                guard let id = KeyID(parsing: key) else { throw APIError.invalidRequest("'key' must be a key id") }
                filter.keyID = id
            }
            filter.actor = query.get("actor")
            filter.operation = query.get("operation")
            filter.since = try time(query.get("since"), "since")
            filter.until = try time(query.get("until"), "until")
            let page = try await slot.current.auditEntries(filter, actor: try context.caller(request))
            return Response.reply(AuditPageReply(entries: page.entries.map(Self.entryReply), nextAfter: page.nextAfter.map(Int.init)))
        }

        routes.on(.post, "/v1/admin/audit/verify") { request, context in
            let result = try await slot.current.verifyAudit(actor: try context.caller(request))
            return Response.reply(AuditVerificationReply(intact: result.isIntact, entries: result.entries, problems: result.problems, unchained: result.unchained))
        }

        // Signed segments, as `keyward audit export` writes them: checked anywhere against the
        // signer's public key with `keyward audit verify --segment`.
        routes.on(.post, "/v1/admin/audit/export") { request, context in
            let asked = try await body.decode(AuditExportBody.self, from: request)
            let segment = try await slot.current.exportAuditSegment(after: asked.after ?? 0, through: asked.through, actor: try context.caller(request))
            return Response.reply(AuditSegmentReply(segment: segment.bytes, first: segment.header.first, last: segment.header.last,
                                                    entries: segment.entries.count, signerKeyId: segment.header.signerKeyID.description))
        }

        routes.on(.get, "/v1/admin/audit/signer") { request, context in
            let publicKey = try await slot.current.auditSigner(actor: try context.caller(request))
            guard let pem = publicKey.pem else { throw APIError("internal", .internalServerError, "the audit signing key has no PEM form") }
            return Response.reply(AuditSignerReply(publicKeyPem: pem))
        }

        routes.on(.get, "/v1/admin/maintenance") { request, context in
            try await slot.current.checkAdministration(.maintenance, actor: try context.caller(request))
            return Response.reply(maintenance.reply)
        }

        routes.on(.post, "/v1/admin/backup") { request, context in
            let asked = try await body.decode(BackupBody.self, from: request)
            let recipient = try BackupKeyFiles.recipient(asked.recipient)
            let bundle = try await slot.current.createBackup(to: recipient, pinned: backupKeys.recipients, keys: asked.keys, actor: try context.caller(request))
            return Response.reply(BackupReply(bundle: bundle.bytes, keys: bundle.header.keyCount))
        }

        routes.on(.post, "/v1/admin/restore") { request, context in
            let asked = try await body.decode(RestoreBody.self, from: request)
            guard let identity = backupKeys.identity else {
                // Authorised (and audited) first, so only an administrator learns how the server is set up.
                try await slot.current.checkAdministration(.restore, actor: try context.caller(request))
                throw KeywardError.notPermitted("this server has no restore identity (backup.identity), so it restores nothing over the API")
            }
            let caller = try context.caller(request)
            if asked.addKeys == true {
                let added = try await slot.current.restoreKeys(bundle: asked.bundle.value, identity: identity.material, signers: backupKeys.signers, actor: caller)
                return Response.reply(RestoreReply(restored: added.count))
            }
            let restored = try await slot.current.restore(bundle: asked.bundle.value, identity: identity.material, signers: backupKeys.signers, actor: caller)
            return Response.reply(RestoreReply(restored: restored))
        }

        routes.on(.get, "/v1/admin/cluster") { request, context in
            let status = try await slot.current.clusterStatus(actor: try context.caller(request))
            return Response.reply(ClusterReply(
                node: status.node,
                leases: status.leases.map { .init(name: $0.name, holder: $0.holder, token: $0.token, expiresAt: $0.expiresAt) },
                nodes: status.nodes.map { .init(id: $0.node, seenGeneration: $0.seenGeneration, heartbeatAt: $0.at, ageMilliseconds: Int($0.age * 1000)) }))
        }
        routes.on(.post, "/v1/admin/maintenance/run") { request, context in
            let report = try await slot.current.runMaintenance(actor: try context.caller(request))
            maintenance.record(report)
            return Response.reply(maintenance.reply)
        }

        routes.on(.post, "/v1/admin/kek/rotate") { request, context in
            let caller = try context.caller(request)
            guard let root else {
                // Still checked and audited: a caller without the grant learns nothing more.
                try await slot.current.checkAdministration(.rotateKEK, actor: caller)
                throw APIError("unavailable", .serviceUnavailable, "this server was started without its root of trust in hand, so it cannot rotate the KEK; run keyward kek rotate", retryAfter: nil)
            }
            let records = Atomic<Int>(0)
            let rotated = try await slot.current.rotateKEK(root: root, actor: caller) { records.store($0, ordering: .relaxed) }
            slot.replace(rotated)
            return Response.reply(KEKRotationReply(activeKek: rotated.header.activeKEK, records: records.load(ordering: .relaxed)))
        }
    }

    /// An optional integer query parameter.
    /// One audit entry as the API shows it.
    private static func entryReply(_ entry: (sequence: Int64, event: AuditEvent)) -> AuditEntryReply {
        let event = entry.event
        return AuditEntryReply(sequence: Int(entry.sequence), time: event.time, actor: event.actor, operation: event.operation,
                               keyId: event.keyID?.description, version: event.version.map(Int.init), outcome: event.outcome,
                               detail: event.detail, requestId: event.requestID, peer: event.peer, route: event.route)
    }

    private static func integer(_ text: String?, _ name: String, default value: Int) throws(APIError) -> Int {
        guard let text else { return value }
        guard let parsed = Int(text) else { throw APIError.invalidRequest("'\(name)' must be an integer") }
        return parsed
    }

    /// A credential request's policy (its rules parsed) and lifetime in seconds.
    private static func credentialTerms(_ create: CreateTokenBody) throws -> (AccessPolicy, TimeInterval?) {
        var rules: [AccessRule] = []
        for text in create.rules { rules.append(try AccessPolicy.parseRule(text)) }
        if let days = create.expiresInDays, !(1...3650).contains(days) {
            throw APIError.invalidRequest("expiresInDays is 1 to 3650")
        }
        return (AccessPolicy(rules: rules), create.expiresInDays.map { Double($0) * 86_400 })
    }

    /// An optional RFC 3339 time query parameter.
    private static func time(_ text: String?, _ name: String) throws(APIError) -> Date? {
        guard let text else { return nil }
        guard let date = Timestamp.parse(text) else { throw APIError.invalidRequest("'\(name)' must be an RFC 3339 time") }
        return date
    }
}

/// The maintenance sweep's last result, as the scheduler and the admin API record it.
/// It also keeps the last periodic verification's outcome.
final class MaintenanceLog: Sendable {
    private let last = Mutex<(at: Date, report: MaintenanceReport)?>(nil)
    private let verification = Mutex<(at: Date, intact: Bool, problems: Int)?>(nil)

    func record(_ report: MaintenanceReport) { last.withLock { $0 = (Date(), report) } }

    func record(_ result: StoreVerification) {
        verification.withLock { $0 = (Date(), result.isIntact, result.allProblems.count) }
    }

    /// The last sweep on this node, in a line: when, and what it did.
    var summary: String? {
        guard let last = last.withLock({ $0 }) else { return nil }
        let report = last.report
        return "\(ConsoleCharts.stamp(last.at)): \(report.keys) keys swept, \(report.destroyed) destroyed, \(report.rotated) rotated, \(report.failures.count) failures"
    }

    var reply: MaintenanceReply {
        var reply = MaintenanceReply(ranAt: nil, keys: 0, destroyed: 0, rotated: 0, failures: [])
        if let last = last.withLock({ $0 }) {
            reply = MaintenanceReply(ranAt: last.at, keys: last.report.keys, destroyed: last.report.destroyed, rotated: last.report.rotated,
                                     failures: last.report.failures)
            reply.purged = last.report.purged
        }
        if let verification = verification.withLock({ $0 }) {
            reply.verifiedAt = verification.at
            reply.verificationProblems = verification.problems
        }
        return reply
    }
}
