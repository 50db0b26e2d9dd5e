#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator settings for `keyward serve`, set by re-executing the program once at start.
///
/// A request allocates and frees many small objects (HTTP parts, JSON, futures, audit entries),
/// often on different threads (the event loops, the audit writer). glibc's per-thread cache keeps
/// seven freed chunks of each size by default; past that a free goes to an arena under its lock,
/// and a later large request consolidates the fast bins. A deeper per-thread cache
/// (`glibc.malloc.tcache_count`) serves those from the thread's own list (decision 0036 has the
/// measurements). glibc reads its tunables only when a program starts, from `GLIBC_TUNABLES`, so
/// `keyward serve` sets it and re-executes itself, with the same arguments, before it reads any
/// configuration, credential or key.
///
/// Invariants:
/// - Key bytes never come from this allocator (`SecretBytes` uses its own locked, non-dumpable
///   mappings), so the setting changes where freed ordinary memory waits, not what a secret's
///   lifetime is.
/// - An operator's own `GLIBC_TUNABLES`, whatever it says, is kept as it is and nothing is re-executed;
///   set it (for example to `glibc.malloc.tcache_count=7`, glibc's default) to opt out.
/// - It runs at most once: the re-executed process finds the variable set.
/// - When re-executing is not possible (no `/proc`, the binary replaced on disk, `execve`
///   refused), the server starts as it is, with glibc's defaults.
/// - The process keeps its PID, its arguments and its name (`execve` of the binary's real path,
///   not of `/proc/self/exe`, whose name would become the process's).
enum AllocatorTuning {
    /// The tunables set when the environment has none.
    static let tunables = "glibc.malloc.tcache_count=2000"

    /// Re-executes this program with `GLIBC_TUNABLES=` ``tunables`` unless the variable is set.
    /// Returns only when nothing was re-executed.
    static func reexecuteUntuned() {
        #if os(Linux) && canImport(Glibc)
        guard getenv("GLIBC_TUNABLES") == nil else { return }
        var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &link, Int(PATH_MAX))
        guard length > 0 else { return }
        let path = String(decoding: link[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A binary replaced or removed since it started: running the new one under the old one's
        // arguments is not this function's call to make.
        guard !path.hasSuffix(" (deleted)"), access(path, X_OK) == 0 else { return }

        var environment: [UnsafeMutablePointer<CChar>?] = []
        if var entry = Optional(environ) {
            while let variable = entry.pointee {
                environment.append(variable)
                entry += 1
            }
        }
        guard let setting = strdup("GLIBC_TUNABLES=" + tunables) else { return }
        environment.append(setting)
        environment.append(nil)
        environment.withUnsafeMutableBufferPointer { envp in
            _ = execve(path, CommandLine.unsafeArgv, envp.baseAddress)
        }
        // execve returned: it failed, and this process goes on with glibc's defaults.
        free(setting)
        #endif
    }
}
