#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Keyward
import Logging
import ServiceLifecycle

/// Writes an audit anchor (`AuditAnchor`) outside the store whenever the log has grown: every
/// `interval`, and once more at graceful shutdown. With the anchors kept elsewhere, deleting the
/// newest audit entries or rolling the store file back to an older copy is caught by
/// `keyward audit verify --anchors`. A failed write is logged as an error and tried again at the
/// next interval; it never stops the server.
struct AuditAnchorPublisher: Service {
    /// Where anchors go.
    enum Destination: Sendable, Equatable {
        /// Appended to a file (`AuditAnchorFile`).
        case file(String)
        /// One line on standard output.
        case standardOutput
        /// One `LOG_NOTICE` message to syslog (facility `LOG_AUTH`).
        case syslog

        /// Reads the `audit.anchor` setting: `file:PATH`, `stdout` or `syslog`.
        init(_ setting: String) throws(KeywardError) {
            switch setting {
            case "stdout": self = .standardOutput
            case "syslog": self = .syslog
            case let text where text.hasPrefix("file:") && text.count > 5: self = .file(String(text.dropFirst(5)))
            default: throw .invalidArgument("audit.anchor '\(setting.prefix(100))' is not file:PATH, stdout or syslog")
            }
        }
    }

    let slot: KeyServiceSlot
    let destination: Destination
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let last = await cancelWhenGracefulShutdown { () async -> Int64 in
            var last: Int64 = 0
            while !Task.isCancelled {
                last = await publish(after: last)
                try? await Task.sleep(for: interval)
            }
            return last
        }
        _ = await publish(after: last)
    }

    /// Writes the anchor of the newest entry when it is past `last`; returns the sequence now
    /// anchored.
    private func publish(after last: Int64) async -> Int64 {
        do {
            guard let anchor = try await slot.current.auditAnchor(), anchor.sequence > last else { return last }
            try write(anchor.line)
            return anchor.sequence
        } catch {
            logger.error("audit anchor not written", metadata: ["error": .string("\(error)")])
            return last
        }
    }

    private func write(_ line: String) throws(KeywardError) {
        switch destination {
        case .file(let path):
            try AuditAnchorFile.append(line, to: path)
        case .standardOutput:
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        case .syslog:
            line.withCString { text in
                withVaList([text]) { vsyslog(LOG_NOTICE | LOG_AUTH, "%s", $0) }
            }
        }
    }
}
