import Foundation

/// The one door to files that hold secrets (a root key file, a backup identity, a passphrase or
/// database password file, the server's TLS private key): the file named
/// is read only if it is the file itself (not a symbolic link), a regular file, and readable and
/// writable by its owner alone (mode 0600 or stricter), as `ssh` demands of a private key. A
/// secret others on the machine can read is refused, not used.
public enum SecretFile {
    /// Opens `path` for reading after those checks, taken from the open descriptor so nothing
    /// can be swapped in between; returns the descriptor (the caller closes it) and the size.
    ///
    /// - Parameter what: what the file is, for messages ("the key file").
    /// - Parameter rejection: the error for a refusal, given the message.
    public static func open<Failure: Error>(_ path: String, _ what: String, rejection: (String) -> Failure) throws(Failure) -> (descriptor: Int32, size: Int) {
        let fd = Foundation.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw rejection(errno == ELOOP ? "\(what) \(path) is a symbolic link; name the file itself" : "cannot read \(what) \(path)")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw rejection("\(what) \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            close(fd)
            throw rejection("\(what) \(path) has mode \(String(info.st_mode & 0o777, radix: 8)); it must be 0600 or stricter (chmod 600 \(path))")
        }
        return (fd, Int(info.st_size))
    }

    /// The text of a small secret file (at most `maximumBytes`), after the checks of `open`;
    /// the bytes read are wiped once the text is made.
    ///
    /// - Throws: `rejection`'s error naming the file and what is wrong with it.
    public static func text<Failure: Error>(_ path: String, _ what: String, maximumBytes: Int = 64 * 1024,
                                            rejection: (String) -> Failure) throws(Failure) -> String {
        var bytes = try contents(path, what, maximumBytes: maximumBytes, rejection: rejection)
        defer { SecureZero.wipe(&bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes of a small secret file (at most `maximumBytes`), after the checks of `open`.
    /// The caller wipes them (`SecureZero.wipe`) when done.
    ///
    /// - Throws: `rejection`'s error naming the file and what is wrong with it.
    public static func contents<Failure: Error>(_ path: String, _ what: String, maximumBytes: Int = 64 * 1024,
                                                rejection: (String) -> Failure) throws(Failure) -> [UInt8] {
        let (fd, size) = try open(path, what, rejection: rejection)
        defer { close(fd) }
        guard size <= maximumBytes else { throw rejection("\(what) \(path) holds \(size) bytes, more than \(maximumBytes); it is not \(what)") }
        guard let bytes = FileDescriptorReading.readAll(fd, size: size) else { throw rejection("cannot read \(what) \(path)") }
        return bytes
    }
}
