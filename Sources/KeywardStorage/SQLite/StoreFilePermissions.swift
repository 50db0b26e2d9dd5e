import Foundation

/// The file-system rule for a SQLite store: its database, WAL and shared-memory files are
/// readable and writable by their owner only.
///
/// They hold no key in clear, but they do hold the audit log, every key's metadata and the
/// token hashes; a store that follows the umask is usually world-readable.
enum StoreFilePermissions {
    /// The files SQLite keeps for the store at `path`.
    static func files(of path: String) -> [String] { [path, path + "-wal", path + "-shm"] }

    /// Refuses an existing store that group or others can reach; creates a new store's file 0600
    /// (and a missing directory 0700) before SQLite opens it.
    static func prepare(_ path: String) throws(StorageError) {
        for file in files(of: path) {
            var info = stat()
            guard lstat(file, &info) == 0 else { continue }
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw .unavailable("\(file) is not a regular file; a store's files must be the files themselves, not links")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw .unavailable("\(file) has mode \(String(info.st_mode & 0o777, radix: 8)); group and others can reach the audit log, "
                                   + "key metadata and token hashes it holds. Run: chmod 600 \(files(of: path).joined(separator: " "))")
            }
        }
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .unavailable("cannot create the store's directory \(directory): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return }
            throw .unavailable("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
    }
}
