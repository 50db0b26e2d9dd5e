import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests, started without Foundation's `Process`.
///
/// On Linux, `Process.run()` (swift-corelibs-foundation up to Swift 6.3) lists `/proc/self/fd`
/// to close the parent's descriptors in the child, and copies each directory entry's whole
/// 256-byte name field: once the listing fills glibc's directory buffer (about 1,300 open
/// descriptors, which the parallel test suites reach), that copy reads past the buffer and can
/// fault (swift-corelibs-foundation pull request 5472). Here `posix_spawn` closes every
/// descriptor from 3 up in the child (`closefrom`) without reading the directory.
public struct ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The read end of the child's standard output, when `spawn` was asked for a pipe.
    public let output: FileHandle?

    /// A child that could not be started.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `arguments[0]` (a path) with the other arguments and this process's environment.
    /// Standard input is /dev/null; standard output goes to a pipe (`pipeOutput`), to the file
    /// `outputPath`, or to /dev/null; standard error to the file `errorsPath` or /dev/null.
    public static func spawn(_ arguments: [String], pipeOutput: Bool = false, outputPath: String? = nil,
                             errorsPath: String? = nil) throws -> ChildProcess {
        precondition(!arguments.isEmpty, "a child needs a program")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let writeFlags = O_WRONLY | O_CREAT | O_TRUNC
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pipeEnds: [Int32] = [-1, -1]
        if pipeOutput {
            guard pipe(&pipeEnds) == 0 else { throw Failure(description: "pipe failed with errno \(errno)") }
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", writeFlags, 0o600)
        }
        posix_spawn_file_actions_addopen(&actions, 2, errorsPath ?? "/dev/null", writeFlags, 0o600)
        guard closeFrom(&actions, 3) == 0 else { throw Failure(description: "posix_spawn_file_actions_addclosefrom_np failed") }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let started = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        if pipeOutput { close(pipeEnds[1]) }
        guard started == 0 else {
            if pipeOutput { close(pipeEnds[0]) }
            throw Failure(description: "cannot start \(arguments[0]): errno \(started)")
        }
        return ChildProcess(pid: pid, output: pipeOutput ? FileHandle(fileDescriptor: pipeEnds[0], closeOnDealloc: true) : nil)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare.
    private static let closeFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            fatalError("this glibc has no posix_spawn_file_actions_addclosefrom_np (2.34 or later is needed)")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Waits for the child to end; its exit status, or 128 plus the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs `arguments` to completion: its exit status and what it wrote to standard output and
    /// standard error (through files, so neither can fill a pipe and stall it).
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: Data, errors: Data) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outputPath = directory.appendingPathComponent("out").path, errorsPath = directory.appendingPathComponent("err").path
        let status = try spawn(arguments, outputPath: outputPath, errorsPath: errorsPath).wait()
        return (status, FileManager.default.contents(atPath: outputPath) ?? Data(), FileManager.default.contents(atPath: errorsPath) ?? Data())
    }
}
