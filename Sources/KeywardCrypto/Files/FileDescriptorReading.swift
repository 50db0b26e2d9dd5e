import Foundation

/// Reads the whole of an open file whose size `fstat` gave, for `SecretFile` and
/// `ProtectedFile` (the one read loop both doors share).
enum FileDescriptorReading {
    /// `size` bytes from `fd`, or nil when the file ends early or a read fails (what was read
    /// is wiped first: the file may hold a secret).
    static func readAll(_ fd: Int32, size: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, size - filled) }
            guard got > 0 else {
                SecureZero.wipe(&bytes)
                return nil
            }
            filled += got
        }
        return bytes
    }
}
