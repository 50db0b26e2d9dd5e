/// The rule for text callers name and describe things with (key descriptions, tag names and
/// values, principal names): no control characters. What one caller writes is shown to others
/// (the CLI, the console, logs), and an escape sequence in it would drive their terminal or
/// forge lines in a listing.
public enum PrintableText {
    /// Whether `scalar` is a control character (Unicode general category Cc: C0, DEL, C1).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.generalCategory == .control }

    /// `text` with every control character shown as `\u{1B}` rather than sent: for printing text
    /// from a store or a server (written before this rule, or by a server not under control) to
    /// a terminal.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var shown = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                shown += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                shown.unicodeScalars.append(scalar)
            }
        }
        return shown
    }

    /// Refuses `text` when it holds a control character (Unicode general category Cc: C0, DEL,
    /// C1); with `lineBreaks`, line feeds and tabs are allowed (a description may span lines).
    ///
    /// - Throws: `invalidArgument` naming `what` and the first such character, as `U+001B`.
    static func check(_ text: String, _ what: String, lineBreaks: Bool = false) throws(KeywardError) {
        for scalar in text.unicodeScalars where isControl(scalar) {
            if lineBreaks, scalar == "\n" || scalar == "\t" { continue }
            let code = String(scalar.value, radix: 16, uppercase: true)
            throw .invalidArgument("\(what) holds the control character U+\(String(repeating: "0", count: max(0, 4 - code.count)) + code); use printable text")
        }
    }
}
