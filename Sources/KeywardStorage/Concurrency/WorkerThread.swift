import Foundation
import Synchronization
import CSystemHardening

/// A thread of Keyward's own that runs a step whenever there is work and sleeps otherwise: the
/// audit log's writer and the SQLite WAL checkpointer. It exists so that blocking work (a
/// database transaction, an fsync) never occupies one of Swift concurrency's few executor
/// threads.
///
/// Ownership and ordering:
/// - the owner keeps the work's state; `start(_:)` hands the thread the `step` that reads it;
/// - `signal()` after adding work: a step that begins after the signal sees the work (no
///   wake-up is lost, even when the signal lands while a step that found nothing is ending);
/// - `stop()` asks the thread to end: `step` is called with `stopping` true, does what is left,
///   and returns `.finished`. The thread holds `step` (and what it captures) until then.
public final class WorkerThread: Sendable {
    /// What one step found.
    public enum Step: Sendable {
        /// It did some work; the next step runs at once.
        case worked
        /// There was nothing to do; the thread sleeps until `signal()` or `stop()`.
        case idle
        /// The thread ends.
        case finished
    }

    private struct State {
        var signalled = false
        var sleeping = false
        var stopping = false

        /// Applies `change`; true when the thread sleeps and must be woken (it is then marked
        /// awake, so it is woken once).
        mutating func wakeUp(_ change: (inout Self) -> Void) -> Bool {
            change(&self)
            guard sleeping else { return false }
            sleeping = false
            return true
        }
    }

    private let name: String
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    /// The longest thread name Linux keeps (`TASK_COMM_LEN` less its terminator).
    public static let maximumNameLength = 15

    /// A worker named `name` (as `top -H`, `perf` and debuggers show it); not started yet. A
    /// name longer than `maximumNameLength` bytes is cut to the whole characters that fit.
    public init(name: String) {
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in name.unicodeScalars {
            bytes += UTF8.width(scalar)
            guard bytes <= Self.maximumNameLength else { break }
            kept.append(scalar)
        }
        self.name = String(kept)
    }

    /// Starts the thread; it calls `step` until `step` returns `.finished`. Call once.
    public func start(_ step: @escaping @Sendable (_ stopping: Bool) -> Step) {
        // Named from the thread itself, with pthread's own call: Foundation's `Thread.name`
        // setter reaches the kernel only once the Thread object knows its pthread, which the
        // creator records after `pthread_create` returns, so the thread could keep its
        // creator's name.
        let thread = Thread { [self] in
            _ = keyward_set_thread_name(name)
            run(step)
        }
        thread.start()
    }

    /// Tells the thread there is work.
    public func signal() {
        if state.withLock({ $0.wakeUp { $0.signalled = true } }) { wake.signal() }
    }

    /// Asks the thread to finish what is left and end.
    public func stop() {
        if state.withLock({ $0.wakeUp { $0.stopping = true } }) { wake.signal() }
    }

    private func run(_ step: @Sendable (Bool) -> Step) {
        while true {
            let stopping = state.withLock { state -> Bool in
                state.signalled = false
                return state.stopping
            }
            switch step(stopping) {
            case .worked:
                continue
            case .finished:
                return
            case .idle:
                let sleep = state.withLock { state -> Bool in
                    guard !state.signalled, !state.stopping else { return false }
                    state.sleeping = true
                    return true
                }
                if sleep { wake.wait() }
            }
        }
    }
}
