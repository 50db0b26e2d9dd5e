import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto
import KeywardHSM
import KeywardStorage

/// `keyward init`: creates a store and its root of trust.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a key store, protected by a passphrase (default), a key file, or a PKCS#11 token.",
        discussion: "With --pkcs11-module and --pkcs11-token, a non-extractable AES-256 key is made in the token (or reused) and wraps the store's KEK inside it; the PIN comes from KEYWARD_PKCS11_PIN_FILE, KEYWARD_PKCS11_PIN or a prompt.")

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Protect the store with this root key file (32 bytes, mode 0600).")
    var withKeyFile: String?

    @Flag(help: "With --with-key-file: create the key file (32 random bytes, mode 0600).")
    var generateKeyFile = false

    @Option(help: "Passphrase KDF: argon2id (default), scrypt, or pbkdf2 (FIPS settings).")
    var kdf: String = "argon2id"

    func run() async throws {
        try await guarded {
            try Keyward.harden()
            let path = storeOptions.storePath
            if !storeOptions.isPostgres, FileManager.default.fileExists(atPath: path) {
                throw CLIError(.refused, "\(path) already exists; choose another --store")
            }
            let root = try Self.newRoot(storeOptions, withKeyFile: withKeyFile, generateKeyFile: generateKeyFile, kdf: kdf)
            let store = try await storeOptions.connectStore(creating: true)
            if try await store.header() != nil { throw CLIError(.refused, "\(path) already holds a store") }
            let service = try await KeyService.initialize(store: store, root: root, actor: storeOptions.actorName)
            print("created store \(service.header.storeID) at \(path) (root of trust: \(root.kind))")
        }
    }

    /// The root of trust for a new store (`init`, and `restore` into a new store): a PKCS#11
    /// token when the store options name one, else the key file `withKeyFile` (made first with
    /// `generateKeyFile`), else a passphrase asked for twice.
    static func newRoot(_ storeOptions: StoreOptions, withKeyFile: String?, generateKeyFile: Bool, kdf: String = "argon2id") throws -> any RootOfTrust {
        if let location = try storeOptions.pkcs11Location {
            let pin = try PassphraseSource.read(prompt: "Token PIN: ", confirm: false, variable: "KEYWARD_PKCS11_PIN")
            return try PKCS11RootOfTrust(location: location, pin: pin.secret, createKey: true)
        }
        if let keyFile = withKeyFile {
            if generateKeyFile { try KeyFileRootOfTrust.generate(at: keyFile) }
            return try KeyFileRootOfTrust(path: keyFile)
        }
        guard !generateKeyFile else { throw CLIError(.usage, "--generate-key-file needs --with-key-file FILE to say where") }
        let parameters: KDFParameters = switch kdf {
        case "argon2id": .argon2idDefault()
        case "scrypt": .scryptDefault()
        case "pbkdf2": .pbkdf2Default()
        default: throw CLIError(.usage, "unknown --kdf \(kdf); use argon2id, scrypt or pbkdf2")
        }
        let passphrase = try PassphraseSource.read(prompt: "New passphrase for \(storeOptions.storePath): ", confirm: true)
        return try PassphraseRootOfTrust(newStoreWith: passphrase.secret, kdf: parameters)
    }
}
