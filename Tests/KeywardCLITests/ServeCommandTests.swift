import Foundation
import Testing

/// `keyward serve` as a user runs it: a child process on loopback, talked to over HTTPS by
/// Python's standard library with the development CA, stopped with SIGTERM.
@Suite("keyward serve", .serialized)
struct ServeCommandTests {
    /// Starts `keyward serve` and returns the process and the URL it printed.
    static func start(_ cli: CLI, _ arguments: [String]) throws -> (Process, String, Pipe, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["serve"] + arguments
        process.currentDirectoryURL = cli.directory
        process.environment = cli.environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("\n"), Date() < deadline, process.isRunning {
            text += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, let range = line.range(of: "listening on ") else {
            process.terminate()
            throw CLIFailure("keyward serve did not start: \(text)")
        }
        return (process, String(line[range.upperBound...]), output, text)
    }

    static let client = """
        import json, ssl, sys, urllib.request, hashlib, base64
        url, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
        context = ssl.create_default_context(cafile=ca)
        def call(method, path, body=None):
            request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, context=context) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())
        status, key = call("POST", "/v1/keys", {"spec": "AES-256-GCM", "aliases": ["cli/demo"]})
        assert status in (201, 400), (status, key)
        status, sealed = call("POST", "/v1/keys/cli%2Fdemo/encrypt", {"plaintext": base64.b64encode(b"from python").decode()})
        assert status == 200, (status, sealed)
        status, opened = call("POST", "/v1/decrypt", {"ciphertext": sealed["ciphertext"]})
        assert status == 200 and base64.b64decode(opened["plaintext"]) == b"from python", (status, opened)
        leaf = ssl.get_server_certificate((url.split("//")[1].split(":")[0], int(url.rsplit(":", 1)[1])), ca_certs=ca)
        print("FINGERPRINT " + hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf)).hexdigest())
        print("OK")
        """

    @Test("serve's log level governs every logger: at the default (notice) the PostgreSQL driver's info lines are not printed; the failure is, with its cause")
    func logLevelGovernsEveryLogger() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let run = try cli.run(["serve", "--store", "postgres://keyward@127.0.0.1:1/none", "--insecure-http", "--port", "0"],
                              environment: ["KEYWARD_DATABASE_PASSWORD": "unused"])
        let printed = run.stdout + run.stderr
        #expect(run.status != 0 && printed.contains("Connection refused"), "\(printed.suffix(500))")
        #expect(!printed.contains(#""level":"info""#), "\(printed.prefix(500))")
    }

    @Test("serve --dev: HTTPS with the printed CA and fingerprint, the chosen root token and the same CA across restarts; a second start on a taken port says so and leaves the running server's certificate alone; SIGTERM exits 0")
    func development() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let token = "dev-root-token-for-scripts-0123456789abcdef"
        let script = cli.directory.appendingPathComponent("client.py")
        try Self.client.write(to: script, atomically: true, encoding: .utf8)
        let caPath = cli.directory.appendingPathComponent("dev/ca.pem").path
        var authorities: [String] = []
        for round in 0..<2 {
            let (process, url, output, start) = try Self.start(cli, ["--dev", "--dev-dir", "dev", "--port", "0", "--dev-root-token", token])
            #expect(url.hasPrefix("https://127.0.0.1:"))
            authorities.append(try String(contentsOfFile: caPath, encoding: .utf8))
            // Another dev server on the same port: refused in words, and the files the running
            // one serves (and its clients trust) stay as they were.
            let port = String(url.split(separator: ":").last ?? "")
            let second = try cli.run(["serve", "--dev", "--dev-dir", "dev", "--port", port, "--dev-root-token", token])
            #expect(second.status != 0 && second.stderr.contains("\(port)") && second.stderr.contains("address is in use"), "\(second.stderr.suffix(300))")
            #expect(try String(contentsOfFile: caPath, encoding: .utf8) == authorities[round], "a failed start replaced the development CA")
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", script.path, url, token, cli.directory.appendingPathComponent("dev/ca.pem").path]
            let result = Pipe()
            python.standardOutput = result
            python.standardError = result
            try python.run()
            let text = String(decoding: result.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            python.waitUntilExit()
            #expect(text.contains("OK"), "round \(round): \(text)")
            kill(process.processIdentifier, SIGTERM)
            let banner = start + String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "exit \(process.terminationStatus) after SIGTERM")
            // The fingerprint printed at start is the served certificate's.
            if let printed = banner.split(separator: "\n").first(where: { $0.contains("fingerprint") })?.split(separator: " ").last,
               let seen = text.split(separator: "\n").first(where: { $0.hasPrefix("FINGERPRINT") })?.split(separator: " ").last {
                #expect(printed.replacingOccurrences(of: ":", with: "") == seen)
            } else {
                Issue.record("no fingerprint: \(banner) \(text)")
            }
            #expect(banner.contains("curl") && banner.contains(token))
        }
        #expect(authorities.count == 2 && authorities[0] == authorities[1], "the development CA changed across a restart")
        // A ca.pem that is not the one the certificate was issued by: a new CA and certificate,
        // the chain ending with the ca.pem written, rather than a server clients cannot verify.
        try "-----BEGIN CERTIFICATE-----\nbm90IHRoZSBDQQ==\n-----END CERTIFICATE-----\n".write(toFile: caPath, atomically: true, encoding: .utf8)
        let (process, _, _, _) = try Self.start(cli, ["--dev", "--dev-dir", "dev", "--port", "0", "--dev-root-token", token])
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        let renewed = try String(contentsOfFile: caPath, encoding: .utf8)
        let chain = try String(contentsOfFile: cli.directory.appendingPathComponent("dev/server.pem").path, encoding: .utf8)
        #expect(renewed != authorities[0] && !renewed.contains("bm90IHRoZSBDQQ") && chain.hasSuffix(renewed))
    }

    /// The environment a running process started with, from /proc (NUL-separated).
    static func environment(of process: Process) throws -> [String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/environ"))
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    // Reading a non-dumpable process's /proc/PID/environ needs root (CI's test command runs as root).
    @Test("serve deepens glibc's per-thread cache by re-executing itself once, with its PID, arguments and name, and keeps an operator's GLIBC_TUNABLES",
          .enabled(if: geteuid() == 0, "reads a non-dumpable process's /proc/PID/environ, which needs root"))
    func allocatorTuning() throws {
        var cli = try CLI()
        defer { cli.remove() }
        cli.environment["GLIBC_TUNABLES"] = nil
        let (process, url, _, _) = try Self.start(cli, ["--dev", "--dev-dir", "dev", "--port", "0"])
        let tuned = try Self.environment(of: process)
        let name = try String(contentsOfFile: "/proc/\(process.processIdentifier)/comm", encoding: .utf8)
        let arguments = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/cmdline")).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(url.hasPrefix("https://127.0.0.1:"))
        #expect(tuned.filter { $0.hasPrefix("GLIBC_TUNABLES=") } == ["GLIBC_TUNABLES=glibc.malloc.tcache_count=2000"], "\(tuned)")
        for (name, value) in cli.environment { #expect(tuned.contains("\(name)=\(value)"), "\(name) kept") }
        #expect(name.trimmingCharacters(in: .whitespacesAndNewlines) == "keyward", "process name \(name)")
        #expect(arguments.dropFirst() == ["serve", "--dev", "--dev-dir", "dev", "--port", "0"], "\(arguments)")
        #expect(process.terminationStatus == 0)

        cli.environment["GLIBC_TUNABLES"] = "glibc.malloc.tcache_count=7"
        let (operator_, _, _, _) = try Self.start(cli, ["--dev", "--dev-dir", "dev", "--port", "0"])
        let kept = try Self.environment(of: operator_)
        kill(operator_.processIdentifier, SIGTERM)
        operator_.waitUntilExit()
        #expect(kept.filter { $0.hasPrefix("GLIBC_TUNABLES=") } == ["GLIBC_TUNABLES=glibc.malloc.tcache_count=7"], "\(kept)")
    }

    @Test("serve without TLS material or --dev refuses to start with a clear message")
    func refusesWithoutTLS() throws {
        let cli = try CLI()
        defer { cli.remove() }
        let result = try cli.run(["serve", "--port", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--dev") && result.stderr.contains("tls"), "\(result.stderr)")
        let badConfig = cli.directory.appendingPathComponent("bad.yaml")
        try "port: 8443\ntls:\n  certificate: a.pem\n  privateKey: b.pem\n  clientCa: c.pem\n".write(to: badConfig, atomically: true, encoding: .utf8)
        let typo = try cli.run(["serve", "--config", badConfig.path])
        #expect(typo.status != 0 && typo.stderr.contains("unknown setting 'tls.clientCa'"), "\(typo.stderr)")
    }
}

struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
