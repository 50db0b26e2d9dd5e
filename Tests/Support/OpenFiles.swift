import Foundation

/// This process's open file descriptors, for tests that prove resources are released.
public enum OpenFiles {
    /// How many of this process's descriptors are open on files inside `directory`.
    public static func count(inside directory: URL) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let prefix = directory.resolvingSymlinksInPath().path
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return false }
            return target.hasPrefix(prefix)
        }.count
    }

    /// The count inside `directory` once it is at most `limit`, or after two seconds of waiting
    /// for it to get there (threads of dropped objects close their files as they end).
    public static func settled(inside directory: URL, atMost limit: Int) async throws -> Int {
        var open = count(inside: directory)
        for _ in 0..<100 where open > limit {
            try await Task.sleep(for: .milliseconds(20))
            open = count(inside: directory)
        }
        return open
    }
}
