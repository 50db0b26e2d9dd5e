import Foundation
import Testing

/// The module boundaries the architecture promises, checked on the sources themselves, so a
/// change that crosses one fails here rather than in review.
@Suite("Layering")
struct LayeringTests {
    /// `Sources/`, found from this file's path.
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// The `import` lines of every Swift file under `Sources/<module>`.
    static func imports(of module: String) throws -> [(file: String, module: String)] {
        let root = sources.appendingPathComponent(module)
        guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var found: [(String, String)] = []
        for case let url as URL in files where url.pathExtension == "swift" {
            for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                      words[..<index].allSatisfy({ $0.hasPrefix("@") || ["public", "package", "internal"].contains($0) }) else { continue }
                found.append((url.lastPathComponent, String(words[index + 1])))
            }
        }
        return found
    }

    @Test("the sources are where this test looks for them")
    func sourcesFound() throws {
        #expect(try Self.imports(of: "KeywardCrypto").contains { $0.module == "Crypto" })
    }

    @Test("only KeywardCrypto imports swift-crypto")
    func cryptoOnlyInKeywardCrypto() throws {
        for module in ["Keyward", "KeywardStorage", "KeywardAPI", "KeywardServer", "KeywardClient", "KeywardHSM", "KeywardTesting", "KeywardServerTesting", "KeywardPostgres", "keyward"] {
            let offenders = try Self.imports(of: module).filter { ["Crypto", "CryptoExtras", "_CryptoExtras"].contains($0.module) }
            #expect(offenders.isEmpty, "\(module): \(offenders.map(\.file))")
        }
    }

    @Test("the library targets import neither NIO nor Hummingbird")
    func librariesFreeOfNIO() throws {
        for module in ["KeywardCrypto", "KeywardStorage", "Keyward", "KeywardHSM", "KeywardTesting", "KeywardAPI"] {
            let offenders = try Self.imports(of: module).filter {
                $0.module.hasPrefix("NIO") || $0.module.hasPrefix("Hummingbird") || $0.module.hasPrefix("Postgres") || $0.module == "KeywardPostgres"
            }
            #expect(offenders.isEmpty, "\(module): \(offenders.map(\.file))")
        }
    }

    @Test("only the PostgreSQL store imports postgres-nio and libpq, and only the CLI and tests reach the PostgreSQL store")
    func postgresContained() throws {
        for module in ["KeywardCrypto", "KeywardStorage", "Keyward", "KeywardHSM", "KeywardTesting", "KeywardAPI", "KeywardServer", "KeywardClient"] {
            let offenders = try Self.imports(of: module).filter { ["PostgresNIO", "CLibPQ", "KeywardPostgres"].contains($0.module) }
            #expect(offenders.isEmpty, "\(module): \(offenders.map(\.file))")
        }
        #expect(try Self.imports(of: "KeywardPostgres").contains { $0.module == "PostgresNIO" })
    }

    @Test("the server reaches the store only through Keyward")
    func serverDoesNotImportStorage() throws {
        let offenders = try Self.imports(of: "KeywardServer").filter { $0.module == "KeywardStorage" || $0.module == "GRDB" }
        #expect(offenders.isEmpty, "\(offenders.map(\.file))")
    }
}
