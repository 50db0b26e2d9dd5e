import Foundation
import KeywardAPI
import Testing

/// The writer's strings read back, through `JSONSerialization`, as the exact text written:
/// escapes at the start, the end and side by side, every control byte, and text that needs none.
@Suite("JSON writer")
struct JSONWriterTests {
    static func readBack(_ json: JSONWriter) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
    }

    @Test("strings with quotes, backslashes and control bytes anywhere read back as written; plain text is unchanged",
          arguments: ["", "plain ascii text", "\"", "\\", "\"at start", "at end\\", "\"\\\"\\", "a\nb\rc\td", "é 🔑 \u{7F}",
                      String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self), "mid\u{0}dle\u{1F}end \"quoted\" \\path\\"])
    func stringsReadBack(_ text: String) throws {
        var json = JSONWriter()
        json.object { json in json.member(text, text) }
        let object = try Self.readBack(json)
        #expect(object.count == 1)
        #expect(object[text] as? String == text)
    }

    @Test("a prefixed base64 member is the prefix, escaped, then the base64 of the bytes")
    func prefixedBase64() throws {
        let bytes: [UInt8] = [0, 1, 2, 250, 251, 252, 253, 254, 255, 7]
        var json = JSONWriter()
        json.object { json in
            json.member("ciphertext", prefix: "vault:v12:", base64: bytes)
            json.member("odd", prefix: "a\"b\\", base64: [])
        }
        let object = try Self.readBack(json)
        #expect(object["ciphertext"] as? String == "vault:v12:" + Data(bytes).base64EncodedString())
        #expect(object["odd"] as? String == "a\"b\\")
    }
}
