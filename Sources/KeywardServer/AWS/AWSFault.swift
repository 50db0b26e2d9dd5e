import HTTPTypes

/// Errors in the AWS KMS protocol's terms: each an `APIError` carrying the `__type` AWS SDKs
/// switch on (`APIError.awsType`); `APIError.response` writes them as AWS does when the request
/// came through the AWS front end.
enum AWSFault {
    static func incompleteSignature(_ message: String) -> APIError { fault("IncompleteSignature", .badRequest, message, "unauthenticated") }
    static func invalidSignature(_ message: String) -> APIError { fault("InvalidSignatureException", .badRequest, message, "unauthenticated") }
    static func unrecognizedClient(_ message: String) -> APIError { fault("UnrecognizedClientException", .badRequest, message, "unauthenticated") }
    static func missingAuthentication() -> APIError {
        fault("MissingAuthenticationTokenException", .badRequest, "the request is not signed: sign it with Signature Version 4 and a Keyward-issued access key", "unauthenticated")
    }
    static func validation(_ message: String) -> APIError { fault("ValidationException", .badRequest, message, "invalid_request") }
    static func unknownOperation(_ target: String) -> APIError {
        fault("UnknownOperationException", .badRequest, "unknown operation '\(target.prefix(80))'; X-Amz-Target is TrentService.<Operation>", "invalid_request")
    }
    static func unsupported(_ message: String) -> APIError { fault("UnsupportedOperationException", .badRequest, message, "invalid_request") }
    static func notFound(_ message: String) -> APIError { fault("NotFoundException", .badRequest, message, "key_not_found") }
    static func limitExceeded(_ message: String) -> APIError { fault("LimitExceededException", .badRequest, message, "invalid_request") }
    static func alreadyExists(_ message: String) -> APIError { fault("AlreadyExistsException", .badRequest, message, "invalid_request") }
    static func incorrectKey(_ message: String) -> APIError { fault("IncorrectKeyException", .badRequest, message, "invalid_request") }
    static func tag(_ message: String) -> APIError { fault("TagException", .badRequest, message, "invalid_request") }
    static func invalidMarker(_ message: String) -> APIError { fault("InvalidMarkerException", .badRequest, message, "invalid_request") }
    static func invalidKeyUsage(_ message: String) -> APIError { fault("InvalidKeyUsageException", .badRequest, message, "wrong_purpose") }
    static func invalidAlias(_ message: String) -> APIError { fault("InvalidAliasNameException", .badRequest, message, "invalid_request") }
    static func invalidArn(_ message: String) -> APIError { fault("InvalidArnException", .badRequest, message, "invalid_request") }
    static func kmsInvalidSignature(_ message: String) -> APIError { fault("KMSInvalidSignatureException", .badRequest, message, "invalid_request") }
    static func kmsInvalidMac(_ message: String) -> APIError { fault("KMSInvalidMacException", .badRequest, message, "invalid_request") }
    static func invalidState(_ message: String) -> APIError { fault("KMSInvalidStateException", .badRequest, message, "wrong_state") }
    static func disabled(_ message: String) -> APIError { fault("DisabledException", .badRequest, message, "wrong_state") }

    private static func fault(_ type: String, _ status: HTTPResponse.Status, _ message: String, _ code: String) -> APIError {
        var error = APIError(code, status, message)
        error.awsType = type
        return error
    }

    /// The AWS `__type` for an error raised below the front end (by `KeyService`, the
    /// middleware), from its Keyward code.
    static func type(for error: APIError) -> (type: String, status: HTTPResponse.Status) {
        if let type = error.awsType { return (type, error.status) }
        switch error.code {
        case "unauthenticated": return ("UnrecognizedClientException", .badRequest)
        case "access_denied", "not_permitted": return ("AccessDeniedException", .badRequest)
        case "key_not_found": return ("NotFoundException", .badRequest)
        case "wrong_state", "key_destroyed", "version_unavailable": return ("KMSInvalidStateException", .badRequest)
        case "invalid_ciphertext": return ("InvalidCiphertextException", .badRequest)
        case "wrong_purpose": return ("InvalidKeyUsageException", .badRequest)
        case "invalid_request", "body_too_large", "method_not_allowed", "route_not_found": return ("ValidationException", .badRequest)
        case "rate_limited": return ("ThrottlingException", .badRequest)
        // The name botocore's standard retry mode treats as transient.
        case "request_timeout": return ("RequestTimeoutException", .requestTimeout)
        case "conflict": return ("ConflictException", .badRequest)
        case "unavailable", "audit_unavailable": return ("KMSInternalException", .serviceUnavailable)
        default: return ("KMSInternalException", .internalServerError)
        }
    }
}
