import Dispatch
import NIOCore
import NIOPosix
import Testing
@testable import KeywardServer

@Suite("Requests run on their connection's event loop")
struct EventLoopTaskExecutorTests {
    @Test("A task that prefers an event loop's executor runs there, before and after a resumption from another thread, and so do its child tasks")
    func tasksStayOnTheirLoop() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        for loop in [group.next(), group.next()] {
            // The control: an ordinary task does not run on the loop, so the checks below can fail.
            #expect(!loop.inEventLoop)
            let observed = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () async -> [Bool] in
                var seen = [loop.inEventLoop]
                // Resumed from a Dispatch thread, as the audit writer resumes a request.
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().async { continuation.resume() }
                }
                seen.append(loop.inEventLoop)
                seen.append(await withTaskGroup(of: Bool.self) { tasks in
                    tasks.addTask { loop.inEventLoop }
                    return await tasks.next() ?? false
                })
                return seen
            }
            #expect(observed == [true, true, true])
            let unstructured = await Task(executorPreference: EventLoopTaskExecutor(loop)) { loop.inEventLoop }.value
            #expect(unstructured)
        }
    }
}
