import ArgumentParser
import Foundation
import KeywardCrypto

/// Where a command's data comes from and goes to: files or stdin/stdout, binary or base64.
struct DataIO: ParsableArguments {
    @Option(name: .customLong("in"), help: "Read input from this file ('-' or absent: standard input).")
    var input: String?

    @Option(name: .customLong("out"), help: "Write output to this file ('-' or absent: standard output).")
    var output: String?

    @Flag(help: "Input and output are base64 text instead of binary.")
    var base64 = false

    @Flag(help: "Input is base64 text.")
    var base64In = false

    @Flag(help: "Output is base64 text.")
    var base64Out = false

    /// The largest input a command reads (64 MiB).
    static let maximumInputBytes = 64 << 20

    func read() throws -> [UInt8] {
        let data: Data
        if let input, input != "-" {
            data = try Self.readFile(input, maximumBytes: Self.maximumInputBytes)
        } else {
            data = FileHandle.standardInput.readData(ofLength: Self.maximumInputBytes + 1)
            if data.count > Self.maximumInputBytes { throw CLIError(.failure, "standard input exceeds \(Self.maximumInputBytes) bytes") }
        }
        return base64 || base64In ? try Self.decodeBase64(data, what: input ?? "standard input") : [UInt8](data)
    }

    /// The contents of `path`, read up to `maximumBytes` whatever the file is (a pipe such as
    /// `<(command)` or a device reports no size); a failure names the file and the reason.
    static func readFile(_ path: String, maximumBytes: Int) throws -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw CLIError(.failure, "cannot read \(path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var status = stat()
        if fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            throw CLIError(.failure, "cannot read \(path): it is a directory")
        }
        if status.st_mode & S_IFMT == S_IFREG, Int(status.st_size) > maximumBytes {
            throw CLIError(.failure, "\(path) is \(status.st_size) bytes; the limit is \(maximumBytes)")
        }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumBytes + 1) ?? Data()
        } catch {
            throw CLIError(.failure, "cannot read \(path): \(error.localizedDescription)")
        }
        guard data.count <= maximumBytes else { throw CLIError(.failure, "\(path) holds more than \(maximumBytes) bytes, the limit") }
        return data
    }

    func write(_ bytes: [UInt8]) throws {
        let data = base64 || base64Out ? Data((Data(bytes).base64EncodedString() + "\n").utf8) : Data(bytes)
        try Self.write(data, to: output)
    }

    static func write(_ data: Data, to output: String?) throws {
        if let output, output != "-" {
            guard FileManager.default.createFile(atPath: output, contents: data, attributes: [.posixPermissions: 0o600]) else {
                let directory = (output as NSString).deletingLastPathComponent
                var isDirectory: ObjCBool = false
                let reason = FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory) && isDirectory.boolValue
                    ? "the directory does not let this user write there, or the name is a directory" : "no directory \(directory)"
                throw CLIError(.failure, "cannot write \(output): \(reason)")
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    static func decodeBase64(_ data: Data, what: String) throws -> [UInt8] {
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let decoded = Data(base64Encoded: text) else { throw CLIError(.failure, "\(what) is not valid base64") }
        return [UInt8](decoded)
    }

    /// Reads a small value given inline as base64, or from a file.
    static func bytes(base64 inline: String?, file: String?, what: String) throws -> [UInt8] {
        if let inline { return try decodeBase64(Data(inline.utf8), what: what) }
        if let file { return [UInt8](try readFile(file, maximumBytes: maximumInputBytes)) }
        throw CLIError(.failure, "give the \(what) with --\(what)-base64 or --\(what)-file")
    }
}

/// `--context key=value` pairs.
struct ContextOptions: ParsableArguments {
    @Option(name: .customLong("context"), help: "Encryption context pair key=value (repeatable).")
    var pairs: [String] = []

    func context() throws -> EncryptionContext { try Self.parse(pairs) }

    static func parse(_ pairs: [String]) throws -> EncryptionContext {
        var dictionary: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "=") else { throw CLIError(.failure, "context '\(pair)' is not key=value") }
            let key = String(pair[..<equals])
            // Given twice, one value would silently win: the ciphertext would be bound to a
            // context the user did not mean.
            guard dictionary[key] == nil else { throw CLIError(.failure, "context key '\(key)' is given twice; give each key once") }
            dictionary[key] = String(pair[pair.index(after: equals)...])
        }
        return EncryptionContext(dictionary)
    }
}

/// JSON output for scripts.
enum JSONOutput {
    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
    }
}

/// A progress line on standard error, only when it is a terminal.
struct Progress {
    let label: String
    let interactive = isatty(STDERR_FILENO) == 1

    func update(_ done: Int, of total: Int? = nil) {
        guard interactive else { return }
        let text: String
        if let total, total > 0 {
            let width = 30
            let filled = min(width, done * width / total)
            text = "\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)"
        } else {
            text = "\r\(label) \(done)"
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
