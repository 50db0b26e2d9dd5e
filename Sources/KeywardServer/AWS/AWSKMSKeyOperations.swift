import Foundation
import Keyward
import KeywardAPI
import KeywardCrypto

/// AWS KMS key management: keys, their lifecycle, tags, aliases and rotation, each a
/// `KeyService` call.
enum AWSKMSKeyOperations {
    /// The operations GetKeyLastUsage reports, with AWS's names for them.
    static let lastUsageNames: [ServiceOperation: String] = [
        .encrypt: "Encrypt", .decrypt: "Decrypt", .reEncrypt: "ReEncrypt", .generateDataKey: "GenerateDataKey",
        .generateDataKeyPair: "GenerateDataKeyPair", .sign: "Sign", .verify: "Verify", .mac: "GenerateMac",
        .verifyMAC: "VerifyMac", .deriveSharedSecret: "DeriveSharedSecret",
    ]

    static let handlers: [String: AWSKMSRoutes.Handler] = [
        "CreateKey": createKey,
        "DescribeKey": { call, json in
            let key = try await describe(call, try call.reference("KeyId"))
            json.member("KeyMetadata") { json in json.object { keyMetadata(key, call, &$0) } }
        },
        "ListKeys": listKeys,
        "GetKeyLastUsage": { call, json in
            // From the audit log: the newest successful use among the operations AWS tracks.
            let reference = try call.reference("KeyId")
            let key = try await describe(call, reference)
            let use = try await call.run { () async throws(KeywardError) in
                try await call.service.lastUse(key: key.metadata.id.description, operations: Set(lastUsageNames.keys), actor: call.caller)
            }
            json.member("KeyId", call.arn(key.metadata.id))
            if let operation = use.operation, let time = use.time,
               let name = lastUsageNames.first(where: { AuditOperation.key($0.key).description == operation })?.value {
                json.member("KeyLastUsage") { json in
                    json.object { json in
                        json.member("Operation", name)
                        json.member("Timestamp", epoch: time)
                        if let request = use.requestID { json.member("KmsRequestId", request) }
                    }
                }
            }
            json.member("TrackingStartDate", epoch: use.trackedSince ?? key.metadata.createdAt)
            json.member("KeyCreationDate", epoch: key.metadata.createdAt)
        },
        "EnableKey": { call, _ in _ = try await transition(call, .enable) },
        "DisableKey": { call, _ in _ = try await transition(call, .disable) },
        "ScheduleKeyDeletion": { call, json in
            let days = try call.input.int("PendingWindowInDays", 7...30) ?? 30
            let key = try await transition(call, .scheduleDestruction, days: days)
            json.member("KeyId", call.arn(key.metadata.id))
            if let date = key.metadata.destructionDate { json.member("DeletionDate", epoch: date) }
            json.member("KeyState", "PendingDeletion")
            json.member("PendingWindowInDays", days)
        },
        "CancelKeyDeletion": { call, json in
            let key = try await transition(call, .cancelDestruction)
            json.member("KeyId", call.arn(key.metadata.id))
        },
        "UpdateKeyDescription": { call, _ in
            let reference = try call.reference("KeyId")
            guard let description = try call.input.string("Description") else { throw AWSFault.validation("Description is required") }
            _ = try await call.run { () async throws(KeywardError) in try await call.service.update(key: reference, description: description, actor: call.caller) }
        },
        "TagResource": { call, _ in
            let reference = try call.reference("KeyId")
            guard let tags = try call.input.tags("Tags") else { throw AWSFault.validation("Tags is required") }
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.update(key: reference, tagChanges: TagChanges(set: tags), actor: call.caller)
            }
        },
        "UntagResource": { call, _ in
            let reference = try call.reference("KeyId")
            guard let names = try call.input.strings("TagKeys") else { throw AWSFault.validation("TagKeys is required") }
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.update(key: reference, tagChanges: TagChanges(remove: Set(names)), actor: call.caller)
            }
        },
        "ListResourceTags": { call, json in
            let key = try await describe(call, try call.reference("KeyId"))
            let limit = try call.input.int("Limit", 1...50) ?? 50
            let names = key.metadata.tags.keys.sorted()
            let start = try start(call, in: names)
            let page = Array(names[start..<min(names.count, start + limit)])
            json.member("Tags") { json in
                json.array { json in for name in page { json.object { $0.member("TagKey", name); $0.member("TagValue", key.metadata.tags[name] ?? "") } } }
            }
            let more = start + page.count < names.count
            json.member("Truncated", more)
            if more, let last = page.last { json.member("NextMarker", last) }
        },
        "CreateAlias": { call, _ in
            let alias = try aliasName(call, "AliasName")
            let target = try call.reference("TargetKeyId")
            do throws(KeywardError) {
                try await call.service.setAlias(alias, key: target, as: .create, actor: call.caller)
            } catch .aliasTaken {
                throw AWSFault.alreadyExists("An alias with the name \(call.aliasARN(alias)) already exists")
            } catch {
                throw call.fault(error)
            }
        },
        "UpdateAlias": { call, _ in
            let alias = try aliasName(call, "AliasName")
            let target = try call.reference("TargetKeyId")
            do throws(KeywardError) {
                try await call.service.setAlias(alias, key: target, as: .move, actor: call.caller)
            } catch .keyNotFound(let name) where name == alias {
                throw AWSFault.notFound("Alias \(call.aliasARN(alias)) is not found.")
            } catch {
                throw call.fault(error)
            }
        },
        "DeleteAlias": { call, _ in
            let alias = try aliasName(call, "AliasName")
            try await call.run { () async throws(KeywardError) in try await call.service.deleteAlias(alias, actor: call.caller) }
        },
        "ListAliases": listAliases,
        "EnableKeyRotation": { call, _ in
            let reference = try call.reference("KeyId")
            let days = try call.input.int("RotationPeriodInDays", 90...2560) ?? 365
            try rotatable(try await describe(call, reference, for: .update), "EnableKeyRotation")
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.update(key: reference, rotationPeriodDays: .some(days), actor: call.caller)
            }
        },
        "DisableKeyRotation": { call, _ in
            let reference = try call.reference("KeyId")
            try rotatable(try await describe(call, reference, for: .update), "DisableKeyRotation")
            _ = try await call.run { () async throws(KeywardError) in
                try await call.service.update(key: reference, rotationPeriodDays: .some(nil), actor: call.caller)
            }
        },
        "GetKeyRotationStatus": { call, json in
            let key = try await describe(call, try call.reference("KeyId"))
            json.member("KeyRotationEnabled", key.metadata.rotationPeriodDays != nil)
            json.member("KeyId", call.arn(key.metadata.id))
            json.member("RotationPeriodInDays", key.metadata.rotationPeriodDays)
            if let next = key.metadata.nextRotationAt { json.member("NextRotationDate", epoch: next) }
        },
        "ListKeyRotations": { call, json in
            let reference = try call.reference("KeyId")
            let limit = try call.input.int("Limit", 1...1000) ?? 100
            let versions = try await call.run { () async throws(KeywardError) in try await call.service.versions(key: reference, actor: call.caller) }
            let id = try await describe(call, reference).metadata.id
            // Each version after the first is a rotation; the marker is a version number.
            let rotations = versions.filter { $0.number > 1 }
            let start = try start(call, in: rotations.map { String($0.number) })
            let page = rotations[start..<min(rotations.count, start + limit)]
            json.member("Rotations") { json in
                json.array { json in
                    for version in page {
                        json.object { json in
                            json.member("KeyId", call.arn(id))
                            json.member("RotationDate", epoch: version.createdAt)
                            json.member("RotationType", version.rotation == "scheduled" ? "AUTOMATIC" : "ON_DEMAND")
                        }
                    }
                }
            }
            let more = start + page.count < rotations.count
            json.member("Truncated", more)
            if more, let last = page.last { json.member("NextMarker", String(last.number)) }
        },
        "RotateKeyOnDemand": { call, json in
            let reference = try call.reference("KeyId")
            try rotatable(try await describe(call, reference, for: .rotate), "RotateKeyOnDemand")
            let key = try await call.run { () async throws(KeywardError) in try await call.service.rotate(key: reference, actor: call.caller) }
            json.member("KeyId", call.arn(key.metadata.id))
        },
    ]

    /// AWS rotates symmetric encryption keys only: a new version of an asymmetric key changes
    /// its public key under every holder of the old one, and imported material is the owner's,
    /// so Keyward never replaces it. Others are `UnsupportedOperationException`, as in AWS.
    static func rotatable(_ key: KeyDescription, _ operation: String) throws(APIError) {
        let spec = key.metadata.spec
        guard spec.isSymmetric, spec.purpose == .encrypt else {
            throw AWSFault.unsupported("\(operation) is for symmetric encryption keys; \(key.metadata.id) is \(AWSKeySpec.aws(spec) ?? spec.rawValue) \(AWSKeySpec.usage(spec))")
        }
        guard !key.metadata.holdsImportedMaterial else {
            throw AWSFault.unsupported("\(operation): \(key.metadata.id) holds imported material, which Keyward never rotates; import new material into a new key instead")
        }
    }

    static func describe(_ call: AWSCall, _ reference: String) async throws(APIError) -> KeyDescription {
        let key = try await call.run { () async throws(KeywardError) in try await call.service.describe(key: reference, actor: call.caller) }
        guard key.metadata.state != .destroyed else { throw AWSFault.notFound("Key '\(key.metadata.id)' is destroyed") }
        return key
    }

    /// The key's description for a call about to do `operation` on it (its spec shapes the
    /// request): authorised for that operation, so a grantee needs no `DescribeKey` as well.
    static func describe(_ call: AWSCall, _ reference: String, for operation: ServiceOperation) async throws(APIError) -> KeyDescription {
        let key = try await call.run { () async throws(KeywardError) in
            try await call.service.describe(key: reference, forUseIn: operation, actor: call.caller)
        }
        guard key.metadata.state != .destroyed else { throw AWSFault.notFound("Key '\(key.metadata.id)' is destroyed") }
        return key
    }

    static func transition(_ call: AWSCall, _ operation: ServiceOperation, days: Int? = nil) async throws(APIError) -> KeyDescription {
        let reference = try call.reference("KeyId")
        return try await call.run { () async throws(KeywardError) in
            try await call.service.transition(key: reference, operation, waitingDays: days, actor: call.caller)
        }
    }

    /// Keyward's alias for an AWS alias name (`alias/NAME`).
    static func aliasName(_ call: AWSCall, _ field: String) throws(APIError) -> String {
        guard let name = try call.input.string(field) else { throw AWSFault.validation("\(field) is required") }
        guard name.hasPrefix("alias/"), name.count > 6, name.count <= 256 else {
            throw AWSFault.invalidAlias("\(field) must begin with alias/ and be at most 256 characters")
        }
        guard !name.hasPrefix("alias/aws/") else { throw AWSFault.invalidAlias("alias/aws/ is reserved for AWS managed keys") }
        return String(name.dropFirst(6))
    }

    /// Where a page starts: after `Marker` (an item of `items`, from a previous page).
    static func start(_ call: AWSCall, in items: [String]) throws(APIError) -> Int {
        guard let marker = try call.input.string("Marker") else { return 0 }
        guard let index = items.firstIndex(of: marker) else { throw AWSFault.invalidMarker("Marker is not one this operation returned") }
        return index + 1
    }

    static func createKey(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let input = call.input
        try input.refuse([
            "CustomKeyStoreId": "custom key stores are out of scope",
            "XksKeyId": "external key stores are out of scope",
        ])
        if try input.bool("MultiRegion") == true { throw AWSFault.unsupported("multi-Region keys are out of scope") }
        let origin = try input.string("Origin") ?? "AWS_KMS"
        guard origin == "AWS_KMS" || origin == "EXTERNAL" else {
            throw AWSFault.unsupported("Origin \(origin.prefix(40)) is not supported; keys are generated by Keyward (AWS_KMS) or imported (EXTERNAL)")
        }
        let specName = try input.string("KeySpec") ?? input.string("CustomerMasterKeySpec") ?? "SYMMETRIC_DEFAULT"
        let usage = try input.string("KeyUsage") ?? (specName.hasPrefix("HMAC") ? "GENERATE_VERIFY_MAC" : specName == "SYMMETRIC_DEFAULT" ? "ENCRYPT_DECRYPT" : "")
        guard var spec = AWSKeySpec.keyward(specName, usage: usage) else {
            throw AWSFault.validation("KeySpec \(specName.prefix(40)) with KeyUsage \(usage.prefix(40)) is not supported (see docs/aws-kms.md)")
        }
        var tags = try input.tags("Tags") ?? [:]
        // A Keyward key signs with one algorithm: an RSA signing key is RSASSA_PSS_SHA_256 unless
        // this tag names another (it chooses the key's spec and is not stored as a tag).
        if let algorithm = tags.removeValue(forKey: AWSKeySpec.signingAlgorithmTag) {
            guard let bits = spec.rsaBits, spec.purpose == .sign, let chosen = AWSKeySpec.rsaSigning(bits: bits, algorithm) else {
                throw AWSFault.validation("the tag \(AWSKeySpec.signingAlgorithmTag) applies to RSA SIGN_VERIFY keys, with a value of "
                                          + "RSASSA_PSS_SHA_256/384/512 or RSASSA_PKCS1_V1_5_SHA_256/384/512, not \(algorithm.prefix(40))")
            }
            spec = chosen
        }
        var request = CreateKeyRequest(spec: spec, tags: tags, description: try input.string("Description") ?? "")
        if let text = try input.string("Policy") {
            // The key's ARN is not known yet: its statements name their Resource as "*".
            let parsed = try AWSKeyPolicyDocument.parse(text, keyARN: "*", accountID: call.settings.accountID)
            request.keyPolicy = parsed.statements.isEmpty && parsed.principalPolicyOperations == KeyPolicy.keyOperations ? nil : parsed
            request.bypassKeyPolicyLockoutCheck = try input.bool("BypassPolicyLockoutSafetyCheck") ?? false
        }
        let key: KeyDescription
        do throws(APIError) {
            key = try await call.run { () async throws(KeywardError) in
            origin == "EXTERNAL" ? try await call.service.createKeyForImport(request, actor: call.caller) : try await call.service.createKey(request, actor: call.caller)
            }
        } catch {
            if error.code == "not_permitted", request.keyPolicy != nil { throw AWSKeyPolicyDocument.malformed(error.message) }
            throw error
        }
        json.member("KeyMetadata") { json in json.object { keyMetadata(key, call, &$0) } }
    }

    /// AWS's `KeyMetadata` of a key.
    static func keyMetadata(_ key: KeyDescription, _ call: AWSCall, _ json: inout JSONWriter) {
        let metadata = key.metadata
        let (state, enabled) = AWSKeySpec.state(metadata)
        json.member("AWSAccountId", call.settings.accountID)
        json.member("KeyId", metadata.id.description)
        json.member("Arn", call.arn(metadata.id))
        json.member("CreationDate", epoch: metadata.createdAt)
        json.member("Enabled", enabled)
        json.member("Description", metadata.description)
        json.member("KeyUsage", AWSKeySpec.usage(metadata.spec))
        json.member("KeyState", state)
        if let date = metadata.destructionDate, metadata.state == .pendingDestruction { json.member("DeletionDate", epoch: date) }
        json.member("Origin", metadata.holdsImportedMaterial ? "EXTERNAL" : "AWS_KMS")
        if metadata.origin == KeyMetadata.externalOrigin, metadata.awaitingMaterial != true {
            json.member("ExpirationModel", metadata.expiresAt == nil ? "KEY_MATERIAL_DOES_NOT_EXPIRE" : "KEY_MATERIAL_EXPIRES")
        }
        if let id = AWSKMSImportOperations.keyMaterialID(metadata) { json.member("CurrentKeyMaterialId", id) }
        json.member("KeyManager", "CUSTOMER")
        if let spec = AWSKeySpec.aws(metadata.spec) {
            json.member("CustomerMasterKeySpec", spec)
            json.member("KeySpec", spec)
        }
        let encryption = AWSKeySpec.encryptionAlgorithms(metadata.spec), signing = AWSKeySpec.signingAlgorithms(metadata.spec)
        let mac = AWSKeySpec.macAlgorithms(metadata.spec)
        if !encryption.isEmpty { json.member("EncryptionAlgorithms", strings: encryption) }
        if !signing.isEmpty { json.member("SigningAlgorithms", strings: signing) }
        if !mac.isEmpty { json.member("MacAlgorithms", strings: mac) }
        if metadata.spec.purpose == .keyAgreement { json.member("KeyAgreementAlgorithms", strings: ["ECDH"]) }
        if let expiry = metadata.expiresAt { json.member("ValidTo", epoch: expiry) }
        json.member("MultiRegion", false)
    }

    static func listKeys(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let limit = try call.input.int("Limit", 1...1000) ?? 100
        var cursor: KeyID? = nil
        if let marker = try call.input.string("Marker") {
            guard let id = KeyID(parsing: marker) else { throw AWSFault.invalidMarker("Marker is not one ListKeys returned") }
            cursor = id
        }
        let after = cursor
        let page = try await call.run { () async throws(KeywardError) in try await call.service.listKeys(after: after, limit: limit, actor: call.caller) }
        json.member("Keys") { json in
            json.array { json in
                for key in page.keys {
                    json.object { json in
                        json.member("KeyId", key.metadata.id.description)
                        json.member("KeyArn", call.arn(key.metadata.id))
                    }
                }
            }
        }
        json.member("Truncated", page.nextCursor != nil)
        if let next = page.nextCursor { json.member("NextMarker", next.description) }
    }

    /// Aliases, sorted by name: every alias of every key the caller may describe (or of one key,
    /// with `KeyId`), paged by name.
    static func listAliases(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let limit = try call.input.int("Limit", 1...100) ?? 50
        var found: [(name: String, key: KeyDescription)] = []
        if call.input.has("KeyId") {
            let key = try await describe(call, try call.reference("KeyId"))
            found = key.aliases.map { ($0, key) }
        } else {
            var cursor: KeyID? = nil
            repeat {
                let after = cursor
                let page = try await call.run { () async throws(KeywardError) in try await call.service.listKeys(after: after, limit: 1000, actor: call.caller) }
                for key in page.keys { found += key.aliases.map { ($0, key) } }
                cursor = page.nextCursor
            } while cursor != nil
        }
        found.sort { $0.name < $1.name }
        let names = found.map { "alias/" + $0.name }
        let start = try start(call, in: names)
        let page = found[start..<min(found.count, start + limit)]
        json.member("Aliases") { json in
            json.array { json in
                for (name, key) in page {
                    json.object { json in
                        json.member("AliasName", "alias/" + name)
                        json.member("AliasArn", call.aliasARN(name))
                        json.member("TargetKeyId", key.metadata.id.description)
                    }
                }
            }
        }
        let more = start + page.count < found.count
        json.member("Truncated", more)
        if more, let last = page.last { json.member("NextMarker", "alias/" + last.name) }
    }
}
