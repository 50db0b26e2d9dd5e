import Dispatch
import NIOCore
import NIOPosix
import Testing
@testable import KeywardServer

@Suite("Connections served on their event loop")
struct ConnectionAffinityTests {
    @Test("A task that prefers an event loop's executor runs there, before and after a resumption from another thread")
    func tasksStayOnTheirLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        for loop in [group.next(), group.next()] {
            let observed = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () async -> [Bool] in
                var seen = [loop.inEventLoop]
                // Resumed from a Dispatch thread, as the audit writer resumes a request.
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().async { continuation.resume() }
                }
                seen.append(loop.inEventLoop)
                // A child task inherits the preference (HTTP/2 streams are child tasks).
                seen.append(await withTaskGroup(of: Bool.self) { tasks in
                    tasks.addTask { loop.inEventLoop }
                    return await tasks.next() ?? false
                })
                return seen
            }
            #expect(observed == [true, true, true])
        }
    }

    @Test("Without the preference the same task runs off the loop (the check above can fail)")
    func withoutPreferenceTasksRunElsewhere() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        #expect(!loop.inEventLoop)
    }
}
