import Foundation
import Keyward
import KeywardAPI
import KeywardCrypto

/// AWS KMS's import of key material (`Origin: EXTERNAL`) over `KeyService`'s keys created for
/// imported material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.
///
/// The import token is `kw-import-v1:WRAPPING_KEY_ID:SCHEME:EXPIRY`, which names the wrapping
/// key `KeyService.importParameters` issued. It carries no authority of its own: the wrapping
/// key is bound, in its MAC'd metadata, to the caller's principal and to the key, expires, and
/// serves one import, and the token's scheme only says how to read the blob.
enum AWSKMSImportOperations {
    static let handlers: [String: AWSKMSRoutes.Handler] = [
        "GetParametersForImport": getParametersForImport,
        "ImportKeyMaterial": importKeyMaterial,
        "DeleteImportedKeyMaterial": { call, json in
            let reference = try call.reference("KeyId")
            let key = try await external(call, reference)
            try checkMaterialID(call, key)
            let emptied = try await call.run { () async throws(KeywardError) in try await call.service.deleteImportedMaterial(key: reference, actor: call.caller) }
            json.member("KeyId", call.arn(emptied.metadata.id))
            if let id = keyMaterialID(key.metadata) { json.member("KeyMaterialId", id) }
        },
    ]

    /// AWS's wrapping algorithms Keyward serves, with the scheme each names.
    static let algorithms: [String: ImportWrapping.Scheme] = [
        "RSAES_OAEP_SHA_256": .rsaOAEPSHA256, "RSA_AES_KEY_WRAP_SHA_256": .rsaAESKeyWrapSHA256,
    ]

    static let wrappingSpecs: [String: KeySpec] = [
        "RSA_2048": .rsa2048OAEPSHA256, "RSA_3072": .rsa3072OAEPSHA256, "RSA_4096": .rsa4096OAEPSHA256,
    ]

    static let tokenPrefix = "kw-import-v1:"

    /// The `KeyMaterialId` AWS reports for a key's imported material: the hex of the key's
    /// commitment to it (`KeyMetadata.importedMaterialDigest`), so the same material always
    /// has the same id.
    static func keyMaterialID(_ metadata: KeyMetadata) -> String? {
        guard let digest = metadata.importedMaterialDigest, let bytes = Data(base64Encoded: digest) else { return nil }
        return Hex.encode(bytes)
    }

    static func getParametersForImport(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        guard let algorithmName = try call.input.string("WrappingAlgorithm") else { throw AWSFault.validation("WrappingAlgorithm is required") }
        guard let specName = try call.input.string("WrappingKeySpec") else { throw AWSFault.validation("WrappingKeySpec is required") }
        guard let scheme = algorithms[algorithmName] else {
            throw AWSFault.unsupported("WrappingAlgorithm \(algorithmName.prefix(40)) is not supported; use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256 (SHA-1 and PKCS#1 v1.5 wrapping are refused)")
        }
        guard let spec = wrappingSpecs[specName] else {
            throw AWSFault.unsupported("WrappingKeySpec \(specName.prefix(40)) is not supported; use RSA_2048, RSA_3072 or RSA_4096")
        }
        let key = try await external(call, reference)
        let wrapping = try await call.run { () async throws(KeywardError) in
            try await call.service.importParameters(key: reference, wrappingSpec: spec, actor: call.caller)
        }
        let token = "\(tokenPrefix)\(wrapping.keyID):\(scheme.rawValue):\(Int(wrapping.expiresAt.timeIntervalSince1970))"
        json.member("KeyId", call.arn(key.metadata.id))
        json.member("ImportToken", base64: Array(token.utf8))
        json.member("PublicKey", base64: wrapping.publicKey.representation)
        json.member("ParametersValidTo", epoch: wrapping.expiresAt)
    }

    static func importKeyMaterial(_ call: AWSCall, _ json: inout JSONWriter) async throws {
        let reference = try call.reference("KeyId")
        let token = try call.input.requiredBlob("ImportToken")
        let wrapped = try call.input.requiredBlob("EncryptedKeyMaterial")
        let expiration = try call.input.string("ExpirationModel")
        let validTo = try call.input.timestamp("ValidTo")
        switch (expiration, validTo) {
        case ("KEY_MATERIAL_DOES_NOT_EXPIRE", nil), (nil, nil): break
        case ("KEY_MATERIAL_EXPIRES", _?), (nil, _?): break
        case ("KEY_MATERIAL_DOES_NOT_EXPIRE", _?): throw AWSFault.validation("ValidTo is not allowed when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
        case ("KEY_MATERIAL_EXPIRES", nil): throw AWSFault.validation("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES")
        default: throw AWSFault.validation("ExpirationModel must be KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE")
        }
        try call.input.refuse(["KeyMaterialDescription": "key material descriptions are not kept"])
        let key = try await external(call, reference)
        if try call.input.string("ImportType") == "NEW_KEY_MATERIAL", key.metadata.importedMaterialDigest != nil {
            throw AWSFault.unsupported("a key takes back only its own material: Keyward does not rotate imported keys to new material")
        }
        try checkMaterialID(call, key)
        let (wrappingKey, scheme, expiry) = try parse(token)
        guard expiry > Date() else {
            throw fault("ExpiredImportTokenException", "the import token expired at \(ISO8601DateFormatter().string(from: expiry)); call GetParametersForImport again")
        }
        let imported: KeyDescription
        do throws(KeywardError) {
            imported = try await call.service.importMaterial(wrapped, key: reference, wrappingKey: wrappingKey, scheme: scheme, validTo: validTo, actor: call.caller)
        } catch {
            switch error {
            case .notPermitted: throw fault("InvalidImportTokenException", error.description)
            case .keyDestroyed(let key, _) where key.description == wrappingKey:
                throw fault("InvalidImportTokenException", "the import token was used already or expired; call GetParametersForImport again")
            case .crypto(.invalidKeyMaterial): throw fault("IncorrectKeyMaterialException", error.description)
            default: throw call.fault(error)
            }
        }
        json.member("KeyId", call.arn(imported.metadata.id))
        if let id = keyMaterialID(imported.metadata) { json.member("KeyMaterialId", id) }
    }

    /// The key, which must have been created for imported material (`UnsupportedOperationException`).
    private static func external(_ call: AWSCall, _ reference: String) async throws(APIError) -> KeyDescription {
        let key = try await AWSKMSKeyOperations.describe(call, reference, for: .importMaterial)
        guard key.metadata.origin == KeyMetadata.externalOrigin else {
            throw AWSFault.unsupported("key \(key.metadata.id) has origin AWS_KMS; key material is imported only into keys created with Origin EXTERNAL")
        }
        return key
    }

    /// A `KeyMaterialId` in the request must name the key's material.
    private static func checkMaterialID(_ call: AWSCall, _ key: KeyDescription) throws(APIError) {
        guard let requested = try call.input.string("KeyMaterialId") else { return }
        guard let current = keyMaterialID(key.metadata), requested.lowercased() == current else {
            throw AWSFault.notFound("key material \(requested.prefix(80)) is not key \(key.metadata.id)'s material")
        }
    }

    private static func parse(_ token: [UInt8]) throws(APIError) -> (wrappingKey: String, scheme: ImportWrapping.Scheme, expiry: Date) {
        let text = String(decoding: token, as: UTF8.self)
        let invalid = fault("InvalidImportTokenException", "the import token is not one GetParametersForImport returned")
        guard text.hasPrefix(tokenPrefix) else { throw invalid }
        let parts = text.dropFirst(tokenPrefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, KeyID(parsing: String(parts[0])) != nil, let scheme = ImportWrapping.Scheme(rawValue: String(parts[1])),
              let seconds = Int(parts[2]) else { throw invalid }
        return (String(parts[0]), scheme, Date(timeIntervalSince1970: Double(seconds)))
    }

    private static func fault(_ type: String, _ message: String) -> APIError {
        var error = APIError("invalid_request", .badRequest, message)
        error.awsType = type
        return error
    }
}
