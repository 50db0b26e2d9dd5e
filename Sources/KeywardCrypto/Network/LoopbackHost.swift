/// The one rule for "this host is this machine", which decides where Keyward lets traffic go
/// without TLS: the server's `--insecure-http` bind address, the client's `http://` URLs and a
/// PostgreSQL store's default `sslmode`.
///
/// Loopback is `localhost`, an IPv4 address in 127.0.0.0/8 written as four decimal octets, or
/// `::1`, with or without the brackets a URL puts around an IPv6 address. A name that only
/// looks like one (`127.example.com`, `localhost.example.com`) is a remote host.
public enum LoopbackHost {
    /// Whether `host` names only this machine.
    public static func contains(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
