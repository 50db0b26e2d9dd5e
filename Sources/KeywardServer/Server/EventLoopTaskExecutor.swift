import NIOCore

/// A Swift concurrency task executor that runs its jobs on one NIO event loop.
///
/// Invariant: every job enqueued here runs on `loop`'s thread, in the order enqueued. A job
/// enqueued from that thread is appended to the loop's queue without a wake-up; from any other
/// thread it costs the loop's usual cross-thread wake (one `eventfd` write).
final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop the jobs run on.
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
