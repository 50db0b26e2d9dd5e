import Foundation
import Keyward
import KeywardCrypto
import KeywardHSM
import KeywardStorage
import Testing

/// A SoftHSM2 token directory for this test process; every token is made before the module is
/// first loaded (SoftHSM reads its configuration and tokens once, at C_Initialize).
///
/// `scripts/test.sh` sets SOFTHSM2_CONF before the tests start, to a path in a fresh directory,
/// and the configuration is written there. Only without it (`swift test` run by hand) is the
/// variable set here, with `setenv`, which races with other tests spawning processes.
enum SoftHSM {
    /// The tokens, each with user PIN 1234.
    static let main = "kw-main", other = "kw-other", pinCheck = "kw-pin", noKey = "kw-nokey"

    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let directory: URL = {
        let given = ProcessInfo.processInfo.environment["SOFTHSM2_CONF"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        let directory = given?.deletingLastPathComponent()
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("keyward-softhsm-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        let conf = given ?? directory.appendingPathComponent("softhsm2.conf")
        try? "directories.tokendir = \(directory.appendingPathComponent("tokens").path)\nobjectstore.backend = file\nlog.level = ERROR\n".write(to: conf, atomically: true, encoding: .utf8)
        if given == nil { setenv("SOFTHSM2_CONF", conf.path, 1) }
        for label in [main, other, pinCheck, noKey] { try? makeToken(label, conf: conf.path) }
        return directory
    }()

    /// The token directory, ready.
    static func ready() { _ = directory }

    private static func makeToken(_ label: String, conf: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/softhsm2-util")
        process.arguments = ["--init-token", "--free", "--label", label, "--pin", "1234", "--so-pin", "5678"]
        process.environment = ["SOFTHSM2_CONF": conf]
        process.standardOutput = Pipe()
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw KeywardError.storeState("softhsm2-util failed") }
    }
}

@Suite("PKCS#11 root of trust (SoftHSM2)", .serialized)
struct PKCS11RootOfTrustTests {
    @Test("a store protected by a non-extractable token key opens with the PIN and refuses a wrong PIN or another token")
    func tokenRoot() async throws {
        SoftHSM.ready()
        let label = SoftHSM.main
        let location = PKCS11RootOfTrust.Location(module: SoftHSM.module, token: label)
        let pin = try SecretBytes(copying: Array("1234".utf8))
        let root = try PKCS11RootOfTrust(location: location, pin: pin, createKey: true)
        #expect(!root.keyIsExtractable)
        let path = SoftHSM.directory.appendingPathComponent("\(label).db").path
        let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: path), root: root, actor: .owner("t"))
        let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
        let sealed = try await service.encrypt([4, 2], key: key, actor: .owner("t"))
        #expect(service.header.rootOfTrust == "pkcs11")

        // Reopen from the header's recorded location, as a new process would.
        let reopened = try await KeyService.open(store: try SQLiteKeyStore(path: path), root: { (header) throws(KeywardError) in
            try PKCS11RootOfTrust(configured: location, storedParameters: header.rootParameters, pin: pin)
        })
        #expect(try await reopened.decrypt(sealed.ciphertext, actor: .owner("t")).plaintext == [4, 2])

        // A wrong PIN (on a token this process has not logged in to: PKCS#11 login state is
        // shared by all of an application's sessions with a token).
        let wrongPin = try SecretBytes(copying: Array("9999".utf8))
        do {
            _ = try PKCS11RootOfTrust(location: .init(module: SoftHSM.module, token: SoftHSM.pinCheck), pin: wrongPin, createKey: true)
            Issue.record("a wrong PIN logged in")
        } catch {
            #expect(error.description.contains("PIN"))
        }

        // Another token's key does not unwrap this store's KEK.
        let other = SoftHSM.other
        let otherRoot = try PKCS11RootOfTrust(location: .init(module: SoftHSM.module, token: other), pin: pin, createKey: true)
        let error = await { () async -> KeywardError? in
            do {
                _ = try await KeyService.open(store: try SQLiteKeyStore(path: path), root: { (_) throws(KeywardError) in otherRoot })
                return nil
            } catch let error as KeywardError {
                return error
            } catch {
                return .storeState("\(error)")
            }
        }()
        guard case .rootOfTrustRejected = error else { Issue.record("another token opened the store: \(String(describing: error))"); return }
    }

    @Test("a missing module, an unknown token and a missing key are clear errors")
    func badLocations() throws {
        SoftHSM.ready()
        let pin = try SecretBytes(copying: Array("1234".utf8))
        for location in [
            PKCS11RootOfTrust.Location(module: "/nonexistent/libpkcs11.so", token: "x"),
            PKCS11RootOfTrust.Location(module: SoftHSM.module, token: "no-such-token"),
        ] {
            do {
                _ = try PKCS11RootOfTrust(location: location, pin: pin, createKey: false)
                Issue.record("\(location) opened")
            } catch {
                guard case .rootOfTrustRejected(let message) = error else { Issue.record("\(error)"); continue }
                #expect(!message.isEmpty)
            }
        }
        do {
            _ = try PKCS11RootOfTrust(location: .init(module: SoftHSM.module, token: SoftHSM.noKey, keyLabel: "absent"), pin: pin, createKey: false)
            Issue.record("a missing key was found")
        } catch {
            #expect(error.description.contains("absent"))
        }
    }
}
