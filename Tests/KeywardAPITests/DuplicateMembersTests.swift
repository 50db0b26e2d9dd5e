import Foundation
import KeywardTestSupport
import Testing
import KeywardAPI

/// `DuplicateMembers` names a member an object gives twice, however its name is spelt, and
/// nothing else.
@Suite("Duplicate JSON members")
struct DuplicateMembersTests {
    static func find(_ text: String) -> String? { DuplicateMembers.find(in: Data(text.utf8)) }

    @Test("a repeated member is named by its path: at the top, inside a map, inside an array's object")
    func repeatedMembersNamed() {
        #expect(Self.find(#"{"plaintext":"AA==","plaintext":"AQ=="}"#) == "plaintext")
        #expect(Self.find(#"{"plaintext":"AQ==","context":{"tenant":"a","tenant":"b"}}"#) == "context.tenant")
        #expect(Self.find(#"{"items":[{"plaintext":"AQ=="},{"plaintext":"AQ==","plaintext":"Ag=="}]}"#) == "items[1].plaintext")
        #expect(Self.find(#"{"a":[[1,2],{"b":{"c":1,"c":2}}]}"#) == "a[1].b.c")
        // A repeat of a different type is a repeat all the same.
        #expect(Self.find(#"{"plaintext":1,"plaintext":"AQ=="}"#) == "plaintext")
        #expect(Self.find(" {\n \"x\" : 1 ,\t\"x\" : 2 } ") == "x")
    }

    @Test("attack: a name spelt two ways is one name: escapes, surrogate pairs, canonically equivalent forms")
    func spellingsAreOneName() {
        #expect(Self.find(#"{"plaintext":"AA==","pl\u0061intext":"AQ=="}"#) == "plaintext")
        #expect(Self.find(#"{"a\/b":1,"a/b":2}"#) == "a/b")
        #expect(Self.find(#"{"x\"y":1,"x\u0022y":2}"#) == "x\"y")
        #expect(Self.find(#"{"😀":1,"\ud83d\ude00":2}"#) == "😀")
        // "é" precomposed (U+00E9) and decomposed (e + U+0301): one Swift String.
        #expect(Self.find("{\"context\":{\"\u{E9}\":\"1\",\"e\u{301}\":\"2\"}}") == "context.\u{E9}")
        #expect(Self.find(#"{"context":{"\u00e9":"1","e\u0301":"2"}}"#) == "context.é")
    }

    @Test("no false repeats: one name in sibling or nested objects, names as values, structure inside strings")
    func distinctMembersPass() {
        let bodies = [
            #"{"items":[{"plaintext":"AQ=="},{"plaintext":"Ag=="}]}"#,
            #"{"a":{"a":{"a":1}}}"#,
            #"{"a":"a","b":["a","a"],"c":{"d":"a"}}"#,
            #"{"a":"}\",{\"a\":1,","b":"\\","c":"{\"a\":2}"}"#,
            #"{"x":1,"X":2,"x ":3,"\u0078y":4}"#,
            #"[1,"a",{"a":1},{"a":2},[]]"#,
            #"{}"#, "[]", #""s""#, "null", "",
        ]
        for body in bodies { #expect(Self.find(body) == nil, "\(body)") }
    }

    @Test("malformed and mutated documents never trap, and a repeat is found however deep")
    func malformedInputIsSafe() {
        for text in [#"{"a":1,"a"#, #"{"a"#, #"{"\u12"#, #"{"\"#, "}}]]", #"{"a":1,"#, "{{{{", #"{"a":1}}}"a":2"#] {
            _ = Self.find(text)
        }
        // A wide object (a body's worth of members) is read in one pass, the last member repeated.
        let wide = "{" + (0..<60_000).map { "\"m\($0)\":1" }.joined(separator: ",") + ",\"m7\":2}"
        #expect(Self.find(wide) == "m7")
        let deep = String(repeating: #"{"k":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(Self.find(deep) == nil)
        let deepRepeat = String(repeating: #"{"k":"#, count: 3) + #"{"z":1,"z":2}"# + String(repeating: "}", count: 3)
        #expect(Self.find(deepRepeat) == "k.k.k.z")
        var generator = SplitMix(seed: 20261207)
        let seed = Array(#"{"a":[{"b":"\u0063","c":{"d":"x\"y"}}],"e":"\ud83d\ude00"}"#.utf8)
        let pool: [UInt8] = Array(#"{}[]:,"\ u0aA"#.utf8) + [0x00, 0xC3, 0xA9, 0xFF]
        for _ in 0..<5000 {
            var bytes = seed
            for _ in 0...Int(generator.next() % 4) {
                let position = Int(generator.next() % UInt64(bytes.count + 1))
                let byte = pool[Int(generator.next() % UInt64(pool.count))]
                if position < bytes.count, generator.next() % 2 == 0 { bytes[position] = byte } else { bytes.insert(byte, at: position) }
            }
            _ = DuplicateMembers.find(in: Data(bytes))
        }
    }
}
