import CSystemHardening
import Foundation

/// Constant-time comparison of secret values (MACs, token hashes, key bytes).
public enum ConstantTime {
    /// True when `a` and `b` hold the same bytes. The time taken depends only on the lengths,
    /// never on where the first difference is.
    public static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.count == 0 { return true }
        return keyward_constant_time_equal(a.baseAddress, b.baseAddress, a.count) == 1
    }

    /// True when `a` and `b` hold the same bytes, in constant time.
    public static func equals(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in equals(x, y) } }
    }
}
