import Foundation
import Hummingbird
import Keyward
import KeywardCrypto

/// The console's key pages: the list (filters, paging, create) and one key (its lifecycle
/// timeline, who may use it, its use over time, and the actions the signed-in principal's
/// policy allows). Each is a thin adapter over `KeyService`.
extension Console {
    func registerKeyPages(_ router: Console.Routes) {
        page(router, "/ui/keys") { request, context, user in
            let filters = try KeyFilters(request)
            let page = try await slot.current.listKeys(state: filters.state, tag: filters.tag, alias: filters.alias, matching: filters.matching,
                                                       after: filters.after, limit: 50, actor: user.caller(request, context))
            let model = KeysPage(chrome: chrome("Keys", user), filters: filters.form, specs: KeySpec.allCases.map { FormOption(value: $0.rawValue, selected: $0.rawValue == filters.form.spec) },
                                 states: KeyState.allCases.map { FormOption(value: $0.rawValue, selected: $0.rawValue == filters.form.state) },
                                 purposes: KeyPurpose.allCases.map { FormOption(value: $0.rawValue, selected: $0.rawValue == filters.form.purpose) },
                                 keys: page.keys.map(KeyRow.init), next: page.nextCursor.map { filters.query(after: $0) },
                                 canCreate: user.principal.policy.allowsSomewhere(.create),
                                 createSpecs: KeySpec.allCases.map { FormOption(value: $0.rawValue, selected: $0 == .aes256GCM) })
            return html("keys", model)
        }

        action(router, "/ui/keys") { request, context, user, form in
            let spec = try form.required("spec")
            guard let parsed = KeySpec(rawValue: spec) else { throw APIError.invalidRequest("unknown key spec '\(spec.prefix(40))'") }
            let alias = form["alias"]?.trimmingCharacters(in: .whitespaces) ?? ""
            var rotation: Int?
            if let days = form["rotationDays"], !days.isEmpty {
                guard let value = Int(days) else { throw APIError.invalidRequest("rotation period is a whole number of days") }
                rotation = value
            }
            let created = try await slot.current.createKey(CreateKeyRequest(spec: parsed, aliases: alias.isEmpty ? [] : [alias],
                                                                             description: form["description"] ?? "", rotationPeriodDays: rotation),
                                                            actor: user.caller(request, context))
            sessions.leave("Created key \(created.metadata.id).", for: user.cookie)
            return Self.redirect(Self.keyPath(created.metadata.id))
        }

        page(router, "/ui/keys/{key}") { request, context, user in
            let reference = try context.parameter("key")
            let caller = user.caller(request, context)
            let service = slot.current
            let key = try await service.describe(key: reference, actor: caller)
            let versions = try await service.versions(key: reference, actor: caller)
            let policy = user.principal.policy
            let readsAudit = policy.allowsEverywhere(.readAudit)
            let history = readsAudit ? try await keyHistory(key.metadata.id, caller) : []
            let now = Date()
            let model = KeyPage(
                chrome: chrome(key.aliases.first ?? key.metadata.id.description, user), key: KeyRow(key),
                description: key.metadata.description, tags: key.metadata.tags.sorted { $0.key < $1.key }.map { TagRow(name: $0.key, value: $0.value) },
                tagsText: key.metadata.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"),
                aliases: key.aliases,
                versions: versions.reversed().map { VersionRow(number: Int($0.number), created: ConsoleCharts.stamp($0.createdAt), state: $0.state, rotation: $0.rotation ?? "") },
                timeline: ConsoleCharts.timeline(Self.timelineEvents(key, versions, history), now: now),
                timelineFromAudit: readsAudit,
                usage: readsAudit ? Self.usage(history, now: now) : nil,
                grants: try await grants(on: key, user, caller),
                yourOperations: ServiceOperation.allCases.filter { policy.allows($0, on: key) }.map(\.rawValue).joined(separator: ", "),
                confirmation: key.aliases.first ?? key.metadata.id.description,
                canRotate: policy.allows(.rotate, on: key) && key.metadata.state == .active,
                canEnable: policy.allows(.enable, on: key) && key.metadata.state == .disabled,
                canDisable: policy.allows(.disable, on: key) && key.metadata.state == .active,
                canScheduleDestruction: policy.allows(.scheduleDestruction, on: key) && ![.pendingDestruction, .destroyed].contains(key.metadata.state),
                canCancelDestruction: policy.allows(.cancelDestruction, on: key) && key.metadata.state == .pendingDestruction,
                canMarkCompromised: policy.allows(.markCompromised, on: key) && ![.compromised, .destroyed].contains(key.metadata.state),
                canUpdate: policy.allows(.update, on: key) && key.metadata.state != .destroyed,
                path: Self.keyPath(key.metadata.id))
            return html("key", model)
        }

        action(router, "/ui/keys/{key}/rotate") { request, context, user, form in
            let key = try await slot.current.rotate(key: try context.parameter("key"), actor: user.caller(request, context))
            sessions.leave("Rotated: version \(key.metadata.currentVersion) is now current.", for: user.cookie)
            return Self.redirect(Self.keyPath(key.metadata.id))
        }

        action(router, "/ui/keys/{key}/state") { request, context, user, form in
            let reference = try context.parameter("key")
            let caller = user.caller(request, context)
            let action = try form.required("action")
            let operations: [String: ServiceOperation] = ["enable": .enable, "disable": .disable, "schedule-destruction": .scheduleDestruction,
                                                          "cancel-destruction": .cancelDestruction, "mark-compromised": .markCompromised]
            guard let operation = operations[action] else { throw APIError.invalidRequest("unknown action '\(action.prefix(40))'") }
            var days: Int?
            if operation == .scheduleDestruction || operation == .markCompromised {
                // Destructive: the user types the key's first alias (or its id) to confirm.
                let key = try await slot.current.describe(key: reference, actor: caller)
                let typed = form["confirm"]?.trimmingCharacters(in: .whitespaces) ?? ""
                guard typed == key.aliases.first ?? key.metadata.id.description || typed == key.metadata.id.description else {
                    throw APIError.invalidRequest("to \(action.replacingOccurrences(of: "-", with: " ")), type the key's alias or id exactly")
                }
                if operation == .scheduleDestruction {
                    guard let value = Int(form["days"] ?? "7") else { throw APIError.invalidRequest("the waiting period is a whole number of days") }
                    days = value
                }
            }
            let key = try await slot.current.transition(key: reference, operation, waitingDays: days, actor: caller)
            sessions.leave("The key is now \(key.metadata.state.rawValue).", for: user.cookie)
            return Self.redirect(Self.keyPath(key.metadata.id))
        }

        action(router, "/ui/keys/{key}/aliases") { request, context, user, form in
            let reference = try context.parameter("key")
            let alias = try form.required("alias")
            try await slot.current.setAlias(alias, key: reference, actor: user.caller(request, context))
            sessions.leave("Alias \(alias) now names this key.", for: user.cookie)
            return Self.redirect(Self.keyPath(try await slot.current.resolve(reference)))
        }

        action(router, "/ui/keys/{key}/aliases/remove") { request, context, user, form in
            let reference = try context.parameter("key")
            let alias = try form.required("alias")
            // Described, not resolved: a user who may not see the key learns nothing of whether it exists.
            let key = try await slot.current.describe(key: reference, actor: user.caller(request, context))
            guard key.aliases.contains(alias) else { throw APIError.invalidRequest("alias \(alias) does not name this key") }
            try await slot.current.deleteAlias(alias, actor: user.caller(request, context))
            sessions.leave("Alias \(alias) removed.", for: user.cookie)
            return Self.redirect(Self.keyPath(key.metadata.id))
        }

        action(router, "/ui/keys/{key}/metadata") { request, context, user, form in
            let reference = try context.parameter("key")
            // The form carries the tags as the page showed them: only what the user changed is
            // applied (`TagChanges`), to the tags as the update reads them, so a tag another
            // caller set or removed since the page was loaded (Transit's deletion_allowed, an AWS
            // TagResource) is not silently put back or dropped by this save.
            guard let shown = form["tagsShown"] else { throw APIError.invalidRequest("the form lacks the tags it showed; reload the key's page") }
            let before = try Self.tags(fromLines: shown), after = try Self.tags(fromLines: form["tags"] ?? "")
            let changes = TagChanges(set: after.filter { before[$0.key] != $0.value }, remove: Set(before.keys).subtracting(after.keys))
            var rotation: Int?? = nil
            if let days = form["rotationDays"] {
                if days.isEmpty || days == "0" {
                    rotation = .some(nil)
                } else {
                    guard let value = Int(days) else { throw APIError.invalidRequest("rotation period is a whole number of days") }
                    rotation = .some(value)
                }
            }
            let key = try await slot.current.update(key: reference, description: form["description"] ?? "", tagChanges: changes, rotationPeriodDays: rotation,
                                                    actor: user.caller(request, context))
            sessions.leave("Saved.", for: user.cookie)
            return Self.redirect(Self.keyPath(key.metadata.id))
        }
    }

    static func keyPath(_ id: KeyID) -> String { "/ui/keys/\(id)" }

    /// The tags of the metadata form's text, one `NAME=VALUE` a line (blank lines ignored).
    static func tags(fromLines text: String) throws(APIError) -> [String: String] {
        var tags: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let equals = line.firstIndex(of: "="), equals != line.startIndex else {
                throw APIError.invalidRequest("each tag line is NAME=VALUE")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard tags.updateValue(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces), forKey: name) == nil else {
                throw APIError.invalidRequest("tag '\(name.prefix(40))' is given twice")
            }
        }
        return tags
    }

    /// The key's audit entries of the last 30 days (at most 10,000 read), oldest first.
    private func keyHistory(_ id: KeyID, _ caller: Caller) async throws -> [AuditEvent] {
        var events: [AuditEvent] = []
        var before: Int64? = nil
        repeat {
            let page = try await slot.current.latestAuditEntries(AuditQuery(limit: 1000, keyID: id, since: Date().addingTimeInterval(-30 * 86_400)),
                                                                before: before, actor: caller)
            events.append(contentsOf: page.entries.map(\.event))
            before = page.nextBefore
        } while before != nil && events.count < 10_000
        return events.reversed()
    }

    /// The timeline's events: creation and each rotation (from the versions), state changes
    /// (from the audit log when the user may read it, else the last one), and what is due.
    static func timelineEvents(_ key: KeyDescription, _ versions: [KeyVersionInfo], _ history: [AuditEvent]) -> [(at: Date, label: String)] {
        var events: [(at: Date, label: String)] = [(key.metadata.createdAt, "created")]
        for version in versions where version.number > 1 {
            events.append((version.createdAt, "rotated to v\(version.number)"))
        }
        let changes: Set<String> = ["enable", "disable", "deactivate", "mark-compromised", "schedule-destruction", "cancel-destruction", "destroy"]
        let changed = history.filter { changes.contains($0.operation) && $0.outcome == "ok" }
        if history.isEmpty {
            if key.metadata.stateChangedAt > key.metadata.createdAt.addingTimeInterval(1) {
                events.append((key.metadata.stateChangedAt, key.metadata.state.rawValue))
            }
        } else {
            events += changed.map { ($0.time, $0.operation) }
        }
        if let destruction = key.metadata.destructionDate { events.append((destruction, "destruction due")) }
        if let rotation = key.metadata.nextRotationAt { events.append((rotation, "rotation due")) }
        return events
    }

    /// Operations on the key per hour over the last 24 hours.
    static func usage(_ history: [AuditEvent], now: Date) -> ConsoleCharts.Bars {
        let hour = 3600.0
        let end = (now.timeIntervalSince1970 / hour).rounded(.up) * hour
        var counts = Array(repeating: 0, count: 24)
        for event in history {
            let index = 23 - Int((end - event.time.timeIntervalSince1970) / hour)
            if (0..<24).contains(index) { counts[index] += 1 }
        }
        let names = (0..<24).map { index -> String in
            let start = Date(timeIntervalSince1970: end - Double(24 - index) * hour)
            return String(ConsoleCharts.clock(start).prefix(5))
        }
        return ConsoleCharts.bars(counts, names: names, labelEvery: 3)
    }

    /// Who may use the key: for a user who manages tokens, every live token and certificate
    /// rule whose policy grants something on it (as far as the key's own policy lets it), the
    /// key policy's statements and the live grants on the key; otherwise only the user's own
    /// access.
    private func grants(on key: KeyDescription, _ user: User, _ caller: Caller) async throws -> [GrantRow] {
        let service = slot.current
        func row(_ who: String, _ policy: AccessPolicy) -> GrantRow? {
            let operations = ServiceOperation.allCases.filter { service.policyPermits($0, on: key, principal: who, policy: policy) }
            return operations.isEmpty ? nil : GrantRow(principal: who, operations: operations.map(\.rawValue).joined(separator: ", "))
        }
        func conditioned(_ names: Set<ServiceOperation>, _ pairs: [String: String]?, _ word: String) -> String {
            let operations = names.map(\.rawValue).sorted().joined(separator: ", ")
            guard let pairs, !pairs.isEmpty else { return operations }
            return operations + " (\(word) " + pairs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
        }
        guard user.principal.policy.allowsEverywhere(.manageTokens) else {
            return [row(user.principal.name + " (you)", user.principal.policy)].compactMap { $0 }
        }
        var statements: [GrantRow] = []
        for statement in key.metadata.keyPolicy?.statements ?? [] {
            let verb = statement.effect == .allow ? "key policy allows" : "key policy DENIES"
            statements.append(GrantRow(principal: "\(verb) \(statement.principals.joined(separator: ", "))",
                                       operations: conditioned(statement.operations, statement.contextEquals, "when the context holds")))
        }
        if let live = try? await service.listGrants(key: key.metadata.id.description, limit: 1000, actor: caller) {
            for record in live.grants {
                let constraints = record.grant.constraints
                let pairs = constraints.map { ($0.contextEquals ?? [:]).merging($0.contextSubset ?? [:]) { first, _ in first } }
                statements.append(GrantRow(principal: "grant \(record.id) to \(record.grant.grantee)",
                                           operations: conditioned(record.grant.operations, pairs, constraints?.contextEquals != nil ? "context exactly" : "context holding")))
            }
        }
        var rows: [GrantRow] = []
        var cursor: KeyID? = nil
        let now = Date()
        repeat {
            let page = try await slot.current.listTokens(after: cursor, limit: 1000, actor: caller)
            for token in page.tokens where token.revokedAt == nil && (token.expiresAt.map { $0 > now } ?? true) {
                if let found = row("token:\(token.id):\(token.principal)", token.policy) { rows.append(found) }
            }
            cursor = page.nextCursor
        } while cursor != nil && rows.count < 1000
        for (subject, policy) in certificates.policies.sorted(by: { $0.key < $1.key }) {
            if let found = row("mtls:\(subject)", policy) { rows.append(found) }
        }
        return statements + rows
    }
}

/// The key list's filters, read from the query and written back into links.
struct KeyFilters {
    struct Form: Sendable {
        var state = ""
        var spec = ""
        var purpose = ""
        var alias = ""
        var tag = ""
    }

    var form = Form()
    var state: KeyState?
    var tag: (key: String, value: String)?
    var alias: String?
    var after: KeyID?
    var matching: (@Sendable (KeyDescription) -> Bool)?

    init(_ request: Request) throws(APIError) {
        let query = request.uri.queryParameters
        if let text = query.get("state"), !text.isEmpty {
            guard let parsed = KeyState(rawValue: text) else { throw APIError.invalidRequest("unknown state '\(text.prefix(40))'") }
            state = parsed
            form.state = text
        }
        if let text = query.get("tag"), !text.isEmpty {
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else { throw APIError.invalidRequest("the tag filter is NAME=VALUE") }
            tag = (String(text[..<equals]), String(text[text.index(after: equals)...]))
            form.tag = text
        }
        if let text = query.get("alias"), !text.isEmpty {
            alias = text
            form.alias = text
        }
        if let text = query.get("after"), !text.isEmpty {
            guard let id = KeyID(parsing: text) else { throw APIError.invalidRequest("'after' must be a key id from the previous page") }
            after = id
        }
        var spec: KeySpec?
        if let text = query.get("spec"), !text.isEmpty {
            guard let parsed = KeySpec(rawValue: text) else { throw APIError.invalidRequest("unknown key spec '\(text.prefix(40))'") }
            spec = parsed
            form.spec = text
        }
        var purpose: KeyPurpose?
        if let text = query.get("purpose"), !text.isEmpty {
            guard let parsed = KeyPurpose(rawValue: text) else { throw APIError.invalidRequest("unknown purpose '\(text.prefix(40))'") }
            purpose = parsed
            form.purpose = text
        }
        if spec != nil || purpose != nil {
            let (wantedSpec, wantedPurpose) = (spec, purpose)
            matching = { key in (wantedSpec.map { key.metadata.spec == $0 } ?? true) && (wantedPurpose.map { key.purpose == $0 } ?? true) }
        }
    }

    /// The list's link to the page after `cursor`, with these filters.
    func query(after cursor: KeyID) -> String {
        var items = URLComponents()
        items.queryItems = [("state", form.state), ("spec", form.spec), ("purpose", form.purpose), ("alias", form.alias), ("tag", form.tag)]
            .filter { !$0.1.isEmpty }.map { URLQueryItem(name: $0.0, value: $0.1) } + [URLQueryItem(name: "after", value: cursor.description)]
        return "/ui/keys?" + (items.percentEncodedQuery ?? "")
    }
}

// MARK: Page models (what the templates see)

struct FormOption: Sendable {
    var value: String
    var selected: Bool
}

struct KeyRow: Sendable {
    var id: String
    var path: String
    var aliases: String
    var spec: String
    var purpose: String
    var state: String
    var version: Int
    var created: String
    var nextRotation: String
    var destruction: String?

    init(_ key: KeyDescription) {
        id = key.metadata.id.description
        path = Console.keyPath(key.metadata.id)
        aliases = key.aliases.joined(separator: ", ")
        spec = key.metadata.spec.rawValue
        purpose = key.purpose.rawValue
        state = key.metadata.state.rawValue
        version = Int(key.metadata.currentVersion)
        created = ConsoleCharts.stamp(key.metadata.createdAt)
        nextRotation = key.metadata.nextRotationAt.map(ConsoleCharts.stamp) ?? "-"
        destruction = key.metadata.destructionDate.map(ConsoleCharts.stamp)
    }
}

struct KeysPage: Sendable {
    var chrome: Chrome
    var filters: KeyFilters.Form
    var specs: [FormOption]
    var states: [FormOption]
    var purposes: [FormOption]
    var keys: [KeyRow]
    var next: String?
    var canCreate: Bool
    var createSpecs: [FormOption]
}

struct TagRow: Sendable {
    var name: String
    var value: String
}

struct VersionRow: Sendable {
    var number: Int
    var created: String
    var state: String
    var rotation: String
}

struct GrantRow: Sendable {
    var principal: String
    var operations: String
}

struct KeyPage: Sendable {
    var chrome: Chrome
    var key: KeyRow
    var description: String
    var tags: [TagRow]
    var tagsText: String
    var aliases: [String]
    var versions: [VersionRow]
    var timeline: ConsoleCharts.Timeline
    var timelineFromAudit: Bool
    var usage: ConsoleCharts.Bars?
    var grants: [GrantRow]
    var yourOperations: String
    /// What the user types to confirm a destructive action.
    var confirmation: String
    var canRotate: Bool
    var canEnable: Bool
    var canDisable: Bool
    var canScheduleDestruction: Bool
    var canCancelDestruction: Bool
    var canMarkCompromised: Bool
    var canUpdate: Bool
    var path: String
}
