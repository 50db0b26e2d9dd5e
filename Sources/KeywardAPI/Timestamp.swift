import Foundation

/// Timestamps on the wire: RFC 3339 `date-time` (`2027-01-31T12:00:00Z`, an optional fraction
/// of a second, `Z` or a `±hh:mm` offset), read strictly. Foundation's ISO 8601 reader rolls an
/// out-of-range field over (minute 99 becomes the next hour); this one refuses it, so a key
/// never expires at a time its caller did not write.
package enum Timestamp {
    /// The instant `text` names, or nil unless it is a valid RFC 3339 date-time (leap seconds,
    /// which Foundation cannot represent, are refused).
    package static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40 else { return nil }
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[start..<(start + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), bytes[4] == 0x2D, let month = number(5, 2), bytes[7] == 0x2D, let day = number(8, 2),
              bytes[10] == 0x54 || bytes[10] == 0x74, let hour = number(11, 2), bytes[13] == 0x3A, let minute = number(14, 2),
              bytes[16] == 0x3A, let second = number(17, 2) else { return nil }
        var index = 19
        var nanoseconds = 0
        if bytes[index] == 0x2E {
            index += 1
            let start = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            let digits = index - start
            guard (1...9).contains(digits), let fraction = number(start, digits) else { return nil }
            nanoseconds = fraction * Int(pow(10.0, Double(9 - digits)))
        }
        var offset = 0
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case 0x5A, 0x7A:
            guard index + 1 == bytes.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == bytes.count, let hours = number(index + 1, 2), bytes[index + 3] == 0x3A,
                  let minutes = number(index + 4, 2), hours <= 23, minutes <= 59 else { return nil }
            offset = (hours * 60 + minutes) * 60 * (bytes[index] == 0x2D ? -1 : 1)
        default:
            return nil
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        guard (1...12).contains(month), hour <= 23, minute <= 59, second <= 59,
              let first = calendar.date(from: DateComponents(year: year, month: month, day: 1)),
              let days = calendar.range(of: .day, in: .month, for: first), days.contains(day) else { return nil }
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanosecond: nanoseconds)
        guard let local = calendar.date(from: components) else { return nil }
        return local.addingTimeInterval(TimeInterval(-offset))
    }
}
