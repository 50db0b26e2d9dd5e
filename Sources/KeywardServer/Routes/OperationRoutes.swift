import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import KeywardCrypto

/// The cryptographic operations: encrypt, decrypt, re-encrypt, data keys, sign, verify, MAC,
/// shared secrets, decapsulation and random bytes, with batch forms of encrypt, decrypt and
/// sign. Key material never leaves the service; only results do.
enum OperationRoutes {
    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, body: BodyReader) {
        routes.on(.post, "/v1/keys/{key}/encrypt") { request, context in
            var input = try await body.decode(EncryptBody.self, from: request)
            defer { SecureZero.wipe(&input.plaintext.value) }
            let result = try await slot.current.encrypt(input.plaintext.value, key: try context.parameter("key"),
                                                   context: try input.context.encryptionContext, actor: try context.caller(request))
            return Response.reply(CiphertextReply(result))
        }

        routes.on(.post, "/v1/keys/{key}/encrypt/batch") { request, context in
            var input = try await body.decode(BatchBody<EncryptBody>.self, from: request)
            defer { for index in input.items.indices { SecureZero.wipe(&input.items[index].plaintext.value) } }
            let key = try context.parameter("key")
            let caller = try context.caller(request)
            let results = try await batch(input.items, { item throws(APIError) in
                EncryptItem(item.plaintext.value, context: try item.context.encryptionContext)
            }, run: { items throws(KeywardError) in try await slot.current.encryptBatch(items, key: key, actor: caller) })
            return batchResponse(results, CiphertextReply.init)
        }

        @Sendable func decrypt(_ request: Request, _ context: KeywardRequestContext, expected: String?) async throws -> Response {
            let input = try await body.decode(DecryptBody.self, from: request)
            var result = try await slot.current.decrypt(input.ciphertext.value, context: try input.context.encryptionContext,
                                                   expectedKey: expected, actor: try context.caller(request))
            defer { SecureZero.wipe(&result.plaintext) }
            return Response.reply(PlaintextReply(result))
        }
        routes.on(.post, "/v1/keys/{key}/decrypt") { request, context in
            try await decrypt(request, context, expected: try context.parameter("key"))
        }
        routes.on(.post, "/v1/decrypt") { request, context in
            try await decrypt(request, context, expected: nil)
        }

        routes.on(.post, "/v1/keys/{key}/decrypt/batch") { request, context in
            let input = try await body.decode(BatchBody<DecryptBody>.self, from: request)
            let key = try context.parameter("key")
            let caller = try context.caller(request)
            var results = try await batch(input.items, { item throws(APIError) in
                DecryptItem(item.ciphertext.value, context: try item.context.encryptionContext)
            }, run: { items throws(KeywardError) in try await slot.current.decryptBatch(items, key: key, actor: caller) })
            defer {
                for index in results.indices {
                    guard case .success(var value) = results[index] else { continue }
                    // Drop the array's reference first, so `value` holds the only one and the wipe
                    // clears the bytes themselves, not a copy made on write.
                    results[index] = .failure(APIError("wiped", .ok, ""))
                    SecureZero.wipe(&value.plaintext)
                }
            }
            return batchResponse(results, PlaintextReply.init)
        }

        routes.on(.post, "/v1/keys/{key}/re-encrypt") { request, context in
            let input = try await body.decode(ReEncryptBody.self, from: request)
            let result = try await slot.current.reEncrypt(input.ciphertext.value, sourceContext: try input.sourceContext.encryptionContext,
                                                     destinationKey: try context.parameter("key"),
                                                     destinationContext: try input.destinationContext.encryptionContext,
                                                     actor: try context.caller(request))
            return Response.reply(CiphertextReply(result))
        }

        routes.on(.post, "/v1/keys/{key}/data-key") { request, context in
            let input = try await body.decode(DataKeyBody.self, from: request)
            var spec = KeySpec.aes256GCM
            if let name = input.spec {
                do throws(KeywardCryptoError) { spec = try KeySpec(named: name) } catch { throw APIError(KeywardError.crypto(error)) }
            }
            let key = try context.parameter("key")
            let caller = try context.caller(request)
            let encryptionContext = try input.context.encryptionContext
            if input.includePlaintext == false {
                let sealed = try await slot.current.generateDataKeyWithoutPlaintext(key: key, spec: spec, context: encryptionContext, actor: caller)
                return Response.reply(DataKeyReply(plaintext: nil, ciphertext: Base64Bytes(sealed.ciphertext), keyId: sealed.keyID, version: sealed.version))
            }
            let dataKey = try await slot.current.generateDataKey(key: key, spec: spec, context: encryptionContext, actor: caller)
            var plaintext = dataKey.plaintext.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            defer { SecureZero.wipe(&plaintext) }
            return Response.reply(DataKeyReply(plaintext: Base64Bytes(plaintext), ciphertext: Base64Bytes(dataKey.ciphertext),
                                               keyId: dataKey.keyID, version: dataKey.version))
        }

        routes.on(.post, "/v1/keys/{key}/data-key-pair") { request, context in
            let input = try await body.decode(DataKeyPairBody.self, from: request)
            let pairSpec: KeySpec
            do throws(KeywardCryptoError) { pairSpec = try KeySpec(named: input.pairSpec) } catch { throw APIError(KeywardError.crypto(error)) }
            let pair = try await slot.current.generateDataKeyPair(key: try context.parameter("key"), pairSpec: pairSpec,
                                                             context: try input.context.encryptionContext, actor: try context.caller(request))
            return Response.reply(DataKeyPairReply(spec: pair.publicKey.spec, publicKey: Base64Bytes(pair.publicKey.representation),
                                                   publicKeyPem: pair.publicKey.pem, privateKeyCiphertext: Base64Bytes(pair.privateKeyCiphertext),
                                                   keyId: pair.keyID, version: pair.version))
        }

        routes.on(.post, "/v1/keys/{key}/sign") { request, context in
            let input = try await body.decode(SignBody.self, from: request)
            let result = try await slot.current.sign(try input.input(), key: try context.parameter("key"), context: input.context?.value,
                                                actor: try context.caller(request))
            return Response.reply(SignatureReply(result))
        }

        routes.on(.post, "/v1/keys/{key}/sign/batch") { request, context in
            let input = try await body.decode(BatchBody<SignBody>.self, from: request)
            let key = try context.parameter("key")
            let caller = try context.caller(request)
            let results = try await batch(input.items, { item throws(APIError) in
                SignItem(try item.input(), context: item.context?.value)
            }, run: { items throws(KeywardError) in try await slot.current.signBatch(items, key: key, actor: caller) })
            return batchResponse(results, SignatureReply.init)
        }

        routes.on(.post, "/v1/keys/{key}/verify") { request, context in
            let input = try await body.decode(VerifyBody.self, from: request)
            let valid = try await slot.current.verify(input.signature.value, for: try input.input(), key: try context.parameter("key"),
                                                 version: input.version, context: input.context?.value,
                                                 encoding: try input.signatureEncoding(), actor: try context.caller(request))
            return Response.reply(ValidityReply(valid: valid))
        }

        routes.on(.post, "/v1/keys/{key}/mac") { request, context in
            let input = try await body.decode(MACBody.self, from: request)
            let result = try await slot.current.mac(input.message.value, key: try context.parameter("key"), actor: try context.caller(request))
            return Response.reply(MACReply(mac: Base64Bytes(result.tag), keyId: result.keyID, version: result.version))
        }

        routes.on(.post, "/v1/keys/{key}/verify-mac") { request, context in
            let input = try await body.decode(VerifyMACBody.self, from: request)
            let valid = try await slot.current.verifyMAC(input.mac.value, for: input.message.value, key: try context.parameter("key"),
                                                    version: input.version, actor: try context.caller(request))
            return Response.reply(ValidityReply(valid: valid))
        }

        routes.on(.post, "/v1/keys/{key}/derive-shared-secret") { request, context in
            let input = try await body.decode(DeriveSharedSecretBody.self, from: request)
            let secret = try await slot.current.deriveSharedSecret(key: try context.parameter("key"), peerEncoded: input.peerPublicKey.value,
                                                              actor: try context.caller(request))
            var bytes = secret.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            defer { SecureZero.wipe(&bytes) }
            return Response.reply(SharedSecretReply(sharedSecret: Base64Bytes(bytes)))
        }

        routes.on(.post, "/v1/keys/{key}/decapsulate") { request, context in
            let input = try await body.decode(DecapsulateBody.self, from: request)
            let secret = try await slot.current.decapsulate(input.encapsulated.value, key: try context.parameter("key"), version: input.version,
                                                       actor: try context.caller(request))
            var bytes = secret.withSecretBytes(InsecureSecretAccess.token) { Array($0) }
            defer { SecureZero.wipe(&bytes) }
            return Response.reply(SharedSecretReply(sharedSecret: Base64Bytes(bytes)))
        }

        routes.on(.post, "/v1/random") { request, context in
            let input = try await body.decode(RandomBody.self, from: request)
            let bytes = try await slot.current.random(count: input.count, actor: try context.caller(request))
            return Response.reply(RandomReply(random: Base64Bytes(bytes)))
        }
    }

    /// `{"results":[...]}`: each item's reply, or its error.
    static func batchResponse<Output, Reply: WritableReply & Equatable>(_ results: [Result<Output, APIError>], _ reply: (Output) -> Reply) -> Response {
        Response.reply(BatchReply(results: results.map { result in
            switch result {
            case .success(let value): .success(reply(value))
            case .failure(let error): .failure(ErrorReply.Detail(code: error.code, message: error.message))
            }
        }))
    }

    /// A batch request: each item is checked first (`prepare`; an item the document's schema
    /// refuses, such as a context of more than 64 pairs, fails the request with 400 naming
    /// `items[i]`), then all go to the service in one call (`run`: one key lookup, one audit
    /// entry), and every item's result comes back in order: an item the key cannot process (a
    /// ciphertext of another key, a failed authentication) fails alone. What fails the whole
    /// call (the key, the policy, the key's state) fails the request.
    static func batch<Item, Input: Sendable, Output>(
        _ items: [Item], _ prepare: (Item) throws(APIError) -> Input,
        run: ([Input]) async throws(KeywardError) -> [Result<Output, KeywardError>]
    ) async throws(APIError) -> [Result<Output, APIError>] {
        guard !items.isEmpty, items.count <= KeyService.maximumBatchItems else {
            throw APIError.invalidRequest("a batch holds 1 to \(KeyService.maximumBatchItems) items, not \(items.count)")
        }
        var inputs: [Input] = []
        inputs.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do throws(APIError) {
                inputs.append(try prepare(item))
            } catch {
                throw APIError(error.code, error.status, "items[\(index)]: \(error.message)")
            }
        }
        let outputs: [Result<Output, KeywardError>]
        do throws(KeywardError) { outputs = try await run(inputs) } catch { throw APIError(error) }
        return outputs.map { $0.mapError { APIError($0) } }
    }
}

extension CiphertextReply {
    /// The reply for an encryption.
    init(_ result: EncryptResult) {
        self.init(ciphertext: Base64Bytes(result.ciphertext), keyId: result.keyID, version: result.version)
    }
}

extension PlaintextReply {
    /// The reply for a decryption.
    init(_ result: DecryptResult) {
        self.init(plaintext: Base64Bytes(result.plaintext), keyId: result.keyID, version: result.version)
    }
}

extension SignatureReply {
    /// The reply for a signature.
    init(_ result: SignResult) {
        self.init(signature: Base64Bytes(result.signature), keyId: result.keyID, version: result.version)
    }
}
