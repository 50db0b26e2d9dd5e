import KeywardAPI
import Foundation
import Logging
import Synchronization

/// Logs one JSON object per line to standard error: time, level, label, message and metadata.
///
/// Setting metadata only stores it (swift-log's `StreamLogHandler` re-renders all of it on every
/// change, which cost the server a tenth of a request when each request set its id); rendering
/// happens only for lines actually written.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    private static let output = Mutex(())

    /// A handler for `label`.
    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var json = JSONWriter()
        json.object { json in
            json.member("time", Date())
            json.member("level", event.level.rawValue)
            json.member("label", label)
            json.member("message", event.message.description)
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { $1 } }
            for key in merged.keys.sorted() { json.member(key, merged[key]!.description) }
        }
        var line = json.bytes
        line.append(UInt8(ascii: "\n"))
        Self.output.withLock { _ in
            line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
        }
    }
}
