import CSystemHardening

/// Zeroes `count` bytes at `base` with `explicit_bzero`, which the compiler may not elide.
@inline(never)
func keywardZeroize(_ base: UnsafeMutableRawPointer, _ count: Int) {
    keyward_zeroize(base, count)
}

/// Zeroization of temporary buffers that held secrets, with `explicit_bzero` (never elided).
public enum SecureZero {
    /// Overwrites every byte of `buffer` with zero.
    public static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        keyward_zeroize(base, buffer.count)
    }

    /// Overwrites every element of `bytes` with zero, in place.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { wipe($0) }
    }
}
