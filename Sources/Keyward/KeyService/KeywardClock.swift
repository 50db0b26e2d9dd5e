import Foundation
import Synchronization

/// Where `KeyService` reads the time: rotation schedules, destruction dates, audit entries.
/// Injectable, so tests can move time forward.
public protocol KeywardClock: Sendable {
    /// The current time.
    var now: Date { get }
}

/// The system's wall clock.
public struct SystemClock: KeywardClock {
    /// The system clock.
    public init() {}
    /// The current wall-clock time.
    public var now: Date { Date() }
}

/// A clock that moves only when told to, for tests.
public final class ManualClock: KeywardClock {
    private let current: Mutex<Date>
    /// Starts at `start`.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Mutex(start) }
    /// The clock's current time.
    public var now: Date { current.withLock { $0 } }
    /// Moves the clock forward by `interval` seconds.
    public func advance(by interval: TimeInterval) { current.withLock { $0 += interval } }
}
