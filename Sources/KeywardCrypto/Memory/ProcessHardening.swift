import CSystemHardening

/// Process-wide protections for a program that holds keys.
public enum ProcessHardening {
    /// Turns off core dumps (`RLIMIT_CORE` 0) and marks the process non-dumpable
    /// (`PR_SET_DUMPABLE` 0, which also stops ptrace attach by unprivileged peers).
    /// Call it first thing in `main`.
    ///
    /// - Throws: `KeywardCryptoError.primitiveFailure` naming the errno if a call is refused.
    public static func disableCoreDumps() throws(KeywardCryptoError) {
        let result = keyward_disable_core_dumps()
        guard result == 0 else {
            throw .primitiveFailure(operation: "disabling core dumps", reason: "errno \(result)")
        }
    }

    /// Whether the process may currently produce a core dump.
    public static var isDumpable: Bool { keyward_is_dumpable() == 1 }
}
