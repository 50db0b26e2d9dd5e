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
///
/// The WAL is kept bounded. SQLite restarts it from its start only when a checkpoint has copied
/// every frame, and under steady load appends always land while the checkpoint runs, so the file
/// would grow for as long as the load lasts (about 25 MB/s at 10,000 audited requests/s). Once
/// the WAL holds more than `restartBytes` (256 MiB by default), the thread pauses appends for one
/// more checkpoint of the frames written since the last one (its two fsyncs are the pause, a few
/// to a few tens of milliseconds), so the next append restarts the WAL; the pause happens once
/// per `restartBytes` written.
final class WALCheckpointer: Sendable {
    private let worker: Worker
    private let thread = WorkerThread(name: "keyward-wal")

    /// Starts the thread, with its own connection to `path`; `appender` is paused for the
    /// catch-up checkpoint that lets the WAL restart.
    init(path: String, interval: Duration, appender: AuditAppender, restartBytes: Int) throws(StorageError) {
        let handle = try SQLiteConnection.open(path)
        do throws(StorageError) {
            // The checkpoint's fsyncs follow the connection's `synchronous` setting.
            try SQLiteConnection.execute(handle, "PRAGMA synchronous = FULL")
        } catch {
            sqlite3_close_v2(handle)
            throw error
        }
        worker = Worker(handle: handle, interval: interval, appender: appender, restartBytes: restartBytes)
        thread.start { [worker] stopping in worker.step(stopping) }
    }

    /// Runs a last checkpoint for what was committed, then ends the thread.
    deinit { thread.stop() }

    /// Entries were committed unsynced: a checkpoint runs within the interval.
    func committed() {
        worker.dirty.store(true, ordering: .releasing)
        thread.signal()
    }

    /// The thread's connection and what it checkpoints (the connection is used by the thread
    /// alone, and closed when it ends).
    private final class Worker: @unchecked Sendable {
        private let handle: OpaquePointer
        private let appender: AuditAppender
        private let restartFrames: Int32
        private let seconds: Double
        /// Entries were committed since the last checkpoint began.
        let dirty = Atomic<Bool>(false)

        init(handle: OpaquePointer, interval: Duration, appender: AuditAppender, restartBytes: Int) {
            self.handle = handle
            self.appender = appender
            let pageSize = (try? SQLiteConnection.pageSize(handle)) ?? 4096
            restartFrames = Int32(clamping: max(1, restartBytes) / (Int(pageSize) + 24))
            seconds = interval.seconds
        }

        func step(_ stopping: Bool) -> WorkerThread.Step {
            guard dirty.load(ordering: .acquiring) else {
                if stopping {
                    sqlite3_close_v2(handle)
                    return .finished
                }
                return .idle
            }
            // Waits out the interval (entries committed meanwhile ride along), then checkpoints
            // everything committed so far; when stopping, at once.
            if !stopping { Thread.sleep(forTimeInterval: seconds) }
            dirty.store(false, ordering: .releasing)
            var frames: Int32 = 0
            sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, nil)
            if frames > restartFrames {
                // Every frame copied while no append runs: the next append restarts the WAL.
                appender.pausingAppends {
                    _ = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                }
            }
            return .worked
        }
    }
}
