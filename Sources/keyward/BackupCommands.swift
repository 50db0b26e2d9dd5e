import ArgumentParser
import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage

/// `keyward backup create | verify | keygen | signer`.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Write, check, or make recipient keys for encrypted backups.",
        subcommands: [Create.self, VerifyBundle.self, Keygen.self, Signer.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one encrypted bundle of every key that allows backup, to one or more files.",
            discussion: "Protected by a passphrase (KEYWARD_BACKUP_PASSPHRASE_FILE, KEYWARD_BACKUP_PASSPHRASE or a prompt), or with --recipient by an X25519 / X-Wing public key from `backup keygen`. A recipient bundle is signed by the store's backup signing key (`keyward backup signer`), which whoever restores it pins with --signer.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(name: .customLong("out"), help: "Destination file (repeatable).") var destinations: [String]
        @Option(help: "Recipient public key file (from `backup keygen`).") var recipient: String?

        func run() async throws {
            try await guarded {
                guard !destinations.isEmpty else { throw CLIError(.failure, "give at least one --out destination") }
                if try await storeOptions.remote({ client in
                    guard let recipient else {
                        throw CLIError(.failure, "a backup over the API is sealed to a recipient the server pins: give --recipient FILE (passphrase bundles are made locally)")
                    }
                    let reply = try await client.createBackup(recipient: try Identity.text(recipient))
                    for destination in destinations { try Identity.writeAtomically(Data(reply.bundle), to: destination, mode: 0o600) }
                    print("backed up \(reply.keys) keys from the server to \(destinations.joined(separator: ", ")); restore with --signer and the server store's public key from `keyward backup signer`")
                }) { return }
                let service = try await storeOptions.open()
                let protection: BackupProtection
                if let recipient {
                    protection = .recipient(try Identity.readPublicKey(recipient))
                } else {
                    let passphrase = try PassphraseSource.read(prompt: "Backup passphrase: ", confirm: true, variable: "KEYWARD_BACKUP_PASSPHRASE")
                    protection = .passphrase(passphrase, .argon2idDefault())
                }
                let progress = Progress(label: "backing up keys")
                let bundle = try await service.createBackup(protection: protection, actor: storeOptions.actorName) { progress.update($0) }
                progress.finish()
                for destination in destinations { try Identity.writeAtomically(Data(bundle.bytes), to: destination, mode: 0o600) }
                print("backed up \(bundle.header.keyCount) keys (\(bundle.header.protection)) to \(destinations.joined(separator: ", "))")
                if let signer = bundle.header.signer {
                    print("signed by key \(signer.keyID) (\(KeyService.backupSignerAlias)); restore with --signer and its public key from `keyward backup signer`")
                }
            }
        }
    }

    struct VerifyBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "verify", abstract: "Check a bundle's integrity and every key in it, without restoring.")
        @Option(name: .customLong("in"), help: "The bundle.") var input: String
        @Option(help: "Recipient identity file, for bundles made with --recipient.") var identity: String?
        @Option(help: "The source store's backup signing public key (PEM, from `keyward backup signer`), for bundles made with --recipient.") var signer: String?

        func run() async throws {
            try await guarded {
                try Keyward.harden()
                let contents = try Identity.openBundle(input, identity: identity, signer: signer)
                let versions = contents.keys.reduce(0) { $0 + $1.versionNumbers.count }
                print("backup intact: \(contents.keys.count) keys, \(versions) versions, made \(ISO8601DateFormatter().string(from: contents.header.createdAt)) from store \(contents.header.storeID)")
            }
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a backup recipient key pair (X25519, or X-WING for post-quantum).")
        @Option(help: "X25519 or X-WING.") var spec: String = "X-WING"
        @Option(help: "Private identity file to write (mode 0600).") var identity: String
        @Option(help: "Public key file to write.") var publicOut: String

        func run() async throws {
            try await guarded {
                try Keyward.harden()
                let keySpec = try KeySpec(named: spec)
                guard keySpec == .x25519 || keySpec == .xWing else { throw CLIError(.failure, "backup recipients are X25519 or X-WING") }
                let material = try KeyMaterial.generate(keySpec)
                try Identity.writeAtomically(Data(BackupKeyFiles.identityText(material).utf8), to: identity, mode: 0o600)
                try Identity.writeAtomically(Data(try BackupKeyFiles.recipientText(material).utf8), to: publicOut, mode: 0o644)
                print("wrote \(identity) (keep it offline) and \(publicOut)")
            }
        }
    }
}

extension BackupCommand {
    struct Signer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the public key that signs this store's recipient backups (created on first use).",
            discussion: "Give the file to whoever restores this store's recipient backups: `keyward restore --identity ID --signer FILE` refuses a bundle it did not sign.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(name: .customLong("out"), help: "Public key file to write (PEM).") var output: String

        func run() async throws {
            try await guarded {
                let service = try await storeOptions.open()
                let publicKey = try await service.backupSigner(actor: storeOptions.actorName)
                guard let pem = publicKey.pem else { throw CLIError(.failure, "the backup signing key has no PEM form") }
                try Identity.writeAtomically(Data(pem.utf8), to: output, mode: 0o644)
                print("wrote \(output): the \(publicKey.spec.rawValue) public key of \(KeyService.backupSignerAlias)")
            }
        }
    }
}

/// `keyward restore`: a backup into a new store (created here if it does not exist).
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore a backup bundle into a new, empty store.")
    @OptionGroup var storeOptions: StoreOptions
    @Option(name: .customLong("in"), help: "The bundle.") var input: String
    @Option(help: "Recipient identity file, for bundles made with --recipient.") var identity: String?
    @Option(help: "The source store's backup signing public key (PEM, from `keyward backup signer`), for bundles made with --recipient.") var signer: String?
    @Option(help: "If the store does not exist, protect it with this root key file (else a PKCS#11 token the options name, else a passphrase).") var withKeyFile: String?
    @Flag(help: "With --with-key-file: create the key file (32 random bytes, mode 0600).") var generateKeyFile = false

    func run() async throws {
        try await guarded {
            try Keyward.harden()
            if try await storeOptions.remote({ client in
                guard identity == nil, signer == nil else {
                    throw CLIError(.failure, "over the API the server opens the bundle with its own identity and trusted signers (backup.identity, backup.signers); drop --identity and --signer")
                }
                let reply = try await client.restore(bundle: [UInt8](try Data(contentsOf: URL(fileURLWithPath: input))))
                print("restored \(reply.restored) keys on the server")
            }) { return }
            let contents = try Identity.openBundle(input, identity: identity, signer: signer)
            let fresh = try await storeOptions.connectStore(creating: true)
            // A new store is opened with the root of trust it was just given, not with --key-file.
            let service = try await fresh.header() == nil
                ? KeyService.initialize(store: fresh, root: try Init.newRoot(storeOptions, withKeyFile: withKeyFile, generateKeyFile: generateKeyFile),
                                        actor: storeOptions.actorName)
                : storeOptions.open()
            let progress = Progress(label: "restoring keys")
            let count = try await service.restore(contents, actor: storeOptions.actorName) { progress.update($0, of: contents.keys.count) }
            progress.finish()
            print("restored \(count) keys into \(storeOptions.storePath)")
        }
    }
}

/// Backup identity and public key files.
enum Identity {
    static func openBundle(_ path: String, identity: String?, signer: String?) throws -> BackupContents {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(.failure, "cannot read \(path)") }
        // The header first: a file that is no bundle, or a bundle that opens another way, is
        // told so before anyone is asked for a passphrase.
        let protection: BackupBundle.Protection
        do { protection = try BackupBundle(parsing: [UInt8](data)).header.protection } catch {
            throw CLIError(.rootOfTrust, "\(path): \(error.description)")
        }
        switch (protection, identity) {
        case (.passphrase, _?):
            throw CLIError(.failure, "\(path) is protected by a passphrase, not sealed to a recipient: drop --identity and --signer "
                           + "and give the passphrase in KEYWARD_BACKUP_PASSPHRASE_FILE, KEYWARD_BACKUP_PASSPHRASE or at the prompt")
        case (.x25519, nil), (.xWing, nil):
            throw CLIError(.failure, "\(path) is sealed to a \(protection) recipient: open it with --identity (the recipient's identity file) "
                           + "and --signer (the source store's backup signing public key)")
        default: break
        }
        if let identity {
            guard let signer else {
                throw CLIError(.failure, "a recipient backup opens only with --signer: the source store's backup signing public key "
                               + "(`keyward backup signer --out FILE` on that store), so a bundle someone else sealed to your public key is refused")
            }
            let signerKey: PublicKey
            do { signerKey = try BackupKeyFiles.signer(try text(signer)) } catch let error as KeywardError {
                throw CLIError(.failure, "\(signer): \(error.description)")
            }
            return try KeyService.openBackup([UInt8](data), identity: try readIdentity(identity), signer: signerKey)
        }
        let passphrase = try PassphraseSource.read(prompt: "Backup passphrase: ", confirm: false, variable: "KEYWARD_BACKUP_PASSPHRASE")
        return try KeyService.openBackup([UInt8](data), passphrase: passphrase.secret)
    }

    static func readIdentity(_ path: String) throws -> KeyMaterial {
        do {
            return try BackupKeyFiles.identity(try SecretFile.text(path, "the identity file", rejection: KeywardError.backupRejected))
        } catch {
            throw CLIError(.rootOfTrust, "\(path): \(error.description)")
        }
    }

    static func readPublicKey(_ path: String) throws -> PublicKey {
        do { return try BackupKeyFiles.recipient(try text(path)) } catch let error as KeywardError { throw CLIError(.failure, "\(path): \(error.description)") }
    }

    /// A file's text.
    /// A recipient's or signer's public key file: it decides whom a backup is sealed to, or
    /// which bundles a restore accepts, so it passes `ProtectedFile`'s checks.
    static func text(_ path: String) throws -> String {
        try ProtectedFile.text(path, "the public key file") { CLIError(.rootOfTrust, $0) }
    }

    /// Writes to a temporary file beside `path`, syncs it, and renames it into place.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw CLIError(.failure, "cannot create \(temporary): errno \(errno)") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CLIError(.failure, "cannot write \(path)")
        }
    }
}
