import CPKCS11
import Foundation
import Synchronization

/// A PKCS#11 module (a `.so` such as SoftHSM2's or an HSM vendor's), loaded with `dlopen` and
/// initialised once per process; modules stay loaded until the process ends.
final class PKCS11Module: @unchecked Sendable {
    let path: String
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    /// The module at `path`, loaded and initialised on first use.
    static func load(_ path: String) throws(PKCS11Error) -> PKCS11Module {
        try loaded.withLock { (modules) throws(PKCS11Error) -> PKCS11Module in
            if let module = modules[path] { return module }
            let module = try PKCS11Module(path: path)
            modules[path] = module
            return module
        }
    }

    private init(path: String) throws(PKCS11Error) {
        self.path = path
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw .moduleUnavailable("cannot load \(path): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw .moduleUnavailable("\(path) is not a PKCS#11 module (no C_GetFunctionList)")
        }
        typealias GetFunctionList = @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?) -> CK_RV
        let getFunctionList = unsafeBitCast(symbol, to: GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let rv = getFunctionList(&list)
        guard rv == CKR_OK, let list else { throw .call("C_GetFunctionList", rv) }
        self.functions = list
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let initialized = withUnsafeMutablePointer(to: &arguments) { list.pointee.C_Initialize!(UnsafeMutableRawPointer($0)) }
        guard initialized == CKR_OK || initialized == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) else {
            throw .call("C_Initialize", initialized)
        }
    }

    /// The slot holding the token labelled `label`.
    func slot(forToken label: String) throws(PKCS11Error) -> CK_SLOT_ID {
        var count: CK_ULONG = 0
        var rv = functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), nil, &count)
        guard rv == CKR_OK else { throw .call("C_GetSlotList", rv) }
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        rv = functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), &slots, &count)
        guard rv == CKR_OK else { throw .call("C_GetSlotList", rv) }
        var seen: [String] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo!(slot, &info) == CKR_OK else { continue }
            let tokenLabel = withUnsafeBytes(of: info.label) { String(decoding: $0, as: UTF8.self) }.trimmingCharacters(in: .whitespaces)
            if tokenLabel == label { return slot }
            seen.append(tokenLabel)
        }
        throw .tokenNotFound("no token labelled '\(label)' in \(path) (tokens: \(seen.joined(separator: ", ")))")
    }
}

/// PKCS#11 failures, with the function and return value.
enum PKCS11Error: Error, CustomStringConvertible {
    case moduleUnavailable(String)
    case tokenNotFound(String)
    case call(String, CK_RV)
    case keyNotFound(String)

    var description: String {
        switch self {
        case .moduleUnavailable(let message), .tokenNotFound(let message), .keyNotFound(let message): message
        case .call(let function, let rv): "\(function) failed with CKR 0x\(String(rv, radix: 16))\(Self.names[rv].map { " (\($0))" } ?? "")"
        }
    }

    static let names: [CK_RV: String] = [
        CK_RV(CKR_PIN_INCORRECT): "wrong PIN", CK_RV(CKR_PIN_LOCKED): "PIN locked",
        CK_RV(CKR_ENCRYPTED_DATA_INVALID): "encrypted data invalid", CK_RV(CKR_ENCRYPTED_DATA_LEN_RANGE): "encrypted data length",
        CK_RV(CKR_TOKEN_NOT_PRESENT): "token not present", CK_RV(CKR_MECHANISM_INVALID): "mechanism not supported",
        CK_RV(CKR_ATTRIBUTE_SENSITIVE): "attribute sensitive", CK_RV(CKR_USER_NOT_LOGGED_IN): "not logged in",
    ]
}
