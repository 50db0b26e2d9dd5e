import CBoringSSLDirect
import Foundation

extension KeyMaterial {
    /// The full-length HMAC tag of `message` (32, 48 or 64 bytes).
    ///
    /// - Throws: `wrongPurpose` for keys that are not HMAC keys.
    public func mac(_ message: some DataProtocol) throws(KeywardCryptoError) -> [UInt8] {
        try spec.check(.mac)
        let tag = message.withContiguousStorageIfAvailable { mac($0) } ?? Array(message).withUnsafeBufferPointer { mac($0) }
        guard let tag else { throw .primitiveFailure(operation: "HMAC", reason: "BoringSSL refused to compute it (out of memory?)") }
        return tag
    }

    /// HMAC of contiguous bytes, through one BoringSSL call (it wipes the key's pads), or nil
    /// when BoringSSL fails; the caller checked the purpose.
    private func mac(_ message: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let bits: Int32 = switch spec {
        case .hmacSHA384: 384
        case .hmacSHA512: 512
        default: 256
        }
        var ok: Int32 = 0
        let tag = secret.withSecretBytes(InsecureSecretAccess.token) { key in
            [UInt8](unsafeUninitializedCapacity: 64) { tag, count in
                var length = 0
                ok = keyward_hmac(bits, tag.baseAddress!, &length, key.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, key.count,
                                  message.baseAddress ?? UnsafePointer(bitPattern: 1)!, message.count)
                count = ok == 1 ? length : 0
            }
        }
        return ok == 1 ? tag : nil
    }

    /// Whether `tag` is this key's full-length HMAC of `message`, compared in constant time.
    /// A tag of the wrong length (including a truncated tag) is not valid.
    ///
    /// - Throws: `wrongPurpose` for keys that are not HMAC keys.
    public func verifyMAC(_ tag: some DataProtocol, for message: some DataProtocol) throws(KeywardCryptoError) -> Bool {
        try spec.check(.verifyMAC)
        let expected = try mac(message)
        return ConstantTime.equals(expected, [UInt8](tag))
    }
}
