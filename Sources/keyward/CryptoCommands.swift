import ArgumentParser
import Foundation
import KeywardAPI
import Keyward
import KeywardCrypto

struct Encrypt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Encrypt data under a key's newest version.")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @OptionGroup var context: ContextOptions
    @Option(help: "Key id or alias.") var key: String

    func run() async throws {
        try await guarded {
            var plaintext = try io.read()
            defer { SecureZero.wipe(&plaintext) }
            let context = try context.context()
            if try await storeOptions.remote({ client in
                try io.write(try await client.encrypt(plaintext, key: key, context: context.pairs).bytes)
            }) { return }
            let service = try await storeOptions.open()
            try io.write(try await service.encrypt(plaintext, key: key, context: context, actor: storeOptions.actorName).ciphertext)
        }
    }
}

struct Decrypt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Decrypt a Keyward ciphertext (the key is named inside it).")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @OptionGroup var context: ContextOptions
    @Option(help: "Refuse ciphertexts of any other key.") var key: String?

    func run() async throws {
        try await guarded {
            let ciphertext = try io.read()
            let context = try context.context()
            if try await storeOptions.remote({ client in
                var plaintext = try await client.decrypt(ciphertext, key: key, context: context.pairs)
                defer { SecureZero.wipe(&plaintext) }
                try io.write(plaintext)
            }) { return }
            let service = try await storeOptions.open()
            var result = try await service.decrypt(ciphertext, context: context, expectedKey: key, actor: storeOptions.actorName)
            defer { SecureZero.wipe(&result.plaintext) }
            try io.write(result.plaintext)
        }
    }
}

struct ReEncrypt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "re-encrypt", abstract: "Decrypt and encrypt again under another key, or the same key's newest version.")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @Option(help: "Destination key id or alias.") var key: String
    @Option(name: .customLong("source-context"), help: "Source context key=value (repeatable).") var sourceContext: [String] = []
    @Option(name: .customLong("context"), help: "Destination context key=value (repeatable).") var destinationContext: [String] = []

    func run() async throws {
        try await guarded {
            let source = try ContextOptions.parse(sourceContext)
            let destination = try ContextOptions.parse(destinationContext)
            let ciphertext = try io.read()
            if try await storeOptions.remote({ client in
                try io.write(try await client.reEncrypt(ciphertext, to: key, sourceContext: source.pairs, destinationContext: destination.pairs).bytes)
            }) { return }
            let service = try await storeOptions.open()
            try io.write(try await service.reEncrypt(ciphertext, sourceContext: source, destinationKey: key, destinationContext: destination, actor: storeOptions.actorName).ciphertext)
        }
    }
}


struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign a message (or a pre-computed digest with --digest).")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @Option(help: "Key id or alias.") var key: String
    @Flag(help: "The input is a digest computed with the spec's hash.") var digest = false

    func run() async throws {
        try await guarded {
            let input = try io.read()
            if try await storeOptions.remote({ client in
                try io.write(try await client.sign(input, key: key, isDigest: digest).bytes)
            }) { return }
            let result = try await storeOptions.open().sign(digest ? .digest(input) : .message(input), key: key, actor: storeOptions.actorName)
            try io.write(result.signature)
        }
    }
}

/// `keyward verify`: with --key and a signature, verifies the signature; without, verifies
/// every record of the store and the audit chain.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a signature (--key, --signature-*), or with no key the whole store: every record, alias and the audit chain.")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @Option(help: "Key id or alias (signature verification).") var key: String?
    @Option(help: "Signature, base64.") var signatureBase64: String?
    @Option(help: "File holding the signature (binary).") var signatureFile: String?
    @Option(help: "Key version that signed (default: the newest).") var version: UInt32?
    @Flag(help: "The input is a digest.") var digest = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await guarded {
            if key == nil, try await storeOptions.remote({ client in
                let report = try await client.verifyStore()
                if json {
                    try JSONOutput.print(Report(keys: report.keys, versions: report.versions, aliases: report.aliases, tokens: report.tokens,
                                                auditEntries: report.auditEntries, problems: report.problems))
                } else {
                    print("checked \(report.keys) keys, \(report.versions) versions, \(report.aliases) aliases, \(report.tokens) tokens, \(report.auditEntries) audit entries")
                    for problem in report.problems { print("FAIL \(problem)") }
                }
                if !report.intact { throw CLIError(.verification, "\(report.problems.count) problem(s) found") }
                if !json { print("store intact") }
            }) { return }
            if let key, try await storeOptions.remote({ client in
                guard version == nil else { throw CLIError.versionNeedsStore }
                let signature = try DataIO.bytes(base64: signatureBase64, file: signatureFile, what: "signature")
                let valid = try await client.verify(signature, for: try io.read(), key: key, isDigest: digest)
                print(valid ? "valid" : "invalid")
                if !valid { throw CLIError(.verification, "the signature does not verify") }
            }) { return }
            let service = try await storeOptions.open()
            if let key {
                let signature = try DataIO.bytes(base64: signatureBase64, file: signatureFile, what: "signature")
                let input = try io.read()
                let valid = try await service.verify(signature, for: digest ? .digest(input) : .message(input), key: key, version: version, actor: storeOptions.actorName)
                print(valid ? "valid" : "invalid")
                if !valid { throw CLIError(.verification, "the signature does not verify") }
                return
            }
            let progress = Progress(label: "verifying keys")
            let report = try await service.verifyStore { progress.update($0) }
            progress.finish()
            if json {
                try JSONOutput.print(Report(keys: report.keys, versions: report.versions, aliases: report.aliases, tokens: report.tokens,
                                            auditEntries: report.audit.entries, problems: report.allProblems))
            } else {
                print("checked \(report.keys) keys, \(report.versions) versions, \(report.aliases) aliases, \(report.tokens) tokens, \(report.audit.entries) audit entries")
                for problem in report.allProblems { print("FAIL \(problem)") }
            }
            if !report.isIntact { throw CLIError(.verification, "\(report.allProblems.count) problem(s) found") }
            if !json { print("store intact") }
        }
    }

    struct Report: Encodable {
        let keys, versions, aliases, tokens, auditEntries: Int
        let problems: [String]
    }
}

struct MAC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mac", abstract: "Compute an HMAC tag.")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @Option(help: "Key id or alias.") var key: String

    func run() async throws {
        try await guarded {
            let message = try io.read()
            if try await storeOptions.remote({ client in try io.write(try await client.mac(message, key: key).bytes) }) { return }
            try io.write(try await storeOptions.open().mac(message, key: key, actor: storeOptions.actorName).tag)
        }
    }
}

struct VerifyMAC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify-mac", abstract: "Verify an HMAC tag in constant time.")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var io: DataIO
    @Option(help: "Key id or alias.") var key: String
    @Option(help: "Tag, base64.") var tagBase64: String?
    @Option(help: "File holding the tag (binary).") var tagFile: String?
    @Option(help: "Key version (default: the newest).") var version: UInt32?

    func run() async throws {
        try await guarded {
            let tag = try DataIO.bytes(base64: tagBase64, file: tagFile, what: "tag")
            let message = try io.read()
            var valid = false
            if try await storeOptions.remote({ client in
                guard version == nil else { throw CLIError.versionNeedsStore }
                valid = try await client.verifyMAC(tag, for: message, key: key)
            }) == false {
                valid = try await storeOptions.open().verifyMAC(tag, for: message, key: key, version: version, actor: storeOptions.actorName)
            }
            print(valid ? "valid" : "invalid")
            if !valid { throw CLIError(.verification, "the tag does not verify") }
        }
    }
}

struct DataKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data-key", abstract: "Generate a data key sealed under a key (JSON: plaintext and ciphertext, base64).")
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var context: ContextOptions
    @Option(help: "Key id or alias.") var key: String
    @Option(help: "Data key spec: AES-256-GCM or CHACHA20-POLY1305.") var spec: String = "AES-256-GCM"
    @Flag(help: "Only the sealed data key, no plaintext.") var noPlaintext = false

    func run() async throws {
        try await guarded {
            let dataSpec = try KeySpec(named: spec)
            let context = try context.context()
            if try await storeOptions.remote({ client in
                if noPlaintext {
                    let sealed = try await client.generateSealedDataKey(key: key, context: context.pairs, spec: dataSpec.rawValue)
                    try Self.print(keyID: sealed.keyID, version: sealed.version, ciphertext: sealed.bytes)
                } else {
                    let dataKey = try await client.generateDataKey(key: key, context: context.pairs, spec: dataSpec.rawValue)
                    try Self.print(keyID: dataKey.keyID, version: dataKey.version, ciphertext: dataKey.ciphertext, plaintext: Self.base64(dataKey.plaintext))
                }
            }) { return }
            let service = try await storeOptions.open()
            if noPlaintext {
                let sealed = try await service.generateDataKeyWithoutPlaintext(key: key, spec: dataSpec, context: context, actor: storeOptions.actorName)
                try Self.print(keyID: sealed.keyID.description, version: Int(sealed.version), ciphertext: sealed.ciphertext)
            } else {
                let dataKey = try await service.generateDataKey(key: key, spec: dataSpec, context: context, actor: storeOptions.actorName)
                try Self.print(keyID: dataKey.keyID.description, version: Int(dataKey.version), ciphertext: dataKey.ciphertext, plaintext: Self.base64(dataKey.plaintext))
            }
        }
    }

    /// The command's JSON: key id, version, the sealed data key and, when given, its plaintext (base64).
    private static func print(keyID: String, version: Int, ciphertext: [UInt8], plaintext: String? = nil) throws {
        var fields = ["keyId": keyID, "version": String(version), "ciphertext": Data(ciphertext).base64EncodedString()]
        fields["plaintext"] = plaintext
        try JSONOutput.print(fields)
    }

    /// A data key's bytes in base64, for the command's output (its whole purpose is to hand them over).
    private static func base64(_ secret: borrowing SecretBytes) -> String {
        secret.withSecretBytes(InsecureSecretAccess.token) { Data($0).base64EncodedString() }
    }
}

struct RandomBytes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "random", abstract: "Random bytes from the system's source (1 to 1024).")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "How many bytes.") var count: Int = 32
    @Option(name: .customLong("out"), help: "Write to this file.") var output: String?
    @Flag(help: "Base64 output.") var base64 = false

    func run() async throws {
        try await guarded {
            var bytes: [UInt8] = []
            if try await storeOptions.remote({ client in bytes = try await client.random(count: count) }) == false {
                bytes = try await storeOptions.open().random(count: count, actor: storeOptions.actorName)
            }
            try DataIO.write(base64 ? Data((Data(bytes).base64EncodedString() + "\n").utf8) : Data(bytes), to: output)
        }
    }
}

struct PublicKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "public-key", abstract: "Print a key's public key (PEM, or raw base64 for post-quantum keys).")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "Key id or alias.") var key: String
    @Option(help: "Version (default: the newest).") var version: UInt32?
    @Flag(help: "DER (or raw) bytes instead of text.") var der = false
    @Option(name: .customLong("out"), help: "Write to this file.") var output: String?

    func run() async throws {
        try await guarded {
            if try await storeOptions.remote({ client in
                let publicKey = try await client.publicKeyDetails(key, version: version.map(Int.init))
                try write(publicKey.bytes, pem: publicKey.pem)
            }) { return }
            let publicKey = try await storeOptions.open().publicKey(key: key, version: version, actor: storeOptions.actorName)
            try write(publicKey.representation, pem: publicKey.pem)
        }
    }

    /// The DER (or raw) bytes with --der; else the PEM, or the raw bytes in base64 for a spec without one.
    private func write(_ bytes: [UInt8], pem: String?) throws {
        if der { return try DataIO.write(Data(bytes), to: output) }
        try DataIO.write(Data((pem ?? Data(bytes).base64EncodedString() + "\n").utf8), to: output)
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Check or read the audit log.", subcommands: [VerifyChain.self, Tail.self, Anchor.self, Export.self, Signer.self, Prune.self])

    struct VerifyChain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Check the hash chain and MAC of every audit entry, and anchors recorded elsewhere.",
            discussion: "With --anchors FILE (lines from `keyward audit anchor` or the server's audit.anchor output, other lines ignored), the log must still hold every anchored entry with its hash: deleting the newest entries or rolling the store back to an older copy is caught.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "A file of audit anchors to check the log against.") var anchors: String?
        @Option(name: .customLong("segment"), help: "An exported audit segment to check offline, without the store (repeat, oldest first, to check that they follow each other).")
        var segments: [String] = []
        @Option(help: "With --segment: the store's audit signing public key (PEM, from `keyward audit signer`), which every segment must be signed by.")
        var signer: String?
        @Flag(help: "With --segment: the first segment must start at the log's first entry.") var fromStart = false

        func run() async throws {
            try await guarded {
                if !segments.isEmpty {
                    try Self.verifySegments(segments, signer: signer, fromStart: fromStart)
                    return
                }
                if anchors == nil, try await storeOptions.remote({ client in
                    let report = try await client.verifyAudit()
                    let waiting = report.unchained ?? 0
                    print("checked \(report.entries) audit entries" + (waiting > 0 ? ", and \(waiting) waiting in the intake for the sequencer" : ""))
                    for problem in report.problems { print("FAIL \(problem)") }
                    if !report.intact { throw CLIError(.verification, "the audit log was tampered with") }
                    print("audit chain intact")
                }) { return }
                let service = try await storeOptions.open()
                let report = try await service.verifyAudit()
                print("checked \(report.entries) audit entries" + (report.unchained > 0 ? ", and \(report.unchained) waiting in the intake for the sequencer" : ""))
                for problem in report.problems { print("FAIL \(problem)") }
                var anchorProblems: [String] = []
                if let anchors {
                    guard let data = FileManager.default.contents(atPath: anchors) else { throw CLIError(.failure, "cannot read \(anchors)") }
                    let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { AuditAnchor(line: String($0)) }
                    guard !lines.isEmpty else { throw CLIError(.failure, "\(anchors) holds no audit anchor lines") }
                    anchorProblems = try await service.checkAuditAnchors(lines)
                    for problem in anchorProblems { print("FAIL \(problem)") }
                    if anchorProblems.isEmpty { print("\(lines.count) anchors hold") }
                }
                if !report.isIntact || !anchorProblems.isEmpty { throw CLIError(.verification, "the audit log was tampered with") }
                print("audit chain intact")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write audit entries to a segment file signed by the store's audit signing key.",
            discussion: "Entries after --after (0: from the first) through --through (default: the newest, at most 100,000). Check it anywhere with `keyward audit verify --segment FILE --signer PEM`; the next segment starts after this one's last entry.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Export the entries after this sequence number.") var after: Int64 = 0
        @Option(help: "The last entry to export.") var through: Int64?
        @Option(name: .customLong("out"), help: "The segment file to write (created 0600).") var output: String
        func run() async throws {
            try await guarded {
                func save(_ bytes: [UInt8], first: Int64, last: Int64, entries: Int, signer: String) throws {
                    try Identity.writeAtomically(Data(bytes), to: output, mode: 0o600)
                    print("wrote \(output): audit #\(first) to #\(last) (\(entries) entries), signed by key \(signer)")
                }
                if try await storeOptions.remote({ client in
                    let segment = try await client.exportAuditSegment(after: after, through: through)
                    try save(segment.segment, first: segment.first, last: segment.last, entries: segment.entries, signer: segment.signerKeyId)
                }) { return }
                let segment = try await storeOptions.open().exportAuditSegment(after: after, through: through, actor: storeOptions.actorName)
                try save(segment.bytes, first: segment.header.first, last: segment.header.last, entries: segment.entries.count,
                         signer: segment.header.signerKeyID.description)
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive audit entries older than a number of days as signed segment files, then remove them from the store.",
            discussion: "The entries are verified first and written to --archive (one file per 100,000 entries, created 0600, never overwritten); a signed checkpoint then stands for them, so `keyward audit verify` still checks the kept log, and `keyward audit verify --segment` checks the archive. `keyward serve` does this hourly with audit.retentionDays and audit.archiveDirectory.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Remove entries older than this many days (the newest entry always stays).") var olderThanDays: Double
        @Option(help: "The directory the segment files are written to (it must exist).") var archive: String
        func validate() throws {
            guard olderThanDays >= 0, olderThanDays.isFinite else { throw ValidationError("--older-than-days is a number of days, 0 or more") }
        }
        func run() async throws {
            try await guarded {
                let cutoff = Date().addingTimeInterval(-olderThanDays * 86_400)
                let result = try await storeOptions.open().pruneAudit(olderThan: cutoff, archive: archive, actor: storeOptions.actorName)
                guard let through = result.through else { print("no audit entry is older than \(olderThanDays) days; nothing removed"); return }
                for segment in result.segments { print("archived \(segment)") }
                print("removed audit #\(through) and before (\(result.entries) entries); the log now starts at #\(through + 1)")
            }
        }
    }

    struct Signer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the public key that signs this store's audit segments (created on first use).")
        @OptionGroup var storeOptions: StoreOptions
        @Option(name: .customLong("out"), help: "Public key file to write (PEM).") var output: String
        func run() async throws {
            try await guarded {
                func save(_ pem: String) throws {
                    try Identity.writeAtomically(Data(pem.utf8), to: output, mode: 0o644)
                    print("wrote \(output): the public key of \(KeyService.auditSignerAlias)")
                }
                if try await storeOptions.remote({ client in try save(try await client.auditSigner()) }) { return }
                let publicKey = try await storeOptions.open().auditSigner(actor: storeOptions.actorName)
                guard let pem = publicKey.pem else { throw CLIError(.failure, "the audit signing key has no PEM form") }
                try save(pem)
            }
        }
    }

    struct Anchor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the anchor of the newest audit entry, to keep outside the store.",
            discussion: "Run it at an interval (cron) and keep the lines on another system; `keyward audit verify --anchors FILE` checks them. `keyward serve` writes them itself with the audit.anchor setting.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Append the line to this file (created 0600) instead of printing it.") var append: String?
        func run() async throws {
            try await guarded {
                guard let anchor = try await storeOptions.open().auditAnchor() else { throw CLIError(.failure, "the audit log is empty; nothing to anchor") }
                guard let append else { print(anchor.line); return }
                try AuditAnchorFile.append(anchor.line, to: append)
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the newest audit entries.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(name: [.customShort("n"), .long], help: "How many.") var count: Int = 20
        @Flag(help: "Print JSON lines.") var json = false
        func run() async throws {
            try await guarded {
                if try await storeOptions.remote({ client in
                    guard (1...1000).contains(count) else { throw CLIError(.usage, "with --server, -n is 1 to 1000") }
                    for entry in try await client.auditTail(count).suffix(count) {
                        if json {
                            let encoder = JSONEncoder()
                            encoder.outputFormatting = [.sortedKeys]
                            encoder.dateEncodingStrategy = .iso8601
                            print(String(decoding: try encoder.encode(entry), as: UTF8.self))
                        } else {
                            let key = entry.keyId.map { " key=\($0)" } ?? ""
                            let version = entry.version.map { " v\($0)" } ?? ""
                            print(PrintableText.escaped("#\(entry.sequence) \(ISO8601DateFormatter().string(from: entry.time)) \(entry.actor) \(entry.operation)\(key)\(version) \(entry.outcome)\(entry.detail.map { " (\($0))" } ?? "")"))
                        }
                    }
                }) { return }
                for (sequence, event) in try await storeOptions.open().auditTail(count) {
                    if json {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys]
                        encoder.dateEncodingStrategy = .iso8601
                        print(String(decoding: try encoder.encode(event), as: UTF8.self))
                    } else {
                        let key = event.keyID.map { " key=\($0)" } ?? ""
                        let version = event.version.map { " v\($0)" } ?? ""
                        print(PrintableText.escaped("#\(sequence) \(ISO8601DateFormatter().string(from: event.time)) \(event.actor) \(event.operation)\(key)\(version) \(event.outcome)\(event.detail.map { " (\($0))" } ?? "")"))
                    }
                }
            }
        }
    }
}

extension AuditCommand.VerifyChain {
    /// Checks exported segments offline: each intact and signed (by `signer` when given), and
    /// each following the one before.
    static func verifySegments(_ paths: [String], signer: String?, fromStart: Bool) throws {
        var segments: [AuditSegment] = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(.failure, "cannot read \(path)") }
            do {
                segments.append(try AuditSegment(parsing: [UInt8](data)))
            } catch {
                print("FAIL \(path): \(error.description)")
                throw CLIError(.verification, "\(path) is not an intact audit segment")
            }
        }
        var pinned: PublicKey?
        if let signer {
            guard let pem = FileManager.default.contents(atPath: signer) else { throw CLIError(.failure, "cannot read \(signer)") }
            do { pinned = try PublicKey(spec: .ed25519, pem: String(decoding: pem, as: UTF8.self)) } catch {
                throw CLIError(.failure, "\(signer) is not an Ed25519 public key in PEM")
            }
        }
        let problems = AuditSegment.problems(segments, signer: pinned, fromStart: fromStart)
        let entries = segments.reduce(0) { $0 + $1.entries.count }
        print("checked \(segments.count) segments, \(entries) audit entries" + (pinned == nil ? " (signer not pinned: pass --signer to require this store's key)" : ""))
        for problem in problems { print("FAIL \(problem)") }
        if !problems.isEmpty { throw CLIError(.verification, "\(problems.count) problem(s) in the audit segments") }
        print("audit segments intact: #\(segments.first?.header.first ?? 0) to #\(segments.last?.header.last ?? 0)")
    }
}
