import Foundation

/// Finds a request's peer address: the socket's, unless the socket's peer is a trusted reverse
/// proxy, in which case the nearest address in `X-Forwarded-For` that is not itself a trusted
/// proxy. Nobody else's `X-Forwarded-For` is believed, so a client cannot pick the address its
/// failed logins are charged to.
struct PeerAddress: Sendable {
    /// Proxy addresses, as `SocketAddress.ipAddress` prints them.
    let trustedProxies: Set<String>

    /// The peer address for a request from `socket` carrying these `X-Forwarded-For` values.
    func resolve(socket: String?, _ forwarded: [String]) -> String? {
        guard let socket, trustedProxies.contains(socket), !forwarded.isEmpty else { return socket }
        // Each proxy appends the address it saw: read from the right, skipping trusted hops.
        let hops = forwarded.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !trustedProxies.contains(hop) {
            return Self.isIPAddress(hop) ? hop : socket
        }
        return socket
    }

    /// Whether `text` is an IPv4 or IPv6 address.
    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
