import Foundation
import Keyward
import KeywardStorage
import Testing

/// Attacks by another local user: reading the store's files, or swapping the key file for a link.
@Suite("Store and key-file permissions")
struct FilePermissionTests {
    private func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0
    }

    @Test("a new store's database, WAL and shared-memory files are 0600, in a directory created 0700, whatever the umask")
    func createdPrivate() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-perm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let path = base.appendingPathComponent("nested/store.db").path
        let keyFile = base.appendingPathComponent("root.key").path
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try KeyFileRootOfTrust.generate(at: keyFile)
        let previous = umask(0o022)
        defer { umask(previous) }
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: path, auditDurability: .within(.milliseconds(10))),
                                                      root: KeyFileRootOfTrust(path: keyFile), actor: .owner("t"))
        _ = try await service.createKey(CreateKeyRequest(), actor: .owner("t"))
        #expect(mode(base.appendingPathComponent("nested").path) == 0o700)
        for file in [path, path + "-wal", path + "-shm"] {
            #expect(FileManager.default.fileExists(atPath: file), "\(file) missing")
            #expect(mode(file) == 0o600, "\(file) has mode \(String(mode(file), radix: 8))")
        }
    }

    @Test("attack: a store whose files group or others can read is refused, naming the file and the fix")
    func readableStoreRefused() async throws {
        let fixture = try await StoreFixture.make()
        defer { fixture.remove() }
        _ = try await fixture.service.createKey(CreateKeyRequest(), actor: .owner("t"))
        for suffix in ["", "-wal"] {
            let file = fixture.path + suffix
            guard FileManager.default.fileExists(atPath: file) else { continue }
            chmod(file, 0o644)
            do {
                _ = try SQLiteKeyStore(path: fixture.path)
                Issue.record("a store with \(file) at 0644 opened")
            } catch {
                #expect(error.description.contains(file) && error.description.contains("chmod 600"), "\(error.description)")
            }
            chmod(file, 0o600)
        }
        _ = try await fixture.reopen()
    }

    @Test("attack: a key file reached through a symbolic link, or of the wrong size or mode, is refused")
    func keyFileLinksRefused() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-keyfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let real = base.appendingPathComponent("root.key").path
        try KeyFileRootOfTrust.generate(at: real)
        _ = try KeyFileRootOfTrust(path: real)
        let link = base.appendingPathComponent("link.key").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        #expect(throws: KeywardError.self) { _ = try KeyFileRootOfTrust(path: link) }
        do { _ = try KeyFileRootOfTrust(path: link) } catch { #expect(error.description.contains("symbolic link"), "\(error.description)") }
        chmod(real, 0o640)
        #expect(throws: KeywardError.self) { _ = try KeyFileRootOfTrust(path: real) }
        chmod(real, 0o600)
        let short = base.appendingPathComponent("short.key").path
        FileManager.default.createFile(atPath: short, contents: Data(repeating: 1, count: 31), attributes: [.posixPermissions: 0o600])
        #expect(throws: KeywardError.self) { _ = try KeyFileRootOfTrust(path: short) }
        #expect(throws: KeywardError.self) { _ = try KeyFileRootOfTrust(path: base.path) }
    }
}
