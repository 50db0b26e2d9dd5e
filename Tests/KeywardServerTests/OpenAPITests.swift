import Foundation
import Hummingbird
import HummingbirdTesting
import KeywardServer
import Testing
import Yams

@Suite("OpenAPI document")
struct OpenAPITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func documentedRoutes(_ text: String) throws -> Set<String> {
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var routes: Set<String> = []
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    @Test("the document and the server's routes agree, both ways, and every documented route is served")
    func routesAgree() async throws {
        let fixture = try await ServerFixture.make()
        defer { fixture.remove() }
        let file = try String(contentsOf: Self.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let documented = try Self.documentedRoutes(file)
        let served = Set(try fixture.server.routeList().map { "\($0.method) \($0.path)" })
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        try await fixture.application().test(.router) { client in
            // The served copy is the repository's file: KeywardAPI compiles it in as its resource.
            #expect(try await client.call(.get, "/v1/openapi.yaml", token: nil).text == file)
            for route in documented {
                let parts = route.split(separator: " ")
                let path = String(parts[1]).replacingOccurrences(of: "{key}", with: "k").replacingOccurrences(of: "{alias}", with: "a")
                let reply = try await client.call(HTTPRequest.Method(String(parts[0]))!, path, token: fixture.rootToken, "{}")
                #expect(reply.errorCode != "route_not_found", "\(route) is documented but the router does not route it")
            }
        }
    }
}
