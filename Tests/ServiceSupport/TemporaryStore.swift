import Foundation
import Keyward

/// A temporary directory holding a freshly generated 0600 root key file, for tests that create
/// a store (key-file root of trust: fast, no Argon2).
public struct TemporaryStore: Sendable {
    /// The directory; `remove()` deletes it.
    public let directory: URL
    /// The root key file inside it.
    public let keyFile: String

    /// A new directory named `keyward-<label>-<uuid>` with a generated key file.
    public init(label: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keyFile = directory.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: keyFile)
    }

    /// A path for `name` inside the directory.
    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The root of trust from the key file.
    public func root() throws -> KeyFileRootOfTrust { try KeyFileRootOfTrust(path: keyFile) }

    /// Deletes the directory. A store closing meanwhile (SQLite removes its `-wal` and `-shm`
    /// files as it closes, a checkpoint thread may be finishing) makes one removal fail part
    /// way, on a file that vanished or appeared: it is tried again, for up to a second.
    public func remove() {
        for _ in 0..<50 {
            try? FileManager.default.removeItem(at: directory)
            guard FileManager.default.fileExists(atPath: directory.path) else { return }
            usleep(20_000)
        }
    }
}
