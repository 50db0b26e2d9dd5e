import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage

/// `keyward init`: creates a store and its root of trust.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a key store, protected by a passphrase (default) or a key file.")

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
            if FileManager.default.fileExists(atPath: path) {
                throw CLIError(.refused, "\(path) already exists; choose another --store")
            }
            let root: any RootOfTrust
            if let keyFile = withKeyFile {
                if generateKeyFile { try KeyFileRootOfTrust.generate(at: keyFile) }
                root = try KeyFileRootOfTrust(path: keyFile)
            } else {
                let parameters: KDFParameters = switch kdf {
                case "argon2id": .argon2idDefault()
                case "scrypt": .scryptDefault()
                case "pbkdf2": .pbkdf2Default()
                default: throw CLIError(.failure, "unknown --kdf \(kdf); use argon2id, scrypt or pbkdf2")
                }
                let passphrase = try PassphraseSource.read(prompt: "New passphrase for \(path): ", confirm: true)
                root = try PassphraseRootOfTrust(newStoreWith: passphrase.secret, kdf: parameters)
            }
            let service = try await KeyService.initialize(store: try SQLiteKeyStore(path: path), root: root, actor: storeOptions.actorName)
            print("created store \(service.header.storeID) at \(path) (root of trust: \(root.kind))")
        }
    }
}
