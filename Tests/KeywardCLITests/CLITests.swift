import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage
import Testing

/// Runs the built `keyward` binary the way a user would, in a temporary directory.
struct CLI {
    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/keyward").path

    let directory: URL
    var environment: [String: String]

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyward-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let passphraseFile = directory.appendingPathComponent("passphrase").path
        FileManager.default.createFile(atPath: passphraseFile, contents: Data("a long test passphrase\n".utf8), attributes: [.posixPermissions: 0o600])
        environment = [
            "PATH": "/usr/bin:/bin",
            "KEYWARD_STORE": directory.appendingPathComponent("store.db").path,
            "KEYWARD_PASSPHRASE_FILE": passphraseFile,
        ]
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
        let data: Data
    }

    @discardableResult
    /// A file in the test's directory.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs a Python `script` with `arguments` (the tests edit store files with its sqlite3, as
    /// someone holding only the file would) and returns its exit status.
    static func python(_ script: String, _ arguments: [String]) throws -> Int32 {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script] + arguments
        try python.run()
        python.waitUntilExit()
        return python.terminationStatus
    }

    func run(_ arguments: [String], stdin: Data = Data(), environment extra: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = environment.merging(extra) { $1 }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // A watchdog: a child that has not finished in two minutes is killed, so a stuck
        // command fails its test instead of hanging the run.
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: data, as: UTF8.self),
                      stderr: String(decoding: errorData, as: UTF8.self), data: data)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite("keyward CLI", .serialized)
struct CLITests {
    @Test("a session: init, create, encrypt, decrypt, sign, verify, audit, verify the store")
    func session() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["init"]).status == 5, "a second init must refuse")
        let created = try cli.run(["key", "create", "--alias", "app", "--tag", "team=pay", "--json"])
        #expect(created.status == 0 && created.stdout.contains("\"AES-256-GCM\""))
        let sealed = try cli.run(["encrypt", "--key", "app", "--context", "tenant=a", "--base64-out"], stdin: Data("hello".utf8))
        #expect(sealed.status == 0)
        let opened = try cli.run(["decrypt", "--base64-in", "--context", "tenant=a"], stdin: sealed.data)
        #expect(opened.status == 0 && opened.stdout == "hello")
        let wrongContext = try cli.run(["decrypt", "--base64-in", "--context", "tenant=b"], stdin: sealed.data)
        #expect(wrongContext.status != 0 && wrongContext.stderr.contains("invalid ciphertext") && wrongContext.stdout.isEmpty)
        let twice = try cli.run(["encrypt", "--key", "app", "--context", "tenant=a", "--context", "tenant=b", "--base64-out"], stdin: Data("hello".utf8))
        #expect(twice.status != 0 && twice.stderr.contains("given twice") && twice.stdout.isEmpty, "\(twice.stderr)")
        #expect(try cli.run(["key", "create", "--spec", "ECDSA-P256-SHA256", "--alias", "signer"]).status == 0)
        let signature = try cli.run(["sign", "--key", "signer", "--base64-out"], stdin: Data("release".utf8))
        let signatureText = signature.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["verify", "--key", "signer", "--signature-base64", signatureText], stdin: Data("release".utf8)).status == 0)
        #expect(try cli.run(["verify", "--key", "signer", "--signature-base64", signatureText], stdin: Data("forged".utf8)).status == 7)
        let tail = try cli.run(["audit", "tail", "-n", "3"])
        #expect(tail.status == 0 && tail.stdout.contains("sign") && tail.stdout.contains("verify"))
        #expect(!tail.stdout.contains("hello"))
        #expect(try cli.run(["audit", "verify"]).status == 0)
        let verified = try cli.run(["verify"])
        #expect(verified.status == 0 && verified.stdout.contains("store intact"))
    }

    @Test("store migrate copies a store to a new location that opens with the same passphrase and verifies; a non-empty target is refused; a database password in a URL is refused; an unreachable database is one line of error, naming the cause")
    func storeMigrate() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "moved"]).status == 0)
        let sealed = try cli.run(["encrypt", "--key", "moved", "--base64-out"], stdin: Data("carried".utf8))
        let copy = cli.directory.appendingPathComponent("copy.db").path
        let migrated = try cli.run(["store", "migrate", "--from", cli.environment["KEYWARD_STORE"]!, "--to", copy])
        #expect(migrated.status == 0 && migrated.stdout.contains("store intact"), "\(migrated.stderr)")
        let opened = try cli.run(["decrypt", "--base64-in", "--store", copy], stdin: sealed.data)
        #expect(opened.status == 0 && opened.stdout == "carried")
        #expect(try cli.run(["verify", "--store", copy]).stdout.contains("store intact"))
        let again = try cli.run(["store", "migrate", "--from", cli.environment["KEYWARD_STORE"]!, "--to", copy])
        #expect(again.status == 5 && again.stderr.contains("already exists"))
        // A source whose audit log alone was edited is not copied; verify names the changed entry
        // first (the records' problems that follow are what replaying it gives).
        let damaged = cli.directory.appendingPathComponent("damaged.db").path
        try FileManager.default.copyItem(atPath: copy, toPath: damaged)
        let edit = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            row = db.execute("SELECT sequence, body FROM audit WHERE instr(body, CAST('moved' AS BLOB)) > 0 LIMIT 1").fetchone()
            db.execute("UPDATE audit SET body = ? WHERE sequence = ?", (row[1].replace(b'moved', b'moveD'), row[0]))
            db.commit()
            """
        #expect(try CLI.python(edit, [damaged]) == 0)
        let refused = try cli.run(["store", "migrate", "--from", damaged, "--to", cli.directory.appendingPathComponent("never.db").path])
        #expect(refused.status != 0 && refused.stderr.contains("problem(s); run keyward verify"), "\(refused.stderr)")
        let named = try cli.run(["verify", "--store", damaged])
        let failures = named.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(named.status == 7 && failures.first?.contains("its content was changed") == true, "\(named.stdout)")
        #expect(!FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("never.db").path))
        let secret = try cli.run(["key", "list", "--store", "postgres://keyward:hunter2@db.example/kms"])
        #expect(secret.status != 0 && secret.stderr.contains("KEYWARD_DATABASE_PASSWORD") && !secret.stderr.contains("hunter2"))
        // A database nobody answers on: one line saying why, at once, not the driver's log of
        // each connection attempt (thirteen lines of PSQLError) and a five-second wait.
        let unreachable = try cli.run(["store", "migrate", "--from", cli.environment["KEYWARD_STORE"]!, "--to", "postgres://keyward@127.0.0.1:1/kms"])
        let lines = unreachable.stderr.split(separator: "\n")
        #expect(unreachable.status != 0 && lines.count == 1 && lines.first?.contains("Connection refused") == true, "\(unreachable.stderr)")
    }

    @Test("with --server and KEYWARD_TOKEN the same commands work against a running server: keys, encrypt, decrypt, sign, verify, random, tokens, verify, audit (with signed segments), maintain, KEK rotation; a token without the grants is refused; a command with no remote form refuses rather than use the local store")
    func remoteAdministration() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let root = "remote-root-token-" + UUID().uuidString
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CLI.binary)
        server.arguments = ["serve", "--dev", "--dev-dir", cli.directory.appendingPathComponent("dev").path, "--insecure-http", "--port", "0", "--dev-root-token", root]
        server.currentDirectoryURL = cli.directory
        // The recovery site's recipient is pinned in the server's configuration; another is not.
        for name in ["site", "other"] {
            let made = try cli.run(["backup", "keygen", "--spec", "X25519", "--identity", cli.path("\(name).identity"), "--public-out", cli.path("\(name).pub")])
            #expect(made.status == 0, "\(made.stderr)")
        }
        server.environment = ["PATH": "/usr/bin:/bin", "KEYWARD_BACKUP_RECIPIENTS": cli.path("site.pub")]
        let output = Pipe()
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("listening on"), Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let line = try #require(text.split(separator: "\n").first { $0.contains("listening on") }, "the server did not start: \(text)")
        let url = String(line.split(separator: " ").last!)
        let admin = ["KEYWARD_TOKEN": root]

        let created = try cli.run(["token", "create", "--server", url, "--principal", "remote-app", "--allow", "encrypt:*", "--json"], environment: admin)
        #expect(created.status == 0, "\(created.stderr)")
        let issued = try #require(try JSONSerialization.jsonObject(with: created.data) as? [String: String])
        let listed = try cli.run(["token", "list", "--server", url], environment: admin)
        #expect(listed.status == 0 && listed.stdout.contains("remote-app") && !listed.stdout.contains(issued["token"] ?? "?"))
        #expect(try cli.run(["verify", "--server", url], environment: admin).stdout.contains("store intact"))
        #expect(try cli.run(["audit", "verify", "--server", url], environment: admin).stdout.contains("audit chain intact"))
        // A signed segment of the server's log and its signer, fetched over the API, verify here with no store.
        let segmentFile = try cli.run(["audit", "export", "--server", url, "--out", cli.path("remote.seg")], environment: admin)
        #expect(segmentFile.status == 0 && segmentFile.stdout.contains("wrote"), "\(segmentFile.stderr)")
        let signerFile = try cli.run(["audit", "signer", "--server", url, "--out", cli.path("signer.pem")], environment: admin)
        #expect(signerFile.status == 0, "\(signerFile.stderr)")
        let offline = try cli.run(["audit", "verify", "--segment", cli.path("remote.seg"), "--signer", cli.path("signer.pem"), "--from-start"])
        #expect(offline.status == 0, "\(offline.stdout) \(offline.stderr)")
        let tail = try cli.run(["audit", "tail", "-n", "3", "--server", url], environment: admin)
        #expect(tail.status == 0 && tail.stdout.split(separator: "\n").count == 3, "\(tail.stdout)")
        #expect(try cli.run(["maintain", "--server", url], environment: admin).status == 0)
        let rotated = try cli.run(["kek", "rotate", "--server", url], environment: admin)
        #expect(rotated.status == 0 && rotated.stdout.contains("sealed under KEK"), "\(rotated.stderr)")
        #expect(try cli.run(["verify", "--server", url], environment: admin).stdout.contains("store intact"))

        // A backup over the API, to the pinned recipient only; it opens with the site's identity
        // and the server store's signer.
        let backedUp = try cli.run(["backup", "create", "--server", url, "--recipient", cli.path("site.pub"), "--out", cli.path("remote.bundle")], environment: admin)
        #expect(backedUp.status == 0, "\(backedUp.stderr)")
        let elsewhere = try cli.run(["backup", "create", "--server", url, "--recipient", cli.path("other.pub"), "--out", cli.path("stolen.bundle")], environment: admin)
        #expect(elsewhere.status != 0 && elsewhere.stderr.contains("backup.recipients") && !FileManager.default.fileExists(atPath: cli.path("stolen.bundle")),
                "\(elsewhere.stderr)")
        let dev = cli.directory.appendingPathComponent("dev")
        let signer = try cli.run(["backup", "signer", "--store", dev.appendingPathComponent("keyward.db").path,
                                  "--key-file", dev.appendingPathComponent("root.key").path, "--out", cli.path("signer.pem")])
        #expect(signer.status == 0, "\(signer.stderr)")
        let opened = try cli.run(["backup", "verify", "--in", cli.path("remote.bundle"), "--identity", cli.path("site.identity"), "--signer", cli.path("signer.pem")])
        #expect(opened.status == 0, "\(opened.stderr)")
        // The dev server has no restore identity: a restore over the API is refused, saying why.
        let restore = try cli.run(["restore", "--server", url, "--in", cli.path("remote.bundle")], environment: admin)
        #expect(restore.status != 0 && restore.stderr.contains("backup.identity"), "\(restore.stderr)")

        // The key and data commands work against the server too: the server's keys, its audit log.
        let made = try cli.run(["key", "create", "--alias", "remote/app", "--tag", "team=pay", "--server", url, "--json"], environment: admin)
        #expect(made.status == 0 && made.stdout.contains("\"remote/app\"") && made.stdout.contains("\"metadata\""), "\(made.stderr)")
        let retagged = try cli.run(["key", "update", "remote/app", "--set-tag", "env=prod", "--remove-tag", "absent", "--description", "over the API",
                                    "--server", url, "--json"], environment: admin)
        #expect(retagged.status == 0 && retagged.stdout.contains("\"env\" : \"prod\"") && retagged.stdout.contains("\"team\" : \"pay\"")
                && retagged.stdout.contains("over the API"), "\(retagged.stdout) \(retagged.stderr)")
        let sealed = try cli.run(["encrypt", "--key", "remote/app", "--context", "order=42", "--base64-out", "--server", url],
                                 stdin: Data("over the wire".utf8), environment: admin)
        #expect(sealed.status == 0, "\(sealed.stderr)")
        let unsealed = try cli.run(["decrypt", "--context", "order=42", "--base64-in", "--server", url], stdin: sealed.data, environment: admin)
        #expect(unsealed.status == 0 && unsealed.stdout == "over the wire", "\(unsealed.stderr)")
        let otherContext = try cli.run(["decrypt", "--context", "order=43", "--base64-in", "--server", url], stdin: sealed.data, environment: admin)
        #expect(otherContext.status == 1 && otherContext.stderr.contains("invalid ciphertext"), "\(otherContext.stderr)")
        #expect(try cli.run(["key", "create", "--spec", "ED25519", "--alias", "remote/sign", "--server", url], environment: admin).status == 0)
        let signed = try cli.run(["sign", "--key", "remote/sign", "--base64-out", "--server", url], stdin: Data("release 1.0".utf8), environment: admin)
        let signature = signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let checked = try cli.run(["verify", "--key", "remote/sign", "--signature-base64", signature, "--server", url], stdin: Data("release 1.0".utf8), environment: admin)
        #expect(checked.status == 0 && checked.stdout.contains("valid"), "\(checked.stderr)")
        let pinned = try cli.run(["verify", "--key", "remote/sign", "--version", "1", "--signature-base64", signature, "--server", url],
                                 stdin: Data("release 1.0".utf8), environment: admin)
        #expect(pinned.status == 2 && pinned.stderr.contains("--version is for a local store"), "\(pinned.stderr)")
        let forged = try cli.run(["verify", "--key", "remote/sign", "--signature-base64", signature, "--server", url], stdin: Data("release 6.6".utf8), environment: admin)
        #expect(forged.status == 7 && forged.stdout.contains("invalid"))
        #expect(try cli.run(["key", "rotate", "remote/app", "--server", url], environment: admin).stdout.contains("now at version 2"))
        #expect(try cli.run(["key", "disable", "remote/app", "--server", url], environment: admin).stdout.contains("is disabled"))
        let whileDisabled = try cli.run(["encrypt", "--key", "remote/app", "--server", url], stdin: Data("x".utf8), environment: admin)
        #expect(whileDisabled.status != 0 && whileDisabled.stderr.contains("disabled"), "\(whileDisabled.stderr)")
        let described = try cli.run(["key", "describe", "remote/app", "--server", url], environment: admin)
        #expect(described.stdout.contains("state:           disabled") && described.stdout.contains("tags:            env=prod, team=pay"), "\(described.stdout)")
        let remoteKeys = try cli.run(["key", "list", "--server", url], environment: admin)
        #expect(remoteKeys.stdout.contains("remote/app") && remoteKeys.stdout.contains("remote/sign"), "\(remoteKeys.stdout)")
        #expect(try cli.run(["random", "16", "--base64", "--server", url], environment: admin).stdout.count == 25)
        let aliased = try cli.run(["key", "alias", "remote/signer", "remote/sign", "--server", url], environment: admin)
        #expect(aliased.status == 0 && aliased.stdout == "alias remote/signer now names remote/sign\n", "\(aliased.stdout)")
        let pem = try cli.run(["public-key", "remote/signer", "--server", url], environment: admin)
        #expect(pem.status == 0 && pem.stdout.hasPrefix("-----BEGIN PUBLIC KEY-----"), "\(pem.stderr)")
        #expect(try cli.run(["key", "alias", "remote/signer", "--delete", "--server", url], environment: admin).stdout == "alias remote/signer removed\n")
        #expect(try cli.run(["public-key", "remote/signer", "--server", url], environment: admin).status == 3)
        #expect(try cli.run(["key", "enable", "remote/app", "--server", url], environment: admin).stdout.contains("is active"))
        let dataKey = try cli.run(["data-key", "--key", "remote/app", "--server", url], environment: admin)
        let sealedKey = try #require(try JSONSerialization.jsonObject(with: dataKey.data) as? [String: String], "\(dataKey.stderr)")
        #expect(sealedKey["version"] == "2" && Data(base64Encoded: sealedKey["plaintext"] ?? "")?.count == 32)
        let reopened = try cli.run(["decrypt", "--base64-in", "--server", url], stdin: Data((sealedKey["ciphertext"] ?? "").utf8), environment: admin)
        #expect(reopened.status == 0 && reopened.data.base64EncodedString() == sealedKey["plaintext"], "\(reopened.stderr)")
        #expect(try cli.run(["audit", "tail", "-n", "30", "--server", url], environment: admin).stdout.contains("disable"))

        // Attack on the operator's intent: a command with no remote form, given a server, must not
        // act on whatever store is local. It refuses (exit 2), and the local store is untouched.
        #expect(try cli.run(["init"]).status == 0)
        // Options only a store honours are refused with a server, not ignored.
        let actor = try cli.run(["encrypt", "--key", "remote/app", "--actor", "alice", "--server", url], stdin: Data("x".utf8), environment: admin)
        #expect(actor.status == 2 && actor.stderr.contains("--actor is for a local store"), "\(actor.stderr)")
        let both = try cli.run(["key", "list", "--store", cli.path("keyward.db"), "--server", url], environment: admin)
        #expect(both.status == 2 && both.stderr.contains("--store is for a local store"), "\(both.stderr)")
        let exported = try cli.run(["key", "export", "prod-key", "--server", url], environment: admin)
        #expect(exported.status == 2 && exported.stderr.contains("local store only") && exported.stderr.contains("drop --server"), "\(exported.stderr)")
        let fromEnvironment = try cli.run(["init", "--store", cli.path("elsewhere.db")], environment: ["KEYWARD_ADDR": url])
        #expect(fromEnvironment.status == 2 && fromEnvironment.stderr.contains("unset KEYWARD_ADDR"), "\(fromEnvironment.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.path("elsewhere.db")))
        #expect(try cli.run(["audit", "tail", "-n", "1"]).stdout.contains("init"), "the local store saw nothing after its creation")
        #expect(!(try cli.run(["key", "list"]).stdout.contains("remote/")), "the server's keys are not in the local store")

        // The new token may encrypt but not administer; no token at all fails (exit 1), naming KEYWARD_TOKEN.
        let refused = try cli.run(["token", "list", "--server", url], environment: ["KEYWARD_TOKEN": issued["token"] ?? ""])
        #expect(refused.status == 5 && refused.stderr.contains("403"), "\(refused.stderr)")
        let missing = try cli.run(["verify", "--server", url])
        #expect(missing.status == 1 && missing.stderr.contains("KEYWARD_TOKEN"))
        let policy = try cli.run(["token", "policy", issued["id"] ?? "", "--allow", "decrypt:*", "--server", url], environment: admin)
        #expect(policy.status == 0 && policy.stdout.contains("1 rule(s): decrypt:*"), "\(policy.stderr)")
        let rules = try cli.run(["token", "list", "--json", "--server", url], environment: admin).stdout
        #expect(rules.contains("decrypt:*"), "\(rules)")
        #expect(try cli.run(["token", "policy", issued["id"] ?? "", "--server", url], environment: admin).status != 0)
        #expect(try cli.run(["token", "revoke", issued["id"] ?? "", "--server", url], environment: admin).stdout.contains("revoked"))
        let revoked = try cli.run(["token", "list", "--server", url], environment: ["KEYWARD_TOKEN": issued["token"] ?? ""])
        #expect(revoked.status == 5 && revoked.stderr.contains("401"))
    }

    @Test("attack: a server's key description, tags, aliases, principal names and audit entries carrying terminal escape sequences are printed escaped, never sent to the terminal")
    func serverTextIsEscapedForTheTerminal() throws {
        let cli = try CLI()
        defer { cli.remove() }
        // A server answering every key and token read with text full of control characters
        // (ESC, BEL, a carriage return that would overwrite the line).
        let script = """
            import http.server, json, sys
            evil = "\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\r"
            key = {"id": "5394a066-078d-4130-84c4-27a17ac27347", "spec": "AES-256-GCM", "purpose": "encrypt", "state": "active",
                   "description": "d" + evil, "aliases": ["a" + evil], "tags": {"t" + evil: "v" + evil},
                   "createdAt": "2026-12-06T19:47:18Z", "stateChangedAt": "2026-12-06T19:47:18Z", "currentVersion": 1,
                   "minDecryptionVersion": 1, "exportable": False, "backupAllowed": True, "origin": "keyward"}
            token = {"id": "5b3ebb68-f707-4714-8204-98ad301ab3da", "principal": "p" + evil, "rules": ["encrypt:alias=x" + evil],
                     "createdAt": "2026-12-06T19:58:19Z"}
            stuck = len(sys.argv) > 1
            entry = {"sequence": 1, "time": "2026-12-06T19:47:11Z", "actor": "a" + evil, "operation": "describe", "outcome": "refused",
                     "detail": "d" + evil}
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = json.dumps({"keys": [key]} if self.path.startswith("/v1/keys?") or self.path == "/v1/keys"
                                      else dict({"tokens": [token]}, **({"nextCursor": token["id"]} if stuck else {}))
                                      if self.path.startswith("/v1/admin/tokens")
                                      else {"entries": [entry]} if self.path.startswith("/v1/admin/audit?tail=") else key).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """
        var servers: [Process] = []
        // SIGKILL: the test runner's children may inherit a blocked SIGTERM.
        defer { for server in servers { kill(server.processIdentifier, SIGKILL) } }
        func serve(_ arguments: [String] = []) throws -> [String: String] {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            server.arguments = ["python3", "-c", script] + arguments
            let port = Pipe()
            server.standardOutput = port
            server.standardError = FileHandle.nullDevice
            try server.run()
            servers.append(server)
            let portText = String(decoding: port.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return ["KEYWARD_ADDR": "http://127.0.0.1:\(portText)", "KEYWARD_TOKEN": "kw_test"]
        }
        let remote = try serve()
        for command in [["key", "describe", "5394a066-078d-4130-84c4-27a17ac27347"], ["key", "list"], ["token", "list"], ["audit", "tail", "-n", "1"]] {
            let output = try cli.run(command, environment: remote)
            #expect(output.status == 0, "\(command): \(output.stderr)")
            let controls = output.stdout.unicodeScalars.filter { $0.properties.generalCategory == .control && $0 != "\n" }
            #expect(controls.isEmpty, "\(command) printed control characters: \(controls.map { $0.value })")
            #expect(output.stdout.contains("\\u{1B}"), "\(command) did not show the escape: \(output.stdout)")
        }
        // A server whose token paging never moves on: the CLI stops with an error (it looped forever).
        let stuck = try cli.run(["token", "list"], environment: try serve(["stuck"]))
        #expect(stuck.status == 1 && stuck.stderr.contains("did not advance"), "\(stuck.stderr)")
    }

    @Test("a command talking to a server (plaintexts and data keys pass through it) runs with core dumps off, as with a local store")
    func remoteCommandsDisableCoreDumps() async throws {
        let cli = try CLI()
        defer { cli.remove() }
        // A server that accepts and never answers, so the command stays in its call.
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", "import socket,sys,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(4)\nprint(s.getsockname()[1], flush=True)\nc=s.accept()\ntime.sleep(60)"]
        let port = Pipe()
        listener.standardOutput = port
        try listener.run()
        defer { listener.terminate() }
        let portText = String(decoding: port.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let command = Process()
        command.executableURL = URL(fileURLWithPath: CLI.binary)
        command.arguments = ["decrypt", "--base64-in", "--server", "http://127.0.0.1:\(portText)"]
        command.environment = cli.environment.merging(["KEYWARD_TOKEN": "kw_test"]) { $1 }
        let input = Pipe()
        command.standardInput = input
        command.standardOutput = FileHandle.nullDevice
        command.standardError = FileHandle.nullDevice
        try command.run()
        defer { if command.isRunning { command.terminate() } }
        input.fileHandleForWriting.write(Data("AAAA".utf8))
        try input.fileHandleForWriting.close()
        // Once it is connected, read its core-file limit.
        // Once it has started, read its core-file limits (soft and hard) until both are 0, for
        // up to 10 s (it blocks in its call meanwhile; the test fails if they never are).
        var limit = ""
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(100))
            let limits = (try? String(contentsOfFile: "/proc/\(command.processIdentifier)/limits", encoding: .utf8)) ?? ""
            limit = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init) ?? ""
            if Array(limit.split(separator: " ").dropFirst(4).prefix(2)) == ["0", "0"] { break }
        }
        #expect(Array(limit.split(separator: " ").dropFirst(4).prefix(2)) == ["0", "0"], "\(limit)")
        #expect(command.isRunning, "it was still in its call")
    }

    @Test("bad input gets a message and the documented exit code, never a crash")
    func badInput() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let missing = try cli.run(["key", "list"])
        #expect(missing.status == 3 && missing.stderr.contains("keyward init"))
        #expect(try cli.run(["init"]).status == 0)
        let unknown = try cli.run(["encrypt", "--key", "nope"], stdin: Data("x".utf8))
        #expect(unknown.status == 3 && unknown.stderr.contains("no key 'nope'"))
        let wrongPassphrase = try cli.run(["key", "list"], environment: ["KEYWARD_PASSPHRASE_FILE": "/dev/null", "KEYWARD_PASSPHRASE": "nope"])
        #expect(wrongPassphrase.status != 0)
        let passphraseFile = cli.directory.appendingPathComponent("wrong").path
        FileManager.default.createFile(atPath: passphraseFile, contents: Data("wrong passphrase".utf8), attributes: [.posixPermissions: 0o600])
        let wrong = try cli.run(["key", "list"], environment: ["KEYWARD_PASSPHRASE_FILE": passphraseFile])
        #expect(wrong.status == 6 && wrong.stderr.contains("passphrase is wrong"))
        // Attack: a passphrase file others on the machine can read is refused, naming its mode,
        // as the key file is; so is a symbolic link to the right one.
        let readable = cli.directory.appendingPathComponent("readable").path
        FileManager.default.createFile(atPath: readable, contents: Data("a long test passphrase".utf8), attributes: [.posixPermissions: 0o644])
        let exposed = try cli.run(["key", "list"], environment: ["KEYWARD_PASSPHRASE_FILE": readable])
        #expect(exposed.status == 6 && exposed.stderr.contains("mode 644"), "\(exposed.stderr)")
        try FileManager.default.createSymbolicLink(atPath: cli.path("linked"), withDestinationPath: cli.environment["KEYWARD_PASSPHRASE_FILE"]!)
        let linked = try cli.run(["key", "list"], environment: ["KEYWARD_PASSPHRASE_FILE": cli.path("linked")])
        #expect(linked.status == 6 && linked.stderr.contains("symbolic link"), "\(linked.stderr)")
        #expect(try cli.run(["key", "create", "--spec", "AES-128-ECB"]).stderr.contains("unknown key spec"))
        #expect(try cli.run(["key", "create", "--spec", "ED25519", "--alias", "sig"]).status == 0)
        let purpose = try cli.run(["encrypt", "--key", "sig"], stdin: Data("x".utf8))
        #expect(purpose.status == 5 && purpose.stderr.contains("not encrypt"))
        let garbage = try cli.run(["decrypt"], stdin: Data(repeating: 0x41, count: 100))
        #expect(garbage.status == 1 && garbage.stderr.contains("invalid ciphertext"))
        let badBase64 = try cli.run(["decrypt", "--base64-in"], stdin: Data("%%%".utf8))
        #expect(badBase64.status == 1 && badBase64.stderr.contains("base64"))
        let badContext = try cli.run(["encrypt", "--key", "sig", "--context", "novalue"], stdin: Data("x".utf8))
        #expect(badContext.status != 0)
        #expect(try cli.run(["random", "5000"]).status != 0)
        // Usage errors exit with 2, as the help says, and show the usage.
        for usage in [["key", "list", "--no-such-option"], ["mac"], ["key", "frobnicate"], ["random", "many"]] {
            let refused = try cli.run(usage)
            #expect(refused.status == 2 && refused.stderr.contains("Usage:"), "\(usage): exit \(refused.status) \(refused.stderr)")
        }
        #expect(try cli.run(["--help"]).status == 0)
        #expect(try cli.run(["key", "schedule-destruction", "sig", "--days", "3"]).status != 0)
        #expect(try cli.run(["key", "export", "sig"]).status == 5)
        #expect(try cli.run(["key", "create", "--alias", "big"]).status == 0)
        let oversize = try cli.run(["encrypt", "--key", "big"], stdin: Data(repeating: 0x41, count: 5 * 1024 * 1024))
        #expect(oversize.status == 1 && oversize.stderr.contains("data key"))
        // --in and --out that cannot be used say which file and why; input that reports no size
        // (a device, a pipe) is read only up to the limit.
        let inputs: [(String, String)] = [("/nonexistent/input", "No such file or directory"), (cli.directory.path, "it is a directory"),
                                          ("/dev/zero", "holds more than 67108864 bytes")]
        for (path, reason) in inputs {
            let refused = try cli.run(["encrypt", "--key", "big", "--in", path])
            #expect(refused.status == 1 && refused.stderr.contains(path) && refused.stderr.contains(reason), "\(path): \(refused.stderr)")
        }
        let unwritable = try cli.run(["encrypt", "--key", "big", "--out", "/nonexistent/dir/out"], stdin: Data("x".utf8))
        #expect(unwritable.status == 1 && unwritable.stderr.contains("no directory /nonexistent/dir"), "\(unwritable.stderr)")
        // A file that is not a store at all: a clear error, no crash.
        let notAStore = cli.directory.appendingPathComponent("garbage.db").path
        FileManager.default.createFile(atPath: notAStore, contents: Data(repeating: 0x5A, count: 8192))
        let corrupted = try cli.run(["key", "list"], environment: ["KEYWARD_STORE": notAStore])
        #expect(corrupted.status == 1 && corrupted.stderr.hasPrefix("keyward: "))
    }

    @Test("key destroy-versions: older ciphertexts stop decrypting, newer ones decrypt, the store verifies; a version above the newest is refused")
    func destroyVersions() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app"]).status == 0)
        let old = try cli.run(["encrypt", "--key", "app", "--base64-out"], stdin: Data("old".utf8))
        #expect(try cli.run(["key", "rotate", "app"]).status == 0)
        let new = try cli.run(["encrypt", "--key", "app", "--base64-out"], stdin: Data("new".utf8))
        let destroyed = try cli.run(["key", "destroy-versions", "app", "--below", "2"])
        #expect(destroyed.status == 0 && destroyed.stdout.contains("versions below 2 destroyed"), "\(destroyed.stdout) \(destroyed.stderr)")
        let refused = try cli.run(["decrypt", "--base64-in"], stdin: old.data)
        #expect(refused.status != 0 && refused.stdout.isEmpty && refused.stderr.hasPrefix("keyward: "), "\(refused.stderr)")
        #expect(try cli.run(["decrypt", "--base64-in"], stdin: new.data).stdout == "new")
        #expect(try cli.run(["verify"]).status == 0)
        let tooFar = try cli.run(["key", "destroy-versions", "app", "--below", "3"])
        #expect(tooFar.status != 0 && tooFar.stderr.contains("minimum decryption version"), "\(tooFar.stderr)")
    }

    @Test("key update changes the description, only the tags named, the rotation period and the minimum decryption version; with nothing to change, or a bad value, it is refused and changes nothing")
    func keyUpdate() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app", "--tag", "team=pay", "--tag", "old=x"]).status == 0)
        #expect(try cli.run(["key", "rotate", "app"]).status == 0)
        let updated = try cli.run(["key", "update", "app", "--description", "orders", "--set-tag", "env=prod", "--set-tag", "team=ledger",
                                   "--remove-tag", "old", "--rotation-days", "30", "--min-decryption-version", "2", "--json"])
        #expect(updated.status == 0, "\(updated.stderr)")
        let metadata = try #require((try JSONSerialization.jsonObject(with: updated.data) as? [String: Any])?["metadata"] as? [String: Any])
        #expect(metadata["tags"] as? [String: String] == ["env": "prod", "team": "ledger"] && metadata["description"] as? String == "orders")
        #expect(metadata["rotationPeriodDays"] as? Int == 30 && metadata["minDecryptionVersion"] as? Int == 2, "\(metadata)")
        let off = try cli.run(["key", "update", "app", "--rotation-days", "0", "--json"])
        #expect(off.status == 0 && !off.stdout.contains("rotationPeriodDays"), "\(off.stdout)")
        for (arguments, message) in [(["key", "update", "app"], "nothing to change"), (["key", "update", "app", "--set-tag", "novalue"], "not name=value"),
                                     (["key", "update", "app", "--set-tag", "a=1", "--set-tag", "a=2"], "set twice"),
                                     (["key", "update", "app", "--min-decryption-version", "9"], "minimum decryption version 9"),
                                     (["key", "update", "app", "--min-decryption-version=-1"], "1 or more")] {
            let refused = try cli.run(arguments)
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        #expect(try cli.run(["key", "describe", "app"]).stdout.contains("team=ledger"))
        #expect(try cli.run(["verify"]).status == 0)
    }

    @Test("audit export writes signed segments that audit verify --segment checks without the store; a flipped byte and another store's signer fail it")
    func auditSegmentsOffline() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app"]).status == 0)
        #expect(try cli.run(["audit", "signer", "--out", "audit-signer.pem"]).status == 0)
        let first = try cli.run(["audit", "export", "--through", "2", "--out", "one.seg"])
        #expect(first.status == 0 && first.stdout.contains("audit #1 to #2"), "\(first.stdout) \(first.stderr)")
        #expect(try cli.run(["key", "rotate", "app"]).status == 0)
        #expect(try cli.run(["audit", "export", "--after", "2", "--out", "two.seg"]).status == 0)
        // Offline: the store is gone.
        try FileManager.default.removeItem(atPath: cli.environment["KEYWARD_STORE"]!)
        let checked = try cli.run(["audit", "verify", "--segment", "one.seg", "--segment", "two.seg", "--signer", "audit-signer.pem", "--from-start"])
        #expect(checked.status == 0 && checked.stdout.contains("audit segments intact: #1"), "\(checked.stdout) \(checked.stderr)")
        let path = cli.directory.appendingPathComponent("two.seg")
        var bytes = try Data(contentsOf: path)
        bytes[bytes.count - 20] ^= 0x01
        try bytes.write(to: path)
        let tampered = try cli.run(["audit", "verify", "--segment", "one.seg", "--segment", "two.seg", "--signer", "audit-signer.pem"])
        #expect(tampered.status != 0 && tampered.stdout.contains("FAIL"), "\(tampered.stdout) \(tampered.stderr)")
        let reversed = try cli.run(["audit", "verify", "--segment", "two.seg", "--segment", "one.seg"])
        #expect(reversed.status != 0)
    }

    @Test("audit prune archives the old entries as signed segments and removes them; audit verify checks the kept log, and the archive with the kept log's export verifies from the start")
    func auditPrune() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app"]).status == 0)
        #expect(try cli.run(["key", "rotate", "app"]).status == 0)
        let missing = try cli.run(["audit", "prune", "--older-than-days", "0", "--archive", "nowhere"])
        #expect(missing.status != 0 && missing.stderr.contains("nowhere"), "\(missing.stderr)")
        let negative = try cli.run(["audit", "prune", "--older-than-days", "-1", "--archive", "."])
        #expect(negative.status != 0)
        try FileManager.default.createDirectory(at: cli.directory.appendingPathComponent("archive"), withIntermediateDirectories: false)
        let pruned = try cli.run(["audit", "prune", "--older-than-days", "0", "--archive", "archive"])
        #expect(pruned.status == 0 && pruned.stdout.contains("archived archive/keyward-audit-") && pruned.stdout.contains("the log now starts at #"),
                "\(pruned.stdout) \(pruned.stderr)")
        #expect(try cli.run(["audit", "verify"]).status == 0)
        #expect(try cli.run(["verify"]).status == 0)
        #expect(try cli.run(["audit", "signer", "--out", "audit-signer.pem"]).status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: cli.directory.appendingPathComponent("archive").path).sorted()
        #expect(files.count == 1)
        let through = try #require(files.first.flatMap { Int64($0.dropLast(6).split(separator: "-").last ?? "") })
        #expect(try cli.run(["audit", "export", "--after", "\(through)", "--out", "kept.seg"]).status == 0)
        let checked = try cli.run(["audit", "verify", "--segment", "archive/\(files[0])", "--segment", "kept.seg", "--signer", "audit-signer.pem", "--from-start"])
        #expect(checked.status == 0 && checked.stdout.contains("audit segments intact: #1"), "\(checked.stdout) \(checked.stderr)")
    }

    @Test("backup to two files, verify, restore into a new store; KEK rotation keeps ciphertexts readable")
    func backupRestoreAndKEKRotation() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app"]).status == 0)
        let sealed = try cli.run(["encrypt", "--key", "app", "--base64-out"], stdin: Data("kept".utf8))
        #expect(try cli.run(["kek", "rotate"]).status == 0)
        #expect(try cli.run(["decrypt", "--base64-in"], stdin: sealed.data).stdout == "kept")
        let backupEnv = ["KEYWARD_BACKUP_PASSPHRASE": "another long passphrase"]
        #expect(try cli.run(["backup", "create", "--out", "one.kwb", "--out", "two.kwb"], environment: backupEnv).status == 0)
        #expect(try cli.run(["backup", "verify", "--in", "two.kwb"], environment: backupEnv).stdout.contains("backup intact: 1 keys"))
        let wrong = try cli.run(["backup", "verify", "--in", "one.kwb"], environment: ["KEYWARD_BACKUP_PASSPHRASE": "nope"])
        #expect(wrong.status == 6)
        let restoredStore = cli.directory.appendingPathComponent("restored.db").path
        #expect(try cli.run(["restore", "--in", "one.kwb"], environment: backupEnv.merging(["KEYWARD_STORE": restoredStore]) { $1 }).status == 0)
        #expect(try cli.run(["decrypt", "--base64-in"], stdin: sealed.data, environment: ["KEYWARD_STORE": restoredStore]).stdout == "kept")
        // Into a new store protected by a key file restore makes, with no --key-file: the new
        // store is opened with the root it was just given.
        let keyFileStore = cli.directory.appendingPathComponent("keyfile.db").path
        let keyFile = cli.directory.appendingPathComponent("new-root.key").path
        let intoKeyFile = try cli.run(["restore", "--in", "two.kwb", "--with-key-file", keyFile, "--generate-key-file"],
                                      environment: backupEnv.merging(["KEYWARD_STORE": keyFileStore]) { $1 })
        #expect(intoKeyFile.status == 0 && intoKeyFile.stdout.contains("restored 1 keys"), "\(intoKeyFile.stderr)")
        let underKeyFile = try cli.run(["decrypt", "--base64-in"], stdin: sealed.data, environment: ["KEYWARD_STORE": keyFileStore, "KEYWARD_KEY_FILE": keyFile])
        #expect(underKeyFile.stdout == "kept", "\(underKeyFile.stderr)")
        let noWhere = try cli.run(["restore", "--in", "two.kwb", "--generate-key-file"],
                                  environment: backupEnv.merging(["KEYWARD_STORE": cli.directory.appendingPathComponent("nowhere.db").path]) { $1 })
        #expect(noWhere.status == 2 && noWhere.stderr.contains("--with-key-file"), "\(noWhere.stderr)")
        let truncated = cli.directory.appendingPathComponent("truncated.kwb")
        try Data(try Data(contentsOf: cli.directory.appendingPathComponent("one.kwb")).prefix(200)).write(to: truncated)
        let bad = try cli.run(["backup", "verify", "--in", truncated.path], environment: backupEnv)
        #expect(bad.status != 0 && !bad.stderr.isEmpty)
        // A file that is no bundle is told so before any passphrase is asked for; without a
        // terminal, the message names the backup's own variables, not the store's.
        try Data("not a backup at all".utf8).write(to: cli.directory.appendingPathComponent("junk.kwb"))
        let junk = try cli.run(["backup", "verify", "--in", "junk.kwb"])
        #expect(junk.status == 6 && junk.stderr.contains("junk.kwb") && !junk.stderr.contains("passphrase"), "\(junk.status) \(junk.stderr)")
        let noPassphrase = try cli.run(["backup", "verify", "--in", "one.kwb"])
        #expect(noPassphrase.status == 1 && noPassphrase.stderr.contains("KEYWARD_BACKUP_PASSPHRASE_FILE or KEYWARD_BACKUP_PASSPHRASE"), "\(noPassphrase.stderr)")
        let asRecipient = try cli.run(["backup", "verify", "--in", "one.kwb", "--identity", "id.key", "--signer", "signer.pem"])
        #expect(asRecipient.status == 1 && asRecipient.stderr.contains("protected by a passphrase"), "\(asRecipient.stderr)")
    }

    @Test("a recipient backup: keygen, create, signer; restore refuses without --signer and with another store's signer, restores with the right one")
    func recipientBackupNeedsItsSigner() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "app"]).status == 0)
        let sealed = try cli.run(["encrypt", "--key", "app", "--base64-out"], stdin: Data("kept".utf8))
        #expect(try cli.run(["backup", "keygen", "--spec", "X25519", "--identity", "id.key", "--public-out", "id.pub"]).status == 0)
        // Attack: a recipient file others can write (to put their own key in it) is refused.
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: cli.path("id.pub"))
        let swappable = try cli.run(["backup", "create", "--recipient", "id.pub", "--out", "r.kwb"])
        #expect(swappable.status == 6 && swappable.stderr.contains("chmod go-w"), "\(swappable.status) \(swappable.stderr)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: cli.path("id.pub"))
        let created = try cli.run(["backup", "create", "--recipient", "id.pub", "--out", "r.kwb"])
        #expect(created.status == 0 && created.stdout.contains("signed by key"), "\(created.stderr)")
        #expect(try cli.run(["backup", "signer", "--out", "signer.pem"]).status == 0)
        let noIdentity = try cli.run(["backup", "verify", "--in", "r.kwb"], environment: ["KEYWARD_BACKUP_PASSPHRASE": "irrelevant"])
        #expect(noIdentity.status == 1 && noIdentity.stderr.contains("sealed to a x25519 recipient"), "\(noIdentity.stderr)")
        let unsigned = try cli.run(["backup", "verify", "--in", "r.kwb", "--identity", "id.key"])
        #expect(unsigned.status != 0 && unsigned.stderr.contains("--signer"), "\(unsigned.stderr)")
        // Another store's signer (an attacker's, say) is refused.
        let otherStore = cli.directory.appendingPathComponent("other.db").path
        #expect(try cli.run(["init"], environment: ["KEYWARD_STORE": otherStore]).status == 0)
        #expect(try cli.run(["backup", "signer", "--out", "other.pem"], environment: ["KEYWARD_STORE": otherStore]).status == 0)
        let wrong = try cli.run(["backup", "verify", "--in", "r.kwb", "--identity", "id.key", "--signer", "other.pem"])
        #expect(wrong.status == 4 && wrong.stderr.contains("not by the signer you named"), "\(wrong.status) \(wrong.stderr)")
        // Attack: an identity others on the machine can read is refused, naming its mode.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: cli.path("id.key"))
        let exposed = try cli.run(["backup", "verify", "--in", "r.kwb", "--identity", "id.key", "--signer", "signer.pem"])
        #expect(exposed.status == 6 && exposed.stderr.contains("mode 644"), "\(exposed.status) \(exposed.stderr)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: cli.path("id.key"))
        #expect(try cli.run(["backup", "verify", "--in", "r.kwb", "--identity", "id.key", "--signer", "signer.pem"]).stdout.contains("backup intact: 1 keys"))
        let restoredStore = cli.directory.appendingPathComponent("restored.db").path
        let restored = try cli.run(["restore", "--in", "r.kwb", "--identity", "id.key", "--signer", "signer.pem"], environment: ["KEYWARD_STORE": restoredStore])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try cli.run(["decrypt", "--base64-in"], stdin: sealed.data, environment: ["KEYWARD_STORE": restoredStore]).stdout == "kept")
    }

    @Test("a tampered store file: verify names the record and exits 7")
    func tamperedStore() throws {
        let cli = try CLI()
        defer { cli.remove() }
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "a"]).status == 0)
        #expect(try cli.run(["key", "create", "--alias", "b"]).status == 0)
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            row = db.execute("SELECT id, body FROM keys LIMIT 1").fetchone()
            db.execute("UPDATE keys SET body = ? WHERE id = ?", (row[1].replace(b'"exportable":false', b'"exportable":true'), row[0]))
            db.commit()
            """
        #expect(try CLI.python(script, [cli.environment["KEYWARD_STORE"]!]) == 0)
        let verified = try cli.run(["verify"])
        #expect(verified.status == 7)
        #expect(verified.stdout.contains("FAIL key"))
        #expect(try cli.run(["key", "list"]).status == 4)
    }

    @Test("kill -9 during `keyward kek rotate`: the store opens, verifies and decrypts afterwards")
    func killedKEKRotation() async throws {
        let cli = try CLI()
        defer { cli.remove() }
        let keyFile = cli.directory.appendingPathComponent("root.key").path
        let storePath = cli.environment["KEYWARD_STORE"]!
        #expect(try cli.run(["init", "--with-key-file", keyFile, "--generate-key-file"]).status == 0)
        // Enough keys that the rewrite takes a while.
        let service = try await KeyService.open(store: try SQLiteKeyStore(path: storePath), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        var sealed: [EncryptResult] = []
        for index in 0..<3000 {
            let key = try await service.createKey(CreateKeyRequest(), actor: .owner("t")).metadata.id.description
            if index % 300 == 0 { sealed.append(try await service.encrypt([UInt8(index % 256)], key: key, actor: .owner("t"))) }
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["kek", "rotate", "--key-file", keyFile]
        process.environment = cli.environment
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        try await Task.sleep(for: .milliseconds(400))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Whether the kill landed before or after the commit, the store is whole.
        let reopened = try await KeyService.open(store: try SQLiteKeyStore(path: storePath), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
        for (index, result) in sealed.enumerated() {
            #expect(try await reopened.decrypt(result.ciphertext, actor: .owner("t")).plaintext == [UInt8((index * 300) % 256)])
        }
        let report = try await reopened.verifyStore()
        #expect(report.isIntact, "\(report.problems.prefix(3)) \(report.audit.problems.prefix(3))")
        #expect(report.keys == 3000)
    }

    @Test("the passphrase prompt reads from the terminal without echo, and asks twice at init")
    func promptWithoutEcho() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let script = cli.directory.appendingPathComponent("pty_init.py")
        try Self.ptyScript.write(to: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, CLI.binary, cli.directory.appendingPathComponent("prompted.db").path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(text.contains("NOECHO"), "the passphrase was echoed: \(text)")
        #expect(text.contains("CREATED") && text.contains("EXIT 0"), "\(text)")
    }

    @Test("a store on a PKCS#11 token (SoftHSM2): init, use, and a wrong PIN refused with exit 6")
    func pkcs11Store() throws {
        var cli = try CLI()
        defer { cli.remove() }
        try Self.softHSMToken("cli-token", for: &cli)
        let initialized = try cli.run(["init", "--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "--pkcs11-token", "cli-token"])
        #expect(initialized.status == 0 && initialized.stdout.contains("pkcs11"), "\(initialized.stderr)")
        // Later commands name the module and token themselves; the store's header never does.
        cli.environment["KEYWARD_PKCS11_MODULE"] = "/usr/lib/softhsm/libsofthsm2.so"
        cli.environment["KEYWARD_PKCS11_TOKEN"] = "cli-token"
        #expect(try cli.run(["key", "create", "--alias", "hsm-app"]).status == 0)
        let sealed = try cli.run(["encrypt", "--key", "hsm-app", "--base64-out"], stdin: Data("in the token".utf8))
        #expect(try cli.run(["decrypt", "--base64-in"], stdin: sealed.data).stdout == "in the token")
        let wrong = try cli.run(["key", "list"], environment: ["KEYWARD_PKCS11_PIN": "0000"])
        #expect(wrong.status == 6 && wrong.stderr.contains("PIN"), "\(wrong.stderr)")
    }

    @Test("attack: a store header edited to name another PKCS#11 module is refused before anything is loaded, and the module comes from configuration only")
    func pkcs11HeaderCannotLoadALibrary() throws {
        var cli = try CLI()
        defer { cli.remove() }
        try Self.softHSMToken("hdr-token", for: &cli)
        let module = "/usr/lib/softhsm/libsofthsm2.so"
        #expect(try cli.run(["init", "--pkcs11-module", module, "--pkcs11-token", "hdr-token"]).status == 0)

        // Without a configured module the store does not open, whatever its header says.
        let unconfigured = try cli.run(["key", "list"])
        #expect(unconfigured.status == 6 && unconfigured.stderr.contains("--pkcs11-module"), "\(unconfigured.stderr)")
        cli.environment["KEYWARD_PKCS11_MODULE"] = module
        cli.environment["KEYWARD_PKCS11_TOKEN"] = "hdr-token"
        #expect(try cli.run(["key", "list"]).status == 0)

        // The attacker's library writes a marker when it is loaded.
        let marker = cli.directory.appendingPathComponent("loaded")
        let source = cli.directory.appendingPathComponent("evil.c")
        let evil = cli.directory.appendingPathComponent("evil.so")
        try "#include <stdio.h>\n__attribute__((constructor)) static void hit(void) { FILE *f = fopen(\"\(marker.path)\", \"w\"); if (f) fclose(f); }\n"
            .write(to: source, atomically: true, encoding: .utf8)
        let compile = Process()
        compile.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        compile.arguments = ["cc", "-shared", "-fPIC", "-o", evil.path, source.path]
        try compile.run()
        compile.waitUntilExit()
        #expect(compile.terminationStatus == 0)
        let script = """
            import sqlite3, sys, json
            db = sqlite3.connect(sys.argv[1])
            params = json.loads(db.execute("SELECT root_parameters FROM store_header").fetchone()[0])
            params["module"] = sys.argv[2]
            db.execute("UPDATE store_header SET root_parameters = ?", (json.dumps(params).encode(),))
            db.commit()
            """
        #expect(try CLI.python(script, [cli.environment["KEYWARD_STORE"]!, evil.path]) == 0)

        let attacked = try cli.run(["key", "list"])
        #expect(attacked.status == 6 && attacked.stderr.contains(evil.path) && attacked.stderr.contains("edited"), "\(attacked.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker.path), "the header's module was loaded")
        // The same with the server: `keyward serve` opens stores the same way.
        let served = try cli.run(["serve", "--insecure-http", "--port", "0"])
        #expect(served.status != 0 && served.stderr.contains("edited"), "\(served.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker.path))
    }

    /// A SoftHSM2 token `label` (user PIN 1234) in the CLI's folder, and the environment that
    /// points the CLI at it.
    static func softHSMToken(_ label: String, for cli: inout CLI) throws {
        let tokens = cli.directory.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        let conf = cli.directory.appendingPathComponent("softhsm2.conf")
        try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\n".write(to: conf, atomically: true, encoding: .utf8)
        let setup = Process()
        setup.executableURL = URL(fileURLWithPath: "/usr/bin/softhsm2-util")
        setup.arguments = ["--init-token", "--free", "--label", label, "--pin", "1234", "--so-pin", "5678"]
        setup.environment = ["SOFTHSM2_CONF": conf.path]
        setup.standardOutput = Pipe()
        try setup.run()
        setup.waitUntilExit()
        #expect(setup.terminationStatus == 0)
        cli.environment["SOFTHSM2_CONF"] = conf.path
        cli.environment["KEYWARD_PKCS11_PIN"] = "1234"
    }

    /// Drives `keyward init` through a pseudo-terminal, as a person at a keyboard would.
    static let ptyScript = #"""
import os, pty, sys, time, select
binary, store = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execve(binary, [binary, "init", "--store", store], {"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
out = b""
def read_until(token, timeout=20):
    global out
    end = time.time() + timeout
    while token not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try: out += os.read(fd, 1024)
            except OSError: break
read_until(b"passphrase")
os.write(fd, b"typed secret phrase\n")
read_until(b"Again")
os.write(fd, b"typed secret phrase\n")
read_until(b"created store", 60)
# Never wait forever: a child still running after its output ends is killed.
for _ in range(100):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done: break
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
text = out.decode(errors="replace")
print("ECHOED" if "typed secret phrase" in text else "NOECHO")
print("CREATED" if "created store" in text else "NOTCREATED")
print("EXIT", os.waitstatus_to_exitcode(status))
"""#
}
