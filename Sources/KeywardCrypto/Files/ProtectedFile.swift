import Foundation

/// The one door to files that decide whom Keyward trusts but hold no secret: the server's
/// configuration file, the client CA bundle, the backup recipients a server seals to and the
/// signers a restore accepts (and the CLI's `--recipient` and `--signer`). Anyone who can write
/// such a file can grant themselves access (a policy, a CA) or have backups sealed to their own
/// key, so a file group or others can write, or owned by another user than this process's or
/// root, is refused, as `sshd` refuses a writable `authorized_keys`. Reading it is not
/// restricted: a symbolic link (a Kubernetes ConfigMap's) is followed and its target checked.
public enum ProtectedFile {
    /// The contents of `path` after those checks, taken from the open descriptor.
    ///
    /// - Parameter what: what the file is, for messages ("the configuration file").
    /// - Parameter maximumBytes: the most it may hold.
    /// - Throws: `rejection`'s error naming the file and what is wrong with it.
    public static func contents<Failure: Error>(_ path: String, _ what: String, maximumBytes: Int = 4 << 20,
                                                rejection: (String) -> Failure) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw rejection("cannot read \(what) \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw rejection("\(what) \(path) is not a regular file") }
        guard info.st_mode & 0o022 == 0 else {
            throw rejection("\(what) \(path) has mode \(String(info.st_mode & 0o777, radix: 8)): group or others can write it, "
                            + "and so decide whom Keyward trusts; chmod go-w \(path)")
        }
        guard info.st_uid == 0 || info.st_uid == geteuid() else {
            throw rejection("\(what) \(path) belongs to user \(info.st_uid), neither root nor this process's user (\(geteuid())), "
                            + "who could change whom Keyward trusts; chown it")
        }
        let size = Int(info.st_size)
        guard size <= maximumBytes else { throw rejection("\(what) \(path) holds \(size) bytes, more than \(maximumBytes)") }
        guard let bytes = FileDescriptorReading.readAll(fd, size: size) else { throw rejection("cannot read \(what) \(path)") }
        return bytes
    }

    /// The contents of `path` as UTF-8 text, after the checks of `contents`.
    public static func text<Failure: Error>(_ path: String, _ what: String, maximumBytes: Int = 4 << 20,
                                            rejection: (String) -> Failure) throws(Failure) -> String {
        String(decoding: try contents(path, what, maximumBytes: maximumBytes, rejection: rejection), as: UTF8.self)
    }
}
