import HTTPTypes

/// The routes the server registers, as (method, path template), to tell an unknown path (404
/// `route_not_found`) from a known path asked with a method it does not serve (405
/// `method_not_allowed`, with `Allow`). Built once from the router at start-up.
struct RouteTable: Sendable {
    private let routes: [(method: HTTPRequest.Method, segments: [Substring])]

    /// The table of `routes` (templates such as `/v1/keys/{key}`).
    init(_ routes: [(method: HTTPRequest.Method, path: String)]) {
        self.routes = routes.map { ($0.method, $0.path.split(separator: "/", omittingEmptySubsequences: true)) }
    }

    /// The methods served on `path`, sorted; empty when no route has this path. A `{name}`
    /// segment matches any one segment, and a literal segment wins over it, as in the router:
    /// `/v1/keys/import` is its own route, not `/v1/keys/{key}`.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var best: [Bool]?
        var methods = Set<String>()
        for route in routes where route.segments.count == segments.count {
            guard zip(route.segments, segments).allSatisfy({ $0.first == "{" || $0 == $1 }) else { continue }
            let literal = route.segments.map { $0.first != "{" }
            if let current = best, literal != current {
                // Keep the more specific template: the first segment where they differ is literal.
                guard let index = literal.indices.first(where: { literal[$0] != current[$0] }), literal[index] else { continue }
                methods.removeAll()
            }
            best = literal
            methods.insert(route.method.rawValue)
        }
        return methods.sorted()
    }
}
