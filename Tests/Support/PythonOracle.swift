import Foundation

/// Shared test fixtures for every test target.

/// Python's `cryptography` package as an independent oracle: runs a short script and returns
/// what it prints, trimmed. Tests that use it need `python3` with `cryptography` installed
/// (scripts/setup.sh installs it).
public enum PythonOracle {
    /// python3 failed, with its standard error.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Runs `script` with `python3 -c` and returns its trimmed standard output.
    public static func run(_ script: String) throws -> String {
        // Not Foundation's Process: see ChildProcess.
        let result = try ChildProcess.run(["/usr/bin/env", "python3", "-c", script])
        guard result.status == 0 else {
            throw Failure(description: "python3 failed: \(String(decoding: result.errors, as: UTF8.self))")
        }
        return String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Array where Element == UInt8 {
    /// Lower-case hex.
    public var hex: String { map { String(format: "%02x", $0) }.joined() }

    /// Bytes from hex text (pairs of digits).
    public init(hexString: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hexString.count / 2)
        var index = hexString.startIndex
        while index < hexString.endIndex {
            let next = hexString.index(index, offsetBy: 2, limitedBy: hexString.endIndex) ?? hexString.endIndex
            bytes.append(UInt8(hexString[index..<next], radix: 16) ?? 0)
            index = next
        }
        self = bytes
    }
}
