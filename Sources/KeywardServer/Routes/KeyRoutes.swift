import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto

/// `/v1/keys` and `/v1/aliases`: create, import, list, describe, update, rotate, lifecycle
/// transitions, public keys and aliases.
enum KeyRoutes {
    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, body: BodyReader) {
        routes.on(.post, "/v1/keys") { request, context in
            let create = try await body.decode(CreateKeyBody.self, from: request).request()
            let key = try await slot.current.createKey(create, actor: try context.caller(request))
            return Response.reply(KeyReply(key), status: .created)
        }

        routes.on(.get, "/v1/keys") { request, context in
            let query = request.uri.queryParameters
            var state: KeyState?
            if let name = query.get("state") {
                guard let parsed = KeyState(rawValue: name) else { throw APIError.invalidRequest("unknown state '\(name.prefix(40))'") }
                state = parsed
            }
            var tag: (key: String, value: String)?
            if let text = query.get("tag") {
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    throw APIError.invalidRequest("tag filter must be NAME=VALUE with a non-empty NAME")
                }
                tag = (String(text[..<equals]), String(text[text.index(after: equals)...]))
            }
            var after: KeyID?
            if let cursor = query.get("after") {
                guard let id = KeyID(parsing: cursor) else { throw APIError.invalidRequest("'after' must be a key id from nextCursor") }
                after = id
            }
            var limit = 100
            if let text = query.get("limit") {
                guard let parsed = Int(text) else { throw APIError.invalidRequest("'limit' must be an integer from 1 to 1000") }
                limit = parsed
            }
            let page = try await slot.current.listKeys(state: state, tag: tag, alias: query.get("alias"), after: after, limit: limit,
                                                  actor: try context.caller(request))
            return Response.reply(KeyPageReply(keys: page.keys.map(KeyReply.init), nextCursor: page.nextCursor))
        }

        routes.on(.get, "/v1/keys/{key}") { request, context in
            let key = try await slot.current.describe(key: try context.parameter("key"), actor: try context.caller(request))
            return Response.reply(KeyReply(key))
        }

        routes.on(.patch, "/v1/keys/{key}") { request, context in
            let update = try await body.decode(UpdateKeyBody.self, from: request)
            var period: Int?? = nil
            if let days = update.rotationPeriodDays { period = .some(days == 0 ? nil : days) }
            var changes: TagChanges? = nil
            if update.setTags != nil || update.removeTags != nil {
                guard update.tags == nil else {
                    throw APIError.invalidRequest("give 'tags' (every tag the key is to carry) or 'setTags' and 'removeTags' (changes to its tags), not both")
                }
                changes = TagChanges(set: update.setTags ?? [:], remove: Set(update.removeTags ?? []))
            }
            let key = try await slot.current.update(key: try context.parameter("key"), description: update.description, tags: update.tags, tagChanges: changes,
                                               rotationPeriodDays: period, minDecryptionVersion: update.minDecryptionVersion,
                                               actor: try context.caller(request))
            return Response.reply(KeyReply(key))
        }

        routes.on(.post, "/v1/keys/{key}/rotate") { request, context in
            let key = try await slot.current.rotate(key: try context.parameter("key"), actor: try context.caller(request))
            return Response.reply(KeyReply(key))
        }

        let transitions: [(String, ServiceOperation)] = [
            ("enable", .enable), ("disable", .disable), ("deactivate", .deactivate),
            ("mark-compromised", .markCompromised), ("cancel-destruction", .cancelDestruction),
        ]
        for (name, operation) in transitions {
            routes.on(.post, "/v1/keys/{key}/\(name)") { request, context in
                let key = try await slot.current.transition(key: try context.parameter("key"), operation, actor: try context.caller(request))
                return Response.reply(KeyReply(key))
            }
        }

        routes.on(.post, "/v1/keys/{key}/schedule-destruction") { request, context in
            let days = request.headers[.contentLength] == "0" ? nil : try await body.decode(ScheduleDestructionBody.self, from: request).waitingDays
            let key = try await slot.current.transition(key: try context.parameter("key"), .scheduleDestruction, waitingDays: days,
                                                   actor: try context.caller(request))
            return Response.reply(KeyReply(key))
        }

        routes.on(.post, "/v1/keys/{key}/destroy-versions") { request, context in
            let below = try await body.decode(DestroyVersionsBody.self, from: request).below
            let key = try await slot.current.destroyVersions(key: try context.parameter("key"), below: below, actor: try context.caller(request))
            return Response.reply(KeyReply(key))
        }

        routes.on(.get, "/v1/keys/{key}/public-key") { request, context in
            var version: UInt32?
            if let text = request.uri.queryParameters.get("version") {
                guard let parsed = UInt32(text) else { throw APIError.invalidRequest("'version' must be a positive integer") }
                version = parsed
            }
            let reference = try context.parameter("key")
            let key = try await slot.current.publicKey(key: reference, version: version, actor: try context.caller(request))
            return Response.reply(PublicKeyReply(keyReference: reference, spec: key.spec, publicKey: Base64Bytes(key.representation),
                                                 publicKeyPem: key.pem))
        }

        routes.on(.post, "/v1/import-wrapping-keys") { request, context in
            let hours = request.headers[.contentLength] == "0" ? nil : try await body.decode(ImportWrappingKeyBody.self, from: request).hours
            let wrapping = try await slot.current.createImportWrappingKey(hours: hours ?? 24, actor: try context.caller(request))
            return Response.reply(ImportWrappingKeyReply(
                keyId: wrapping.keyID, spec: wrapping.publicKey.spec, publicKey: Base64Bytes(wrapping.publicKey.representation),
                publicKeyPem: wrapping.publicKey.pem, expiresAt: wrapping.expiresAt,
                wrapping: "RSA-OAEP-SHA256 of a random AES-256 key, then AES-KWP (RFC 5649) of the key material"), status: .created)
        }

        routes.on(.post, "/v1/keys/import") { request, context in
            let input = try await body.decode(ImportKeyBody.self, from: request)
            let key = try await slot.current.importWrappedKey(input.wrappedMaterial.value, wrappingKey: input.wrappingKeyId,
                                                         request: try input.key.request(), actor: try context.caller(request))
            return Response.reply(KeyReply(key), status: .created)
        }

        routes.on(.put, "/v1/aliases/{alias}") { request, context in
            let alias = try context.parameter("alias")
            let target = try await body.decode(AliasBody.self, from: request)
            try await slot.current.setAlias(alias, key: target.key, actor: try context.caller(request))
            return Response.reply(AliasReply(alias: alias, key: target.key))
        }

        routes.on(.delete, "/v1/aliases/{alias}") { request, context in
            try await slot.current.deleteAlias(try context.parameter("alias"), actor: try context.caller(request))
            return Response(status: .noContent)
        }
    }
}
