import Foundation
import KeywardAPI

extension KeywardClient {
    /// Creates a key: `spec` (default AES-256-GCM), aliases, tags, description, and whether it
    /// may be exported, with an optional rotation period; `backupAllowed` (nil: the spec's
    /// default), `preActive` (to enable later) and `contextRequired` (every use must carry an
    /// encryption context) as the native API takes them.
    public func createKey(spec: String = "AES-256-GCM", aliases: [String] = [], tags: [String: String] = [:], description: String = "",
                          exportable: Bool = false, rotationPeriodDays: Int? = nil, backupAllowed: Bool? = nil, preActive: Bool = false,
                          contextRequired: Bool = false) async throws(KeywardClientError) -> KeyInfo {
        let body = CreateKeyBody(spec: spec, aliases: aliases, tags: tags, description: description, exportable: exportable,
                                 backupAllowed: backupAllowed, rotationPeriodDays: rotationPeriodDays,
                                 initialState: preActive ? "pre-active" : nil, contextRequired: contextRequired ? true : nil)
        return KeyInfo(try await call(.POST, "/v1/keys", body, as: KeyReply.self, repeatable: false))
    }

    /// A key's metadata, by id or alias.
    public func describeKey(_ key: String) async throws(KeywardClientError) -> KeyInfo {
        KeyInfo(try await call(.GET, "/v1/keys/\(Self.path(key))", as: KeyReply.self))
    }

    /// A page of the keys this principal may describe.
    public func listKeys(state: String? = nil, tag: (name: String, value: String)? = nil, alias: String? = nil,
                         after cursor: String? = nil, limit: Int = 100) async throws(KeywardClientError) -> KeyList {
        var query: [URLQueryItem] = [URLQueryItem(name: "limit", value: String(limit))]
        if let state { query.append(URLQueryItem(name: "state", value: state)) }
        if let tag { query.append(URLQueryItem(name: "tag", value: "\(tag.name)=\(tag.value)")) }
        if let alias { query.append(URLQueryItem(name: "alias", value: alias)) }
        if let cursor { query.append(URLQueryItem(name: "after", value: cursor)) }
        var components = URLComponents()
        components.queryItems = query
        return KeyList(try await call(.GET, "/v1/keys?" + (components.percentEncodedQuery ?? ""), as: KeyPageReply.self))
    }

    /// Changes a key's description, some of its tags (`setTags` and `removeTags`, applied to the
    /// tags as the server reads them, so concurrent callers keep each other's), its rotation
    /// period (0 turns automatic rotation off) or its minimum decryption version; what is not
    /// given stays as it is.
    public func updateKey(_ key: String, description: String? = nil, setTags: [String: String] = [:], removeTags: [String] = [],
                          rotationPeriodDays: Int? = nil, minDecryptionVersion: Int? = nil) async throws(KeywardClientError) -> KeyInfo {
        var minimum: UInt32? = nil
        if let minDecryptionVersion {
            guard let version = UInt32(exactly: minDecryptionVersion), version >= 1 else {
                throw .configuration("the minimum decryption version is 1 or more, not \(minDecryptionVersion)")
            }
            minimum = version
        }
        let body = UpdateKeyBody(description: description, setTags: setTags.isEmpty ? nil : setTags, removeTags: removeTags.isEmpty ? nil : removeTags,
                                 rotationPeriodDays: rotationPeriodDays, minDecryptionVersion: minimum)
        return KeyInfo(try await call(.PATCH, "/v1/keys/\(Self.path(key))", body, as: KeyReply.self))
    }

    /// Adds a version with fresh material.
    public func rotateKey(_ key: String) async throws(KeywardClientError) -> KeyInfo {
        KeyInfo(try await call(.POST, "/v1/keys/\(Self.path(key))/rotate", as: KeyReply.self, repeatable: false))
    }

    /// A lifecycle transition: `enable`, `disable`, `deactivate`, `mark-compromised` or
    /// `cancel-destruction`.
    public func transition(_ key: String, _ transition: String) async throws(KeywardClientError) -> KeyInfo {
        guard ["enable", "disable", "deactivate", "mark-compromised", "cancel-destruction"].contains(transition) else {
            throw .configuration("unknown transition '\(transition)'")
        }
        return KeyInfo(try await call(.POST, "/v1/keys/\(Self.path(key))/\(transition)", as: KeyReply.self, repeatable: false))
    }

    /// Schedules destruction after `waitingDays` (7 to 30).
    public func scheduleDestruction(_ key: String, waitingDays: Int = 30) async throws(KeywardClientError) -> KeyInfo {
        KeyInfo(try await call(.POST, "/v1/keys/\(Self.path(key))/schedule-destruction", ScheduleDestructionBody(waitingDays: waitingDays), as: KeyReply.self, repeatable: false))
    }

    /// Destroys the material of every version below `below` (which must not be above the key's
    /// minimum decryption version); needs `destroy` on the key.
    public func destroyVersions(_ key: String, below: Int) async throws(KeywardClientError) -> KeyInfo {
        guard let below = UInt32(exactly: below), below >= 1 else { throw .configuration("the oldest version to keep is 1 or more, not \(below)") }
        return KeyInfo(try await call(.POST, "/v1/keys/\(Self.path(key))/destroy-versions", DestroyVersionsBody(below: below), as: KeyReply.self, repeatable: false))
    }

    /// The public key of an asymmetric key, as SPKI DER (or raw bytes for post-quantum specs).
    public func publicKey(_ key: String) async throws(KeywardClientError) -> [UInt8] {
        try await publicKeyDetails(key).bytes
    }

    /// The public key of `version` (default: the newest) of an asymmetric key, with its PEM
    /// where the spec has one.
    public func publicKeyDetails(_ key: String, version: Int? = nil) async throws(KeywardClientError) -> ClientPublicKey {
        let query = version.map { "?version=\($0)" } ?? ""
        let reply = try await call(.GET, "/v1/keys/\(Self.path(key))/public-key" + query, as: PublicKeyReply.self)
        return ClientPublicKey(bytes: reply.publicKey.value, pem: reply.publicKeyPem, spec: reply.spec.rawValue)
    }

    /// Points `alias` at `key`, creating the alias or moving it (`update` on the keys involved).
    public func setAlias(_ alias: String, key: String) async throws(KeywardClientError) {
        struct Body: Encodable { let key: String }
        struct Reply: Decodable { let alias: String }
        _ = try await call(.PUT, "/v1/aliases/\(Self.path(alias))", Body(key: key), as: Reply.self)
    }

    /// Removes `alias` (`update` on its key).
    public func deleteAlias(_ alias: String) async throws(KeywardClientError) {
        _ = try await send(.DELETE, "/v1/aliases/\(Self.path(alias))", nil)
    }
}

/// An asymmetric key's public half, as the service gives it.
public struct ClientPublicKey: Sendable, Equatable {
    /// SPKI DER, or the raw encoding for post-quantum specs.
    public var bytes: [UInt8]
    /// PEM (`PUBLIC KEY`), where the spec has one.
    public var pem: String?
    /// The key's spec.
    public var spec: String
}
