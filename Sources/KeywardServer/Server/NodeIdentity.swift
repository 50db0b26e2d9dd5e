import Foundation

/// Names a serving node among those on one store: its host, its process id and a random
/// suffix, so a restarted process (or a reused pid) is a new node.
public enum NodeIdentity {
    /// A new node id, as `host-pid-xxxxxxxx`.
    public static func make() -> String {
        let suffix = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)"
    }
}
