/// Text from a store or a server, made safe to print to a terminal: every control character
/// (Unicode general category Cc) is shown as `\u{1B}` rather than sent, so a description or a
/// principal name cannot carry an escape sequence into the reader's terminal or forge a line of
/// output. The library refuses such characters in new text; this covers stores written before
/// that, and servers this CLI does not control.
enum TerminalText {
    /// `text` with its control characters escaped.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var shown = ""
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                shown += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                shown.unicodeScalars.append(scalar)
            }
        }
        return shown
    }
}
