import Foundation
import GRDBSQLite
import Synchronization

/// Makes `AuditDurability.within(interval)` hold: after audit entries are committed without an
/// fsync, a passive WAL checkpoint runs within `interval`, on this object's own thread and
/// connection. The checkpoint fsyncs the WAL before copying it into the database, so every
/// entry committed before it started is on disk when it ends.
///
/// Passive checkpoints take no writer lock: appends go on while the fsync runs, which is why
/// this is not done on the audit writer's path (a stall there is every request's stall).
final class WALCheckpointer: Sendable {
    private let worker: Worker

    /// Starts the thread, with its own connection to `path`.
    init(path: String, interval: Duration) throws(StorageError) {
        let handle = try SQLiteConnection.open(path)
        do throws(StorageError) {
            // The checkpoint's fsyncs follow the connection's `synchronous` setting.
            try SQLiteConnection.execute(handle, "PRAGMA synchronous = FULL")
        } catch {
            sqlite3_close_v2(handle)
            throw error
        }
        worker = Worker(handle: handle, interval: interval)
        let thread = Thread { [worker] in worker.run() }
        thread.name = "keyward-wal-checkpoint"
        thread.start()
    }

    /// Runs a last checkpoint for what was committed, then ends the thread.
    deinit { worker.stop() }

    /// Entries were committed unsynced: a checkpoint runs within the interval.
    func committed() { worker.committed() }

    /// The thread's state and connection (the connection is used by that thread alone).
    private final class Worker: @unchecked Sendable {
        private struct State {
            var dirty = false
            var sleeping = false
            var stopped = false
        }

        private let handle: OpaquePointer
        private let seconds: Double
        private let state = Mutex(State())
        private let wake = DispatchSemaphore(value: 0)

        init(handle: OpaquePointer, interval: Duration) {
            self.handle = handle
            seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        }

        func committed() {
            let signal = state.withLock { state -> Bool in
                state.dirty = true
                guard state.sleeping else { return false }
                state.sleeping = false
                return true
            }
            if signal { wake.signal() }
        }

        func stop() {
            let signal = state.withLock { state -> Bool in
                state.stopped = true
                guard state.sleeping else { return false }
                state.sleeping = false
                return true
            }
            if signal { wake.signal() }
        }

        func run() {
            defer { sqlite3_close_v2(handle) }
            while true {
                let (dirty, stopped) = state.withLock { state -> (Bool, Bool) in
                    let work = (state.dirty, state.stopped)
                    if !work.0 && !work.1 { state.sleeping = true }
                    return work
                }
                if dirty {
                    // Waits out the interval (entries committed meanwhile ride along), then
                    // checkpoints everything committed so far.
                    if !stopped { Thread.sleep(forTimeInterval: seconds) }
                    state.withLock { $0.dirty = false }
                    sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                    continue
                }
                if stopped { return }
                wake.wait()
            }
        }
    }
}
