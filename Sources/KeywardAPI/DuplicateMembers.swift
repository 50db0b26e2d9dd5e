import Foundation

/// The API refuses a JSON object that names a member twice (decision 0040). RFC 8259 leaves
/// such an object's meaning to the reader, and readers disagree: Foundation's decoders keep the
/// last value, many proxies, policy engines and logging filters read the first. A body such as
/// `{"plaintext":"AA==","plaintext":"AQ=="}` would then mean one thing to whatever inspected it
/// and another to Keyward.
///
/// `find` walks a document that has already parsed (so it is well-formed JSON; on anything
/// else it answers nil and never traps) and names the first member that repeats a name earlier
/// in the same object. Names are compared as the decoders compare them: escapes decoded, then
/// as Swift `String`s, so `"a"` and `"\u0061"`, or two canonically equivalent spellings of
/// `"é"`, are one name. It keeps its own stack rather than recursing, so nesting depth costs
/// memory, not the thread's stack. Runs on the slow path only: the fast readers
/// (`JSONScanner`, and the front ends' flat readers) give up on any repeated name.
package enum DuplicateMembers {
    /// The dotted path of the first repeated member (`plaintext`, `context.tenant`,
    /// `batch_input[1].plaintext`), or nil when every object names each member once.
    package static func find(in data: Data) -> String? {
        data.withUnsafeBytes { find(in: $0.bindMemory(to: UInt8.self)) }
    }

    /// The message a client reads for the member at `path`.
    package static func message(_ path: String) -> String {
        "field '\(path)' appears more than once; send each field once"
    }

    private enum Frame {
        case object(path: String, names: Set<String>, key: String?, expectingKey: Bool)
        case array(path: String, index: Int)

        /// The path of the value about to be read inside this frame.
        var childPath: String {
            switch self {
            case .object(let path, _, let key, _):
                let name = key ?? ""
                return path.isEmpty ? name : path + "." + name
            case .array(let path, let index):
                return "\(path)[\(index)]"
            }
        }
    }

    /// `find` over raw bytes.
    package static func find(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var stack: [Frame] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(path: stack.last?.childPath ?? "", names: [], key: nil, expectingKey: true))
                index += 1
            case UInt8(ascii: "["):
                stack.append(.array(path: stack.last?.childPath ?? "", index: 0))
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard !stack.isEmpty else { return nil }
                stack.removeLast()
                index += 1
            case UInt8(ascii: ","):
                guard let top = stack.popLast() else { return nil }
                switch top {
                case .object(let path, let names, _, _): stack.append(.object(path: path, names: names, key: nil, expectingKey: true))
                case .array(let path, let position): stack.append(.array(path: path, index: position + 1))
                }
                index += 1
            case UInt8(ascii: "\""):
                guard let (text, end) = string(bytes, from: index + 1) else { return nil }
                index = end
                // The frame is taken off the stack to be changed, so its set of names is changed
                // in place rather than copied for every member (quadratic in a wide object).
                if case .object(_, _, _, true)? = stack.last, case .object(let path, var names, _, _) = stack.removeLast() {
                    guard names.insert(text).inserted else { return path.isEmpty ? text : path + "." + text }
                    stack.append(.object(path: path, names: names, key: text, expectingKey: false))
                }
            default:
                // Whitespace, ':', numbers and literals carry no member names.
                index += 1
            }
        }
        return nil
    }

    /// The string whose contents start at `start` (just past its opening quote), escapes
    /// decoded, and the index just past its closing quote; nil when it does not end.
    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (String, Int)? {
        var index = start
        var decoded: [UInt8] = []
        var pendingHigh: UInt32?
        func append(_ scalar: UInt32) {
            UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { decoded.append($0) }
        }
        func flushHigh() {
            if pendingHigh != nil { append(0xFFFD); pendingHigh = nil }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flushHigh()
                return (String(decoding: decoded, as: UTF8.self), index + 1)
            }
            guard byte == UInt8(ascii: "\\") else {
                flushHigh()
                decoded.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { return nil }
            let escape = bytes[index + 1]
            index += 2
            if escape == UInt8(ascii: "u") {
                guard index + 4 <= bytes.count,
                      let unit = UInt32(String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<index + 4]), as: UTF8.self), radix: 16)
                else { return nil }
                index += 4
                if let high = pendingHigh, (0xDC00...0xDFFF).contains(unit) {
                    append(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
                    pendingHigh = nil
                } else {
                    flushHigh()
                    if (0xD800...0xDBFF).contains(unit) { pendingHigh = unit } else { append(unit) }
                }
                continue
            }
            flushHigh()
            switch escape {
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            default: decoded.append(escape)  // '"', '\\', '/'
            }
        }
        return nil
    }
}
