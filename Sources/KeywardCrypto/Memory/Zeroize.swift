import CSystemHardening

/// Zeroes `count` bytes at `base` with `explicit_bzero`, which the compiler may not elide.
@inline(never)
func keywardZeroize(_ base: UnsafeMutableRawPointer, _ count: Int) {
    keyward_zeroize(base, count)
}
