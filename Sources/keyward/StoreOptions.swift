import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto
import KeywardClient
import KeywardHSM
import KeywardPostgres
import KeywardStorage
import Logging

/// Where the store is and how to open it; shared by every command that touches keys.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store: a SQLite file, or postgres://USER@HOST:PORT/DATABASE (default: $KEYWARD_STORE, else ./keyward.db).",
                                            discussion: "A PostgreSQL password comes from the file $KEYWARD_DATABASE_PASSWORD_FILE names, or $KEYWARD_DATABASE_PASSWORD; never from the URL."))
    var store: String?

    @Option(name: .long, help: ArgumentHelp("A keyward serve to administer instead of a store (default: $KEYWARD_ADDR); the token comes from $KEYWARD_TOKEN.",
                                             discussion: "Works with key create/list/describe/rotate/enable/disable/mark-compromised/schedule-destruction/cancel-destruction/alias, encrypt, decrypt, re-encrypt, data-key, sign, verify, mac, verify-mac, public-key, random, token create/list/revoke/policy, credential create, verify (the store), audit tail/verify/export/signer, backup create, restore, kek rotate and maintain; any other command refuses to run while a server is named, rather than act on a local store."))
    var server: String?

    @Option(name: .long, help: "With --server: PEM of the CA that issued the server's certificate (default: $KEYWARD_CACERT, else the system roots).")
    var caFile: String?

    @Option(name: .long, help: "The root key file of a key-file store (default: $KEYWARD_KEY_FILE).")
    var keyFile: String?

    @Option(name: .long, help: "Who is acting, for the audit log (default: $USER).")
    var actor: String?

    @Option(help: "PKCS#11 module of a token store (default: $KEYWARD_PKCS11_MODULE). Never read from the store.")
    var pkcs11Module: String?

    @Option(help: "Label of the PKCS#11 token (default: $KEYWARD_PKCS11_TOKEN).")
    var pkcs11Token: String?

    @Option(help: "Label of the root key in the token (default: $KEYWARD_PKCS11_KEY_LABEL, else keyward-root).")
    var pkcs11KeyLabel: String?

    /// The PKCS#11 location from flags or the environment, if a module is named.
    var pkcs11Location: PKCS11RootOfTrust.Location? {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            guard let module = pkcs11Module ?? environment["KEYWARD_PKCS11_MODULE"] else { return nil }
            guard let token = pkcs11Token ?? environment["KEYWARD_PKCS11_TOKEN"] else {
                throw CLIError(.failure, "--pkcs11-module needs --pkcs11-token (or KEYWARD_PKCS11_TOKEN)")
            }
            return .init(module: module, token: token, keyLabel: pkcs11KeyLabel ?? environment["KEYWARD_PKCS11_KEY_LABEL"] ?? "keyward-root")
        }
    }

    var storePath: String {
        store ?? ProcessInfo.processInfo.environment["KEYWARD_STORE"] ?? "keyward.db"
    }

    var keyFilePath: String? {
        keyFile ?? ProcessInfo.processInfo.environment["KEYWARD_KEY_FILE"]
    }

    /// The store's owner, named for the audit log.
    var actorName: Caller {
        .owner(actor ?? "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "\(getuid())"))
    }

    /// The server named by `--server` or `KEYWARD_ADDR`, if any.
    var serverURL: String? {
        server ?? ProcessInfo.processInfo.environment["KEYWARD_ADDR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Refuses to open a local store while a server is named: a command with no remote form
    /// would otherwise act on whatever store is local (or fail to find one) when its user meant
    /// the server.
    func requireNoServer() throws {
        guard let url = serverURL else { return }
        let named = server != nil ? "--server \(url)" : "KEYWARD_ADDR (\(url))"
        throw CLIError(.usage, "this command works on a local store only, and \(named) names a server; "
                       + (server != nil ? "drop --server" : "unset KEYWARD_ADDR") + " to use the store at \(storePath)")
    }

    /// Runs `body` against the server named by `--server` or `KEYWARD_ADDR`, with the token in
    /// `KEYWARD_TOKEN` (never a flag), and returns true; returns false when no server is named.
    func remote(_ body: (KeywardClient) async throws -> Void) async throws -> Bool {
        let environment = ProcessInfo.processInfo.environment
        guard let url = serverURL else { return false }
        // Options only a store can honour are refused, not ignored: the server records the
        // token's principal, and keeps its own store and root of trust.
        let localOnly = [("--store", store), ("--key-file", keyFile), ("--actor", actor), ("--pkcs11-module", pkcs11Module),
                         ("--pkcs11-token", pkcs11Token), ("--pkcs11-key-label", pkcs11KeyLabel)].filter { $0.1 != nil }.map(\.0)
        guard localOnly.isEmpty else {
            throw CLIError(.usage, "\(localOnly.joined(separator: ", ")) \(localOnly.count == 1 ? "is" : "are") for a local store, and "
                           + "\(server != nil ? "--server" : "KEYWARD_ADDR") names the server \(url) (which audits the token's principal); give one or the other")
        }
        // Plaintexts and data keys pass through this process as they do with a local store.
        try Keyward.harden()
        guard let token = environment["KEYWARD_TOKEN"], !token.isEmpty else {
            throw CLIError(.failure, "--server \(url) needs an API token in KEYWARD_TOKEN (never on the command line)")
        }
        var trust = KeywardClientConfiguration.Trust.systemRoots
        if let path = caFile ?? environment["KEYWARD_CACERT"] {
            guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(.failure, "cannot read the CA file \(path)") }
            trust = .certificateAuthority(pem: String(decoding: data, as: UTF8.self))
        }
        let client = try await KeywardClient(configuration: KeywardClientConfiguration(url: url, token: token, trust: trust))
        do {
            try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return true
    }

    /// Whether the store is a PostgreSQL database rather than a SQLite file.
    var isPostgres: Bool { PostgresLocation.isPostgres(storePath) }

    /// Connects to the store's backend: a SQLite file (which must exist unless `creating`), or
    /// a PostgreSQL database, whose password comes from the environment, never the URL. Refused
    /// while a server is named (`requireNoServer`), except for the server itself (`serving`).
    func connectStore(creating: Bool = false, auditDurability: AuditDurability = .eachBatch, serving: Bool = false) async throws -> any KeyStore {
        if !serving { try requireNoServer() }
        if isPostgres {
            do {
                let location = try PostgresLocation(storePath)
                // PostgresNIO logs every failed connection attempt at info; a command says what
                // failed once, in its error, so only errors from the driver itself are shown.
                var logger = Logger(label: "keyward.postgres")
                logger.logLevel = .error
                return try await PostgresKeyStore.connect(location, password: try PostgresLocation.password(), logger: logger)
            } catch let error as PostgresStoreError {
                throw CLIError(.failure, error.description)
            }
        }
        if !creating, !FileManager.default.fileExists(atPath: storePath) {
            throw CLIError(.notFound, "no store at \(storePath); create one with `keyward init --store \(storePath)`")
        }
        return try SQLiteKeyStore(path: storePath, auditDurability: auditDurability)
    }

    /// Opens the store, unwrapping its KEK with the root of trust its header names.
    func open() async throws -> KeyService {
        try await openWithRoot().service
    }

    /// Opens the store (or `store`, already connected) and also returns its root of trust (for
    /// KEK rotation), asking for a passphrase only once.
    func openWithRoot(options: KeyService.Options = KeyService.Options(), auditDurability: AuditDurability = .eachBatch,
                      store connected: (any KeyStore)? = nil, serving: Bool = false) async throws -> (service: KeyService, root: any RootOfTrust) {
        try Keyward.harden()
        let store: any KeyStore
        if let connected { store = connected } else { store = try await connectStore(auditDurability: auditDurability, serving: serving) }
        guard let header = try await store.header() else {
            throw CLIError(.failure, "\(storePath) is not an initialised Keyward store")
        }
        let root = try rootOfTrust(for: header)
        return (try await KeyService.open(store: store, root: { (_) throws(KeywardError) -> any RootOfTrust in root }, options: options), root)
    }

    /// The root of trust the header names, built from --key-file or the passphrase sources.
    func rootOfTrust(for header: StoreHeader) throws -> any RootOfTrust {
        switch header.rootOfTrust {
        case "key-file":
            guard let keyFilePath else { throw CLIError(.rootOfTrust, "this store's root key is a key file; pass --key-file or set KEYWARD_KEY_FILE") }
            return try KeyFileRootOfTrust(path: keyFilePath)
        case "passphrase":
            let passphrase = try PassphraseSource.read(prompt: "Passphrase for \(storePath): ", confirm: false)
            return try PassphraseRootOfTrust(passphrase: passphrase.secret, storedParameters: header.rootParameters)
        case "pkcs11":
            guard let location = try pkcs11Location else {
                throw CLIError(.rootOfTrust, "this store's root key is in a PKCS#11 token; pass --pkcs11-module and --pkcs11-token "
                               + "(or set KEYWARD_PKCS11_MODULE and KEYWARD_PKCS11_TOKEN): the module is never taken from the store file")
            }
            let pin = try PassphraseSource.read(prompt: "Token PIN: ", confirm: false, variable: "KEYWARD_PKCS11_PIN")
            return try PKCS11RootOfTrust(configured: location, storedParameters: header.rootParameters, pin: pin.secret)
        default:
            throw CLIError(.rootOfTrust, "root of trust '\(header.rootOfTrust)' is not supported by this build")
        }
    }
}

/// Reads a passphrase from KEYWARD_PASSPHRASE_FILE, KEYWARD_PASSPHRASE, or the terminal
/// without echo. Never from the command line, where other users could read it.
enum PassphraseSource {
    static func read(prompt: String, confirm: Bool, variable: String = "KEYWARD_PASSPHRASE") throws -> Passphrase {
        let environment = ProcessInfo.processInfo.environment
        var bytes: [UInt8]
        if let file = environment[variable + "_FILE"] {
            bytes = try SecretFile.contents(file, "the file \(variable)_FILE names") { CLIError(.rootOfTrust, $0) }
            while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        } else if let value = environment[variable] {
            bytes = Array(value.utf8)
        } else {
            bytes = try Terminal.readWithoutEcho(prompt: prompt, variable: variable)
            if confirm {
                var again = try Terminal.readWithoutEcho(prompt: "Again: ", variable: variable)
                defer { SecureZero.wipe(&again) }
                guard ConstantTime.equals(bytes, again) else {
                    SecureZero.wipe(&bytes)
                    throw CLIError(.failure, "the passphrases differ")
                }
            }
        }
        defer { SecureZero.wipe(&bytes) }
        guard !bytes.isEmpty else { throw CLIError(.failure, "the passphrase is empty") }
        return Passphrase(try SecretBytes(copying: bytes))
    }
}

/// Terminal input without echo.
enum Terminal {
    /// Reads a line typed at `/dev/tty` after `prompt`; the errors name `variable` (and its
    /// `_FILE` form) as the way to give the passphrase without a terminal.
    static func readWithoutEcho(prompt: String, variable: String) throws -> [UInt8] {
        let instead = "set \(variable)_FILE or \(variable)"
        let fd = open("/dev/tty", O_RDWR)
        guard fd >= 0 else {
            throw CLIError(.failure, "no terminal to ask for the passphrase; \(instead)")
        }
        defer { close(fd) }
        // Echo goes off before the prompt appears: whatever is typed after the prompt is never
        // echoed, and never discarded by the flush that switches echo off.
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else {
            throw CLIError(.failure, "cannot read the terminal's settings to turn echo off; \(instead)")
        }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        guard tcsetattr(fd, TCSAFLUSH, &silent) == 0 else {
            throw CLIError(.failure, "cannot turn the terminal's echo off; \(instead)")
        }
        defer {
            tcsetattr(fd, TCSADRAIN, &saved)
            _ = write(fd, "\n", 1)
        }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != 0x0A, byte != 0x0D {
            bytes.append(byte)
            if bytes.count > 4096 { break }
        }
        byte = 0
        return bytes
    }
}
