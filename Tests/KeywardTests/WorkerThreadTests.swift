import Foundation
import KeywardStorage
import Synchronization
import Testing

@Suite("Worker thread")
struct WorkerThreadTests {
    /// Work items queued by many tasks, each followed by a signal; the worker takes one per step.
    final class Queue: Sendable {
        let pending = Mutex(0)
        let done = Atomic<Int>(0)
        let finished = DispatchSemaphore(value: 0)

        func step(_ stopping: Bool) -> WorkerThread.Step {
            let took = pending.withLock { count -> Bool in
                guard count > 0 else { return false }
                count -= 1
                return true
            }
            if took {
                done.add(1, ordering: .relaxed)
                return .worked
            }
            if stopping {
                finished.signal()
                return .finished
            }
            return .idle
        }
    }

    @Test("no signal is lost: every item queued from many threads is worked, and stop drains before the thread ends")
    func noLostWakeUps() async throws {
        let queue = Queue()
        let worker = WorkerThread(name: "keyward-test-worker")
        worker.start { stopping in queue.step(stopping) }
        // Waves of signals, with pauses that let the worker go to sleep between them: a lost
        // wake-up would leave items behind after a wave.
        for wave in 0..<20 {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<50 {
                            queue.pending.withLock { $0 += 1 }
                            worker.signal()
                        }
                    }
                }
            }
            let expected = (wave + 1) * 400
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while queue.done.load(ordering: .relaxed) < expected, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(1))
            }
            #expect(queue.done.load(ordering: .relaxed) == expected, "wave \(wave)")
        }
        queue.pending.withLock { $0 += 3 }
        worker.stop()
        #expect(queue.finished.wait(timeout: .now() + 10) == .success)
        #expect(queue.done.load(ordering: .relaxed) == 20 * 400 + 3)
    }

    @Test("the thread carries its name, cut to Linux's 15 bytes, as top -H and perf show it")
    func threadIsNamed() throws {
        let names = Mutex<[String]>([])
        let seen = DispatchSemaphore(value: 0)
        for name in ["keyward-audit", "keyward-wal-checkpointer", "keyward-abcdef\u{e9}"] {
            let worker = WorkerThread(name: name)
            worker.start { _ in
                // The kernel's name for the thread, as top -H reads it.
                let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                names.withLock { $0.append(comm.trimmingCharacters(in: .newlines)) }
                seen.signal()
                return .finished
            }
            #expect(seen.wait(timeout: .now() + 10) == .success)
        }
        // A character that would straddle the limit is left out whole, not cut into bytes.
        #expect(names.withLock { $0 } == ["keyward-audit", "keyward-wal-che", "keyward-abcdef"])
    }
}
