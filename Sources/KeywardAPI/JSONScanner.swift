/// A strict JSON reader (RFC 8259) for the hot request bodies: encrypt, decrypt, sign, MAC and
/// their batches. It reads a body into a small tree whose strings are byte ranges of the input,
/// without Foundation's `JSONDecoder`, which was the largest single cost of those requests.
///
/// It only ever answers for a well-formed document: `parse` returns nil for anything malformed
/// (and also for a string key with escapes, a duplicate key, nesting deeper than
/// `maximumDepth`), and a body type's fast initialiser returns nil for anything it does not
/// expect. Either way `BodyReader` then decodes the same bytes with `JSONDecoder`, which accepts
/// or refuses them and words the error; so the fast path can change speed, never an answer.
package struct JSONScanner {
    /// A parsed value. Strings are ranges into the input, quotes excluded.
    package indirect enum Node {
        /// A string without escapes.
        case string(Range<Int>)
        /// A string with escapes (never decoded here; a fast initialiser that needs it gives up).
        case escapedString
        case number
        case bool(Bool)
        case null
        case object([Member])
        case array([Node])
    }

    /// An object member: its key (a string without escapes) and value.
    package struct Member {
        package let key: Range<Int>
        package let value: Node
    }

    /// Deepest nesting of arrays and objects read.
    package static let maximumDepth = 32

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The document's value, or nil when it is not one well-formed JSON value (with optional
    /// surrounding whitespace) or holds what this reader leaves to `JSONDecoder`.
    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Node? {
        var scanner = JSONScanner(bytes)
        guard let node = scanner.value(depth: 0) else { return nil }
        scanner.skipWhitespace()
        return scanner.index == bytes.count ? node : nil
    }

    /// Whether the key at `range` equals `name` (ASCII).
    package static func key(_ range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>, is name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount else { return false }
        let expected = name.utf8Start
        var offset = 0
        for position in range {
            if bytes[position] != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) -> Node? {
        skipWhitespace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"): return depth < Self.maximumDepth ? object(depth: depth + 1) : nil
        case UInt8(ascii: "["): return depth < Self.maximumDepth ? array(depth: depth + 1) : nil
        case UInt8(ascii: "\""):
            guard let (range, escaped) = string() else { return nil }
            return escaped ? .escapedString : .string(range)
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default: return number() ? .number : nil
        }
    }

    private mutating func object(depth: Int) -> Node? {
        index += 1
        var members: [Member] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let (key, escaped) = string(), !escaped else { return nil }
            for member in members where member.key.count == key.count {
                if bytes[member.key].elementsEqual(bytes[key]) { return nil }
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            guard let value = value(depth: depth) else { return nil }
            members.append(Member(key: key, value: value))
            skipWhitespace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(members)
            default: return nil
            }
        }
    }

    private mutating func array(depth: Int) -> Node? {
        index += 1
        var elements: [Node] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            guard let element = value(depth: depth) else { return nil }
            elements.append(element)
            skipWhitespace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(elements)
            default: return nil
            }
        }
    }

    /// A string at `index` (on its opening quote): its content range and whether it has
    /// escapes. Checks escapes are well-formed, no control characters, and valid UTF-8.
    private mutating func string() -> (Range<Int>, Bool)? {
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                let range = start..<index
                index += 1
                return (range, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                guard index + 1 < bytes.count else { return nil }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    // Left to JSONDecoder (surrogate pairs and all): give up here.
                    return nil
                default: return nil
                }
            case 0x00..<0x20: return nil
            case 0x00..<0x80: index += 1
            default:
                guard let length = utf8Sequence(at: index) else { return nil }
                index += length
            }
        }
        return nil
    }

    /// The length of the well-formed UTF-8 sequence starting at `position`, or nil.
    private func utf8Sequence(at position: Int) -> Int? {
        let lead = bytes[position]
        let length: Int
        let minimum: UInt32
        var scalar: UInt32
        switch lead {
        case 0xC2...0xDF: (length, minimum, scalar) = (2, 0x80, UInt32(lead & 0x1F))
        case 0xE0...0xEF: (length, minimum, scalar) = (3, 0x800, UInt32(lead & 0x0F))
        case 0xF0...0xF4: (length, minimum, scalar) = (4, 0x10000, UInt32(lead & 0x07))
        default: return nil
        }
        guard position + length <= bytes.count else { return nil }
        for offset in 1..<length {
            let continuation = bytes[position + offset]
            guard continuation & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(continuation & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
        return length
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let expected = word.utf8Start
        for offset in 0..<count where bytes[index + offset] != expected[offset] { return false }
        index += count
        return true
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() -> Bool {
        func digits() -> Bool {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index > start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if !digits() {
            return false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() else { return false }
        }
        return true
    }
}
