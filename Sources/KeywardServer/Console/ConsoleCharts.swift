import Foundation

/// The console's charts, as geometry the templates draw as SVG: positions and sizes computed
/// here, every label written by the template with HTML escaping. No script draws them.
enum ConsoleCharts {
    static let width = 880

    /// A time line of events (created, rotations, state changes, what is due), left to right.
    struct Timeline: Sendable {
        struct Mark: Sendable {
            var x: Int
            /// The label's baseline (labels take turns over three lanes so neighbours do not
            /// overlap), and the top of the line joining it to the axis.
            var labelY: Int
            var lineY: Int
            var label: String
            var when: String
            /// `past`, `future` or `now`: the CSS class of its marker.
            var kind: String
        }
        var width = ConsoleCharts.width
        var height = 150
        var axisY = 120
        var marks: [Mark]
        var start: String
        var end: String
    }

    /// `events` (time, label) on one axis from the first event to the last (or `now`), with
    /// `now` marked.
    static func timeline(_ events: [(at: Date, label: String)], now: Date) -> Timeline {
        let all = (events + [(now, "now")]).sorted { $0.at < $1.at }
        let first = all.first!.at
        let last = all.last!.at
        let span = max(last.timeIntervalSince(first), 60)
        let left = 40.0, right = Double(width - 140)
        var marks: [Timeline.Mark] = []
        for (index, event) in all.enumerated() {
            let x = Int(left + (right - left) * event.at.timeIntervalSince(first) / span)
            let lane = index % 3
            marks.append(Timeline.Mark(x: x, labelY: 30 + lane * 28, lineY: 36 + lane * 28, label: event.label, when: Self.stamp(event.at),
                                       kind: event.label == "now" ? "now" : event.at > now ? "future" : "past"))
        }
        return Timeline(marks: marks, start: stamp(first), end: stamp(last))
    }

    /// Bars of counts, one per bucket, with labels under some of them.
    struct Bars: Sendable {
        struct Bar: Sendable {
            var x: Int
            var y: Int
            var width: Int
            var height: Int
            /// What the bar stands for ("14:00: 37").
            var title: String
        }
        struct Label: Sendable {
            var x: Int
            var text: String
        }
        var width = ConsoleCharts.width
        var height = 180
        var baseY = 150
        var bars: [Bar]
        var labels: [Label]
        var maximum: Int
        var total: Int
    }

    /// `counts` as bars named by `names` (a label under every `labelEvery`-th bar).
    static func bars(_ counts: [Int], names: [String], labelEvery: Int) -> Bars {
        let maximum = max(counts.max() ?? 0, 1)
        let slot = Double(width - 60) / Double(max(counts.count, 1))
        var bars: [Bars.Bar] = []
        var labels: [Bars.Label] = []
        for (index, count) in counts.enumerated() {
            let x = 50 + Int(Double(index) * slot)
            let height = Int(130.0 * Double(count) / Double(maximum))
            bars.append(Bars.Bar(x: x, y: 150 - height, width: max(Int(slot) - 2, 1), height: height, title: "\(names[index]): \(count)"))
            if index % max(labelEvery, 1) == 0 { labels.append(Bars.Label(x: x, text: names[index])) }
        }
        return Bars(bars: bars, labels: labels, maximum: maximum, total: counts.reduce(0, +))
    }

    /// Lines over time, on one scale.
    struct Lines: Sendable {
        struct Series: Sendable {
            var name: String
            /// The CSS class of its stroke.
            var kind: String
            /// The SVG `points` of its polyline.
            var points: String
            var latest: String
        }
        var width = ConsoleCharts.width
        var height = 180
        var series: [Series]
        var maximum: String
        var start: String
        var end: String
        var empty: Bool
    }

    /// `series` (name, CSS class, values in time order with nil for gaps, unit) over `times`.
    static func lines(_ series: [(name: String, kind: String, values: [Double?])], times: [Date], unit: String) -> Lines {
        let maximum = max(series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0, 0.001)
        let count = max(times.count, 2)
        let drawn = series.map { item -> Lines.Series in
            var points: [String] = []
            for (index, value) in item.values.enumerated() {
                guard let value else { continue }
                let x = 50 + (width - 60) * index / (count - 1)
                let y = 150 - Int(130 * value / maximum)
                points.append("\(x),\(y)")
            }
            let latest = item.values.last.flatMap { $0 }.map { Self.figure($0) + " " + unit } ?? "-"
            return Lines.Series(name: item.name, kind: item.kind, points: points.joined(separator: " "), latest: latest)
        }
        return Lines(series: drawn, maximum: figure(maximum) + " " + unit, start: times.first.map(clock) ?? "", end: times.last.map(clock) ?? "",
                     empty: times.count < 2)
    }

    /// A figure with at most three significant digits after the point.
    static func figure(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.2f", value)
    }

    /// `2026-12-05 14:03 UTC`.
    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: date)
    }

    /// `14:03:05`.
    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }
}
