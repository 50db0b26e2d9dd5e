import CPKCS11
import Foundation
import Keyward
import KeywardCrypto
import Synchronization

/// A root of trust in a PKCS#11 token (an HSM; SoftHSM2 in tests): a non-extractable AES-256
/// key made inside the token wraps the storage KEK with AES-GCM, inside the token. The key
/// never leaves it; the store header records the module, token and key label, never the PIN.
public final class PKCS11RootOfTrust: RootOfTrust, @unchecked Sendable {
    public let kind = "pkcs11"
    public let parameters: [UInt8]

    /// What the header records.
    public struct Location: Codable, Sendable, Hashable {
        public var module: String
        public var token: String
        public var keyLabel: String

        public init(module: String, token: String, keyLabel: String = "keyward-root") {
            self.module = module
            self.token = token
            self.keyLabel = keyLabel
        }
    }

    private let module: PKCS11Module
    private let session: CK_SESSION_HANDLE
    private let key: CK_OBJECT_HANDLE
    /// PKCS#11 sessions are not safe for concurrent use.
    private let lock = Mutex(())
    private static let aad = Array("keyward/v1/kek".utf8)

    /// Opens the token at `location`, logs in with `pin`, and finds the root key; with
    /// `createKey`, makes it (non-extractable, sensitive AES-256) when it does not exist yet.
    ///
    /// - Throws: `rootOfTrustRejected` naming what failed: module, token, PIN, missing key.
    public init(location: Location, pin: borrowing SecretBytes, createKey: Bool) throws(KeywardError) {
        do {
            self.parameters = try JSONEncoder().encode(location).map { $0 }
        } catch {
            throw .invalidArgument("cannot encode the PKCS#11 location")
        }
        do throws(PKCS11Error) {
            let module = try PKCS11Module.load(location.module)
            let functions = module.functions.pointee
            let slot = try module.slot(forToken: location.token)
            var session: CK_SESSION_HANDLE = 0
            var rv = functions.C_OpenSession!(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session)
            guard rv == CKR_OK else { throw PKCS11Error.call("C_OpenSession", rv) }
            rv = pin.withSecretBytes(InsecureSecretAccess.token) { raw in
                functions.C_Login!(session, CK_USER_TYPE(CKU_USER), UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: UInt8.self)), CK_ULONG(raw.count))
            }
            guard rv == CKR_OK || rv == CK_RV(CKR_USER_ALREADY_LOGGED_IN) else {
                _ = functions.C_CloseSession!(session)
                throw PKCS11Error.call("C_Login", rv)
            }
            var key = try Self.findKey(functions, session, label: location.keyLabel)
            if key == nil, createKey {
                key = try Self.generateKey(functions, session, label: location.keyLabel)
            }
            guard let key else {
                _ = functions.C_CloseSession!(session)
                throw PKCS11Error.keyNotFound("no AES key labelled '\(location.keyLabel)' on token '\(location.token)'")
            }
            // A key someone else made in the token may be readable: refuse it unless the token
            // says it is sensitive and can never leave.
            guard Self.flag(functions, session, key, CKA_SENSITIVE) == true, Self.flag(functions, session, key, CKA_EXTRACTABLE) == false else {
                _ = functions.C_CloseSession!(session)
                throw PKCS11Error.keyNotFound("the key labelled '\(location.keyLabel)' on token '\(location.token)' is not sensitive and non-extractable; "
                                              + "Keyward wraps its KEK only under a key the token never lets out")
            }
            self.module = module
            self.session = session
            self.key = key
        } catch {
            throw .rootOfTrustRejected("PKCS#11: \(error)")
        }
    }

    /// Opens the token the operator configured, for a store whose header recorded
    /// `storedParameters`.
    ///
    /// The module path, token and key label come from configuration or flags only: the header
    /// is in the store file, which anyone who can write that file can edit, and its MAC can only
    /// be checked once the root of trust has unwrapped the KEK. So the recorded location is
    /// compared with the configured one before any module is loaded, and a header that names
    /// another module, token or key is refused; no path read from the store is ever `dlopen`ed.
    ///
    /// - Throws: `rootOfTrustRejected` naming both locations when they differ;
    ///   `integrityFailure` when the recorded location does not decode.
    public convenience init(configured location: Location, storedParameters: [UInt8], pin: borrowing SecretBytes) throws(KeywardError) {
        guard let recorded = try? JSONDecoder().decode(Location.self, from: Data(storedParameters)) else {
            throw .integrityFailure("the store header's PKCS#11 location does not decode; the header may have been edited")
        }
        guard recorded == location else {
            throw .rootOfTrustRejected("the store header names PKCS#11 module \(recorded.module), token '\(recorded.token)', key '\(recorded.keyLabel)', "
                                       + "but the configuration names module \(location.module), token '\(location.token)', key '\(location.keyLabel)'; "
                                       + "nothing was loaded. If the configuration is right, the header has been edited")
        }
        try self.init(location: location, pin: pin, createKey: false)
    }

    /// A boolean attribute of `object`, or nil when the token does not say.
    private static func flag(_ functions: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ attribute: some BinaryInteger) -> Bool? {
        var value = CK_BBOOL(CK_FALSE)
        let rv = withUnsafeMutablePointer(to: &value) { pointer in
            var template = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(attribute), pValue: UnsafeMutableRawPointer(pointer), ulValueLen: 1)
            return functions.C_GetAttributeValue!(session, object, &template, 1)
        }
        guard rv == CKR_OK else { return nil }
        return value != CK_BBOOL(CK_FALSE)
    }

    deinit {
        _ = module.functions.pointee.C_CloseSession!(session)
    }

    /// Whether the token would let the root key out (it must not).
    public var keyIsExtractable: Bool {
        lock.withLock { _ in
            var extractable = CK_BBOOL(CK_TRUE)
            var value = withUnsafeMutablePointer(to: &extractable) { CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), pValue: UnsafeMutableRawPointer($0), ulValueLen: 1) }
            let rv = module.functions.pointee.C_GetAttributeValue!(session, key, &value, 1)
            return rv != CKR_OK || extractable != CK_BBOOL(CK_FALSE)
        }
    }

    /// Seals the KEK with the token's key. The KEK goes to the token straight from its locked
    /// pages; no copy of it is made here.
    public func wrap(_ kek: borrowing SecretBytes) throws(KeywardError) -> [UInt8] {
        var iv = [UInt8](repeating: 0, count: 12)
        var generator = SystemRandomNumberGenerator()
        for index in iv.indices { iv[index] = UInt8.random(in: 0...255, using: &generator) }
        var output = [UInt8](repeating: 0, count: kek.count + 16)
        let length = try kek.withSecretBytes(InsecureSecretAccess.token) { (plain) throws(KeywardError) -> Int in
            let written: Result<Int, KeywardError> = output.withUnsafeMutableBytes { out in
                Result { () throws(KeywardError) -> Int in try crypt(encrypt: true, iv: iv, input: plain, output: out) }
            }
            return try written.get()
        }
        return iv + output.prefix(length)
    }

    /// Opens the wrapped KEK inside the token; the token writes the KEK into locked pages
    /// (`SecretBytes`), and no other copy of it is made.
    public func unwrap(_ wrapped: [UInt8]) throws(KeywardError) -> SecretBytes {
        guard wrapped.count == 12 + 32 + 16 else {
            throw .rootOfTrustRejected("the wrapped KEK has the wrong length for this token's wrapping")
        }
        let iv = Array(wrapped.prefix(12))
        let sealed = Array(wrapped.dropFirst(12))
        // The token may want room for the whole input; it writes into locked pages either way.
        var written = 0
        let scratch: SecretBytes
        do {
            scratch = try SecretBytes(count: sealed.count + 16) { out in
                written = try sealed.withUnsafeBytes { input in try crypt(encrypt: false, iv: iv, input: input, output: out) }
            }
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .crypto(error as? KeywardCryptoError ?? .secureMemoryUnavailable(reason: "\(error)"))
        }
        guard written == 32 else { throw .rootOfTrustRejected("the token unwrapped \(written) bytes, not a 32-byte KEK") }
        do {
            return try scratch.withSecretBytes(InsecureSecretAccess.token) { (all) throws(KeywardCryptoError) -> SecretBytes in
                try SecretBytes(copyingBytesOf: UnsafeRawBufferPointer(rebasing: all[0..<32]))
            }
        } catch {
            throw .crypto(error)
        }
    }

    /// AES-GCM with the token's key, inside the token: reads `input`, writes the result into
    /// `output` (which must have room for it), returns the number of bytes written.
    private func crypt(encrypt: Bool, iv: [UInt8], input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws(KeywardError) -> Int {
        let functions = module.functions.pointee
        let result: Result<Int, PKCS11Error> = lock.withLock { _ in
            var iv = iv
            var aad = Self.aad
            return iv.withUnsafeMutableBufferPointer { ivBuffer in
                aad.withUnsafeMutableBufferPointer { aadBuffer in
                    var parameters = CK_GCM_PARAMS(pIv: ivBuffer.baseAddress, ulIvLen: 12, ulIvBits: 96,
                                                   pAAD: aadBuffer.baseAddress, ulAADLen: CK_ULONG(aadBuffer.count), ulTagBits: 128)
                    return withUnsafeMutablePointer(to: &parameters) { parametersPointer in
                        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM), pParameter: UnsafeMutableRawPointer(parametersPointer),
                                                     ulParameterLen: CK_ULONG(MemoryLayout<CK_GCM_PARAMS>.size))
                        var rv = encrypt ? functions.C_EncryptInit!(session, &mechanism, key) : functions.C_DecryptInit!(session, &mechanism, key)
                        guard rv == CKR_OK else { return .failure(.call(encrypt ? "C_EncryptInit" : "C_DecryptInit", rv)) }
                        // PKCS#11 takes a mutable pointer for its input; the token only reads it.
                        let source = UnsafeMutablePointer(mutating: input.assumingMemoryBound(to: CK_BYTE.self).baseAddress)
                        let destination = output.assumingMemoryBound(to: CK_BYTE.self).baseAddress
                        var length = CK_ULONG(output.count)
                        rv = encrypt
                            ? functions.C_Encrypt!(session, source, CK_ULONG(input.count), destination, &length)
                            : functions.C_Decrypt!(session, source, CK_ULONG(input.count), destination, &length)
                        guard rv == CKR_OK else { return .failure(.call(encrypt ? "C_Encrypt" : "C_Decrypt", rv)) }
                        return .success(Int(length))
                    }
                }
            }
        }
        switch result {
        case .success(let length): return length
        case .failure(let error):
            if !encrypt { throw .rootOfTrustRejected("this token's key does not unwrap the store's KEK (\(error))") }
            throw .rootOfTrustRejected("PKCS#11: \(error)")
        }
    }

    private static func findKey(_ functions: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, label: String) throws(PKCS11Error) -> CK_OBJECT_HANDLE? {
        var keyClass = CK_OBJECT_CLASS(CKO_SECRET_KEY)
        var keyType = CK_KEY_TYPE(CKK_AES)
        var labelBytes = Array(label.utf8)
        return try withAttributes(&keyClass, &keyType, &labelBytes) { (template) throws(PKCS11Error) -> CK_OBJECT_HANDLE? in
            var rv = functions.C_FindObjectsInit!(session, template.baseAddress, CK_ULONG(template.count))
            guard rv == CKR_OK else { throw .call("C_FindObjectsInit", rv) }
            var handle: CK_OBJECT_HANDLE = 0
            var found: CK_ULONG = 0
            rv = functions.C_FindObjects!(session, &handle, 1, &found)
            _ = functions.C_FindObjectsFinal!(session)
            guard rv == CKR_OK else { throw .call("C_FindObjects", rv) }
            return found == 1 ? handle : nil
        }
    }

    private static func withAttributes<R>(
        _ keyClass: inout CK_OBJECT_CLASS, _ keyType: inout CK_KEY_TYPE, _ label: inout [UInt8],
        _ body: (UnsafeMutableBufferPointer<CK_ATTRIBUTE>) throws(PKCS11Error) -> R
    ) throws(PKCS11Error) -> R {
        let result: Result<R, PKCS11Error> = withUnsafeMutablePointer(to: &keyClass) { classPointer in
            withUnsafeMutablePointer(to: &keyType) { typePointer in
                label.withUnsafeMutableBytes { labelPointer in
                    var template = [
                        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: UnsafeMutableRawPointer(classPointer), ulValueLen: CK_ULONG(MemoryLayout<CK_OBJECT_CLASS>.size)),
                        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), pValue: UnsafeMutableRawPointer(typePointer), ulValueLen: CK_ULONG(MemoryLayout<CK_KEY_TYPE>.size)),
                        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: labelPointer.baseAddress, ulValueLen: CK_ULONG(labelPointer.count)),
                    ]
                    return template.withUnsafeMutableBufferPointer { buffer in
                        do throws(PKCS11Error) { return .success(try body(buffer)) } catch { return .failure(error) }
                    }
                }
            }
        }
        return try result.get()
    }

    private static func generateKey(_ functions: CK_FUNCTION_LIST, _ session: CK_SESSION_HANDLE, label: String) throws(PKCS11Error) -> CK_OBJECT_HANDLE {
        var yes = CK_BBOOL(CK_TRUE)
        var no = CK_BBOOL(CK_FALSE)
        var length = CK_ULONG(32)
        var keyClass = CK_OBJECT_CLASS(CKO_SECRET_KEY)
        var keyType = CK_KEY_TYPE(CKK_AES)
        var labelBytes = Array(label.utf8)
        let bool = CK_ULONG(1)
        let result: Result<CK_OBJECT_HANDLE, PKCS11Error> = withUnsafeMutablePointer(to: &yes) { yesPointer in
            withUnsafeMutablePointer(to: &no) { noPointer in
                withUnsafeMutablePointer(to: &length) { lengthPointer in
                    withUnsafeMutablePointer(to: &keyClass) { classPointer in
                        withUnsafeMutablePointer(to: &keyType) { typePointer in
                            labelBytes.withUnsafeMutableBytes { labelPointer in
                                let y = UnsafeMutableRawPointer(yesPointer), n = UnsafeMutableRawPointer(noPointer)
                                var template = [
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: UnsafeMutableRawPointer(classPointer), ulValueLen: CK_ULONG(MemoryLayout<CK_OBJECT_CLASS>.size)),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), pValue: UnsafeMutableRawPointer(typePointer), ulValueLen: CK_ULONG(MemoryLayout<CK_KEY_TYPE>.size)),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), pValue: UnsafeMutableRawPointer(lengthPointer), ulValueLen: CK_ULONG(MemoryLayout<CK_ULONG>.size)),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: labelPointer.baseAddress, ulValueLen: CK_ULONG(labelPointer.count)),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_TOKEN), pValue: y, ulValueLen: bool),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_PRIVATE), pValue: y, ulValueLen: bool),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), pValue: y, ulValueLen: bool),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), pValue: n, ulValueLen: bool),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), pValue: y, ulValueLen: bool),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_DECRYPT), pValue: y, ulValueLen: bool),
                                ]
                                var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
                                var handle: CK_OBJECT_HANDLE = 0
                                let rv = functions.C_GenerateKey!(session, &mechanism, &template, CK_ULONG(template.count), &handle)
                                return rv == CKR_OK ? .success(handle) : .failure(.call("C_GenerateKey", rv))
                            }
                        }
                    }
                }
            }
        }
        return try result.get()
    }
}
