import Foundation
import Hummingbird
import Keyward
import KeywardAPI
import NIOCore
import Synchronization

/// Probes, metrics and the API document; none needs a credential, none touches a key.
enum SystemRoutes {
    static func register(_ routes: Router<KeywardRequestContext>, slot: KeyServiceSlot, metrics: ServiceMetrics, draining: ShutdownState) {
        routes.on(.get, "/v1/health") { _, _ in
            Response.reply(StatusReply(status: "ok"))
        }

        routes.on(.get, "/v1/ready") { _, _ in
            if draining.isDraining {
                return Response.reply(StatusReply(status: "shutting down"), status: .serviceUnavailable)
            }
            do {
                try await slot.current.checkReady()
                return Response.reply(StatusReply(status: "ready"))
            } catch {
                return Response.reply(StatusReply(status: "store unavailable"), status: .serviceUnavailable)
            }
        }

        routes.on(.get, "/metrics") { _, _ in
            let text = metrics.render(cache: slot.current.cacheStatistics)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }

        routes.on(.get, "/v1/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: APIDocument.openAPIYAML)))
        }
    }
}

/// Whether the server has begun its graceful shutdown (readiness then reports 503).
final class ShutdownState: Sendable {
    private let draining = Atomic<Bool>(false)
    var isDraining: Bool { draining.load(ordering: .acquiring) }
    func begin() { draining.store(true, ordering: .releasing) }
}
