import Foundation
import Keyward
import KeywardAPI
import KeywardCrypto

/// AWS KMS cryptographic operations, each a `KeyService` call. Ciphertext blobs are Keyward
/// ciphertexts (they name their key, so `Decrypt` needs no `KeyId`); encryption context is
/// authenticated exactly as AWS does it: the same pairs are needed to decrypt.
enum AWSKMSCryptoOperations {
    static let handlers: [String: AWSKMSRoutes.Handler] = [
        "Encrypt": encrypt,
        "Decrypt": decrypt,
        "ReEncrypt": reEncrypt,
        "GenerateDataKey": { call, json in try await generateDataKey(call, &json, plaintext: true) },
        "GenerateDataKeyWithoutPlaintext": { call, json in try await generateDataKey(call, &json, plaintext: false) },
        "GenerateDataKeyPair": { call, json in try await generateDataKeyPair(call, &json, plaintext: true) },
        "GenerateDataKeyPairWithoutPlaintext": { call, json in try await generateDataKeyPair(call, &json, plaintext: false) },
        "Sign": sign,
        "Verify": verify,
        "GenerateMac": generateMAC,
        "VerifyMac": verifyMAC,
        "GetPublicKey": getPublicKey,
        "GenerateRandom": { call, json in
            try call.input.refuse(["CustomKeyStoreId": "custom key stores are out of scope", "Recipient": "attested recipients are out of scope"])
            guard let count = try call.input.int("NumberOfBytes", 1...1024) else { throw AWSFault.validation("NumberOfBytes is required") }
            let bytes = try await call.run { () async throws(KeywardError) in try await call.service.random(count: count, actor: call.caller) }
            json.member("Plaintext", base64: bytes)
        },
        "DeriveSharedSecret": { call, json in
            try call.input.refuse(["Recipient": "attested recipients are out of scope"])
            let reference = try call.reference("KeyId")
            guard try call.input.string("KeyAgreementAlgorithm") == "ECDH" else { throw AWSFault.validation("KeyAgreementAlgorithm must be ECDH") }
            let peer = try call.input.requiredBlob("PublicKey")
            let secret = try await call.run { () async throws(KeywardError) in
                try await call.service.deriveSharedSecret(key: reference, peerEncoded: peer, actor: call.caller)
            }
            let key = try await AWSKMSKeyOperations.describe(call, reference, for: .deriveSharedSecret)
            json.member("KeyId", call.arn(key.metadata.id))
            secret.withSecretBytes(InsecureSecretAccess.token) { json.member("SharedSecret", base64: Array($0)) }
            json.member("KeyAgreementAlgorithm", "ECDH")
            json.member("KeyOrigin", "AWS_KMS")
        },
    ]

    /// The algorithm field, checked against what the spec serves (`SYMMETRIC_DEFAULT` for
    /// Keyward's AES-256-GCM keys).
    static func checkAlgorithm(_ call: AWSCall, _ field: String, _ spec: KeySpec, _ served: [String]) throws(APIError) -> String {
        let asked = try call.input.string(field) ?? served.first ?? ""
        guard served.contains(asked) else {
            throw AWSFault.invalidKeyUsage("\(field) \(asked.prefix(40)) is not valid for a \(AWSKeySpec.aws(spec) ?? spec.rawValue) key (\(served.isEmpty ? "it serves no \(field)" : "it serves " + served.joined(separator: ", ")))")
        }
        return asked
    }

    static func encrypt(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        let plaintext = try call.input.requiredBlob("Plaintext")
        guard (1...4096).contains(plaintext.count) else { throw AWSFault.validation("Plaintext must be 1 to 4096 bytes") }
        let context = try call.input.context()
        let algorithm = try call.input.string("EncryptionAlgorithm") ?? "SYMMETRIC_DEFAULT"
        let result: EncryptResult
        switch algorithm {
        case "SYMMETRIC_DEFAULT":
            result = try await call.run { () async throws(KeywardError) in
                try await call.service.encrypt(plaintext, key: reference, context: context, actor: call.caller)
            }
        case "RSAES_OAEP_SHA_256":
            guard context == .empty else { throw AWSFault.validation("EncryptionContext is not valid with an asymmetric key") }
            result = try await call.run { () async throws(KeywardError) in try await call.service.encryptAsymmetric(plaintext, key: reference, actor: call.caller) }
        default:
            throw AWSFault.unsupported("EncryptionAlgorithm \(algorithm.prefix(40)) is not supported (SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_256)")
        }
        json.member("CiphertextBlob", base64: result.ciphertext)
        json.member("KeyId", call.arn(result.keyID))
        json.member("EncryptionAlgorithm", algorithm)
    }

    static func decrypt(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let ciphertext = try call.input.requiredBlob("CiphertextBlob")
        let context = try call.input.context()
        let expected = call.input.has("KeyId") ? try call.reference("KeyId") : nil
        try call.input.refuse(["Recipient": "attested recipients are out of scope"])
        let algorithm = try call.input.string("EncryptionAlgorithm") ?? "SYMMETRIC_DEFAULT"
        let result: DecryptResult
        switch algorithm {
        case "SYMMETRIC_DEFAULT":
            result = try await call.run { () async throws(KeywardError) in
                try await call.service.decrypt(ciphertext, context: context, expectedKey: expected, actor: call.caller)
            }
        case "RSAES_OAEP_SHA_256":
            // The bare RSA ciphertext names no key: AWS requires KeyId here too.
            guard let expected else { throw AWSFault.validation("KeyId is required to decrypt with an asymmetric key") }
            guard context == .empty else { throw AWSFault.validation("EncryptionContext is not valid with an asymmetric key") }
            result = try await call.run { () async throws(KeywardError) in try await call.service.decryptAsymmetric(ciphertext, key: expected, actor: call.caller) }
        default:
            throw AWSFault.unsupported("EncryptionAlgorithm \(algorithm.prefix(40)) is not supported (SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_256)")
        }
        json.member("KeyId", call.arn(result.keyID))
        json.member("Plaintext", base64: result.plaintext)
        json.member("EncryptionAlgorithm", algorithm)
    }

    static func reEncrypt(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let ciphertext = try call.input.requiredBlob("CiphertextBlob")
        let destination = try call.reference("DestinationKeyId")
        let sourceContext = try call.input.context("SourceEncryptionContext")
        let destinationContext = try call.input.context("DestinationEncryptionContext")
        // The ciphertext names its key; a SourceKeyId must agree with it (IncorrectKeyException).
        let named = call.input.has("SourceKeyId") ? try call.reference("SourceKeyId") : nil
        let result = try await call.run { () async throws(KeywardError) in
            try await call.service.reEncrypt(ciphertext, sourceContext: sourceContext, expectedSourceKey: named, destinationKey: destination,
                                             destinationContext: destinationContext, actor: call.caller)
        }
        let source = (try? CiphertextHeader(parsing: ciphertext))?.keyID
        json.member("CiphertextBlob", base64: result.ciphertext)
        if let source { json.member("SourceKeyId", call.arn(source)) }
        json.member("KeyId", call.arn(result.keyID))
        json.member("SourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        json.member("DestinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
    }

    /// A data key of `KeySpec` AES_256 or AES_128, or of `NumberOfBytes` (1 to 1024).
    static func generateDataKey(_ call: AWSCall, _ json: inout JSONWriter, plaintext: Bool) async throws {
        let reference = try call.reference("KeyId")
        let context = try call.input.context()
        try call.input.refuse(["Recipient": "attested recipients are out of scope"])
        let spec = try call.input.string("KeySpec"), bytes = try call.input.int("NumberOfBytes", 1...1024)
        guard spec == nil || bytes == nil else { throw AWSFault.validation("give KeySpec or NumberOfBytes, not both") }
        let count: Int
        switch (spec, bytes) {
        case ("AES_256", _): count = 32
        case ("AES_128", _): count = 16
        case (nil, let bytes?): count = bytes
        case (nil, nil): throw AWSFault.validation("KeySpec or NumberOfBytes is required")
        case (let other?, _): throw AWSFault.validation("KeySpec \(other.prefix(40)) is not AES_256 or AES_128")
        }
        if plaintext {
            let key = try await call.run { () async throws(KeywardError) in
                try await call.service.generateDataKey(key: reference, byteCount: count, context: context, actor: call.caller)
            }
            json.member("CiphertextBlob", base64: key.ciphertext)
            key.plaintext.withSecretBytes(InsecureSecretAccess.token) { json.member("Plaintext", base64: Array($0)) }
            json.member("KeyId", call.arn(key.keyID))
        } else {
            let result = try await call.run { () async throws(KeywardError) in
                try await call.service.generateDataKeyWithoutPlaintext(key: reference, byteCount: count, context: context, actor: call.caller)
            }
            json.member("CiphertextBlob", base64: result.ciphertext)
            json.member("KeyId", call.arn(result.keyID))
        }
    }

    static func generateDataKeyPair(_ call: AWSCall, _ json: inout JSONWriter, plaintext: Bool) async throws {
        let reference = try call.reference("KeyId")
        let context = try call.input.context()
        try call.input.refuse(["Recipient": "attested recipients are out of scope"])
        guard let pairName = try call.input.string("KeyPairSpec") else { throw AWSFault.validation("KeyPairSpec is required") }
        let pairSpec: KeySpec
        switch pairName {
        case "ECC_NIST_P256": pairSpec = .ecdsaP256
        case "ECC_NIST_P384": pairSpec = .ecdsaP384
        case "ECC_NIST_P521": pairSpec = .ecdsaP521
        case "ECC_NIST_EDWARDS25519": pairSpec = .ed25519
        case "RSA_2048": pairSpec = .rsa2048PSSSHA256
        case "RSA_3072": pairSpec = .rsa3072PSSSHA256
        case "RSA_4096": pairSpec = .rsa4096PSSSHA256
        default: throw AWSFault.unsupported("KeyPairSpec \(pairName.prefix(40)) is not supported")
        }
        let pair = try await call.run { () async throws(KeywardError) in
            try await call.service.generateDataKeyPair(key: reference, pairSpec: pairSpec, context: context, pkcs8: true, actor: call.caller)
        }
        json.member("PrivateKeyCiphertextBlob", base64: pair.privateKeyCiphertext)
        if plaintext {
            // The private key in plaintext: decrypted from the ciphertext just made, as AWS returns it.
            let opened = try await call.run { () async throws(KeywardError) in
                try await call.service.decrypt(pair.privateKeyCiphertext, context: context, actor: call.caller)
            }
            json.member("PrivateKeyPlaintext", base64: opened.plaintext)
        }
        json.member("PublicKey", base64: pair.publicKey.representation)
        json.member("KeyId", call.arn(pair.keyID))
        json.member("KeyPairSpec", pairName)
    }

    /// The signing input of a Sign or Verify call (`MessageType` RAW or DIGEST).
    static func signingInput(_ call: AWSCall) throws(APIError) -> SigningInput {
        let message = try call.input.requiredBlob("Message")
        guard (1...4096).contains(message.count) else { throw AWSFault.validation("Message must be 1 to 4096 bytes") }
        switch try call.input.string("MessageType") ?? "RAW" {
        case "RAW": return .message(message)
        case "DIGEST": return .digest(message)
        default: throw AWSFault.unsupported("MessageType must be RAW or DIGEST")
        }
    }

    /// A Sign or Verify call's key, checked algorithm and input.
    static func signingCall(_ call: AWSCall, _ operation: ServiceOperation) async throws -> (reference: String, key: KeyDescription, algorithm: String, input: SigningInput) {
        let reference = try call.reference("KeyId")
        let key = try await AWSKMSKeyOperations.describe(call, reference, for: operation)
        let algorithm = try checkAlgorithm(call, "SigningAlgorithm", key.metadata.spec, AWSKeySpec.signingAlgorithms(key.metadata.spec))
        return (reference, key, algorithm, try signingInput(call))
    }

    static func sign(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let (reference, _, algorithm, input) = try await signingCall(call, .sign)
        let result = try await call.run { () async throws(KeywardError) in try await call.service.sign(input, key: reference, actor: call.caller) }
        json.member("KeyId", call.arn(result.keyID))
        json.member("Signature", base64: result.signature)
        json.member("SigningAlgorithm", algorithm)
    }

    static func verify(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let (reference, key, algorithm, input) = try await signingCall(call, .verify)
        let signature = try call.input.requiredBlob("Signature")
        let valid = try await call.run { () async throws(KeywardError) in
            try await call.service.verify(signature, for: input, key: reference, actor: call.caller)
        }
        guard valid else { throw AWSFault.kmsInvalidSignature("the signature does not verify") }
        json.member("KeyId", call.arn(key.metadata.id))
        json.member("SignatureValid", true)
        json.member("SigningAlgorithm", algorithm)
    }

    /// A MAC call's key, checked algorithm and message.
    static func macInput(_ call: AWSCall, _ operation: ServiceOperation) async throws -> (reference: String, key: KeyDescription, algorithm: String, message: [UInt8]) {
        let reference = try call.reference("KeyId")
        let key = try await AWSKMSKeyOperations.describe(call, reference, for: operation)
        let algorithm = try checkAlgorithm(call, "MacAlgorithm", key.metadata.spec, AWSKeySpec.macAlgorithms(key.metadata.spec))
        let message = try call.input.requiredBlob("Message")
        guard (1...4096).contains(message.count) else { throw AWSFault.validation("Message must be 1 to 4096 bytes") }
        return (reference, key, algorithm, message)
    }

    static func generateMAC(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let (reference, _, algorithm, message) = try await macInput(call, .mac)
        let result = try await call.run { () async throws(KeywardError) in try await call.service.mac(message, key: reference, actor: call.caller) }
        json.member("Mac", base64: result.tag)
        json.member("MacAlgorithm", algorithm)
        json.member("KeyId", call.arn(result.keyID))
    }

    static func verifyMAC(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let (reference, key, algorithm, message) = try await macInput(call, .verifyMAC)
        let tag = try call.input.requiredBlob("Mac")
        let valid = try await call.run { () async throws(KeywardError) in
            try await call.service.verifyMAC(tag, for: message, key: reference, actor: call.caller)
        }
        guard valid else { throw AWSFault.kmsInvalidMac("the MAC does not verify") }
        json.member("KeyId", call.arn(key.metadata.id))
        json.member("MacValid", true)
        json.member("MacAlgorithm", algorithm)
    }

    static func getPublicKey(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        let key = try await AWSKMSKeyOperations.describe(call, reference, for: .publicKey)
        guard !key.metadata.spec.isSymmetric else {
            throw AWSFault.unsupported("GetPublicKey is for asymmetric keys; \(key.metadata.id) is \(AWSKeySpec.aws(key.metadata.spec) ?? key.metadata.spec.rawValue), which has no public key")
        }
        let publicKey = try await call.run { () async throws(KeywardError) in try await call.service.publicKey(key: reference, actor: call.caller) }
        let spec = key.metadata.spec
        json.member("KeyId", call.arn(key.metadata.id))
        json.member("PublicKey", base64: publicKey.representation)
        if let name = AWSKeySpec.aws(spec) {
            json.member("CustomerMasterKeySpec", name)
            json.member("KeySpec", name)
        }
        json.member("KeyUsage", AWSKeySpec.usage(spec))
        let signing = AWSKeySpec.signingAlgorithms(spec), encryption = AWSKeySpec.encryptionAlgorithms(spec)
        if !signing.isEmpty { json.member("SigningAlgorithms", strings: signing) }
        if !encryption.isEmpty { json.member("EncryptionAlgorithms", strings: encryption) }
        if spec.purpose == .keyAgreement { json.member("KeyAgreementAlgorithms", strings: ["ECDH"]) }
    }
}

/// The AWS KMS model's operations Keyward does not serve, with the reason (docs/aws-kms.md).
enum AWSKMSCatalogue {
    static let notSupported: [String: String] = [
        "ConnectCustomKeyStore": "custom key stores are out of scope", "CreateCustomKeyStore": "custom key stores are out of scope",
        "DeleteCustomKeyStore": "custom key stores are out of scope", "DescribeCustomKeyStores": "custom key stores are out of scope",
        "DisconnectCustomKeyStore": "custom key stores are out of scope", "UpdateCustomKeyStore": "custom key stores are out of scope",
        "ReplicateKey": "multi-Region keys are out of scope", "UpdatePrimaryRegion": "multi-Region keys are out of scope",
    ]
    static var all: Set<String> { Set(notSupported.keys).union(AWSKMSRoutes.operations.keys) }
}
