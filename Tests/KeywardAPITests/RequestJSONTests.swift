import Foundation
import KeywardTestSupport
import Testing
import KeywardAPI

/// The fast reader of hot request bodies (`JSONScanner` and the `FastJSONBody` initialisers)
/// must never change an answer: for any input, it either gives up or gives what `JSONDecoder`
/// gives.
@Suite("Request JSON fast path")
struct RequestJSONTests {
    /// What the fast path reads from `text`, or nil when it leaves it to JSONDecoder.
    static func fast<T: FastJSONBody>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        bytes.withUnsafeBufferPointer { T.read($0) }
    }

    static func decoded<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
        try? JSONDecoder.api.decode(T.self, from: Data(bytes))
    }

    @Test("plain bodies are read on the fast path with the values JSONDecoder gives")
    func plainBodies() throws {
        let encrypt = try #require(Self.fast(EncryptBody.self, Array(#"{"plaintext":"AQID","context":{"tenant":"a","ünï":"cödé"}}"#.utf8)))
        #expect(encrypt.plaintext.value == [1, 2, 3] && encrypt.context == ["tenant": "a", "ünï": "cödé"])
        let spaced = try #require(Self.fast(DecryptBody.self, Array(" {\n\t\"ciphertext\" : \"AAAA\" , \"context\" : {} }\r\n".utf8)))
        #expect(spaced.ciphertext.value == [0, 0, 0] && spaced.context == [:])
        // A null member is left to the slow path too, which refuses it (`UnknownFields`).
        #expect(Self.fast(DecryptBody.self, Array(#"{"ciphertext":"AAAA","context":null}"#.utf8)) == nil)
        // A member the body does not define is left to the slow path, which refuses it by name.
        #expect(Self.fast(DecryptBody.self, Array(#"{"ciphertext":"AAAA","extra":[1, -2.5e3, true, {"x": null}]}"#.utf8)) == nil)
        #expect(Self.fast(EncryptBody.self, Array(#"{"plaintext":"AQID","contxt":{"a":"b"}}"#.utf8)) == nil)
        let sign = try #require(Self.fast(SignBody.self, Array(#"{"digest":"AQ=="}"#.utf8)))
        #expect(sign.message == nil && sign.digest?.value == [1] && sign.context == nil)
        let batch = try #require(Self.fast(BatchBody<EncryptBody>.self, Array(#"{"items":[{"plaintext":""},{"plaintext":"AQI="}]}"#.utf8)))
        #expect(batch.items.map(\.plaintext.value) == [[], [1, 2]])
        #expect(Self.fast(MACBody.self, Array(#"{"message":"AQID"}"#.utf8))?.message.value == [1, 2, 3])
    }

    @Test("what the fast path leaves to JSONDecoder: escapes, duplicate keys, wrong types, missing fields, bad base64, bad UTF-8, trailing bytes, deep nesting")
    func leftToJSONDecoder() {
        let bodies = [
            #"{"plaintext":"AQ\/D"}"#, #"{"plaintext":"AQID","plaintext":"AAAA"}"#, #"{"plaintext":1}"#, #"{"context":{}}"#,
            #"{"plaintext":"AQI"}"#, #"{"plaintext":"AQID","context":{"a":1}}"#, #"{"plaintext":"AQID"} x"#, #"{"plaintext":"AQID",}"#,
            #"{"plaintext":"AQID","context":{"a":"\u0041"}}"#, #"[{"plaintext":"AQID"}]"#, #"{"plaintext":"AQID""#, "",
            #"{"plaintext":"AQID","x":01}"#, #"{"plaintext":"AQID","x":1.}"#, #"{"plaintext":"AQID","x":tru}"#,
            #"{"plaintext":"AQID","x":""# + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}",
            #"{"plaintext":"AQID","context":{"é":"1","é":"2"}}"#,
        ]
        for body in bodies {
            #expect(Self.fast(EncryptBody.self, Array(body.utf8)) == nil, "\(body)")
        }
        var invalidUTF8 = Array(#"{"plaintext":"AQID","context":{"a":"x"#.utf8)
        invalidUTF8 += [0xC3, 0x28] + Array(#""}}"#.utf8)
        #expect(Self.fast(EncryptBody.self, invalidUTF8) == nil)
        #expect(Self.decoded(EncryptBody.self, invalidUTF8) == nil)
    }

    @Test("thousands of mutated bodies: whenever the fast path answers, JSONDecoder decodes the same value")
    func mutationsAgree() {
        let seeds = [
            #"{"plaintext":"AQIDBA==","context":{"tenant":"acme","region":"eu"}}"#,
            #"{"ciphertext":"S1dDMQAAAAE=","context":{"k":"v","n":"2.5","e":""}}"#,
            #"{"ciphertext":"AAAA","context":null}"#,
            #"{"items":[{"plaintext":"AQ=="},{"plaintext":"AgM=","context":{"a":"b"}}]}"#,
        ]
        var generator = SplitMix(seed: 20261123)
        var answered = 0
        for seed in seeds {
            let original = Array(seed.utf8)
            for _ in 0..<2000 {
                var bytes = original
                for _ in 0...Int(generator.next() % 3) {
                    let position = Int(generator.next() % UInt64(bytes.count + 1))
                    let pool: [UInt8] = Array(#"{}[]:,"\ 0aA=+/-.eE"#.utf8) + [0x00, 0x7F, 0xC3, 0xA9, 0xFF]
                    let byte = pool[Int(generator.next() % UInt64(pool.count))]
                    switch generator.next() % 3 {
                    case 0 where position < bytes.count: bytes[position] = byte
                    case 1 where position < bytes.count: bytes.remove(at: position)
                    default: bytes.insert(byte, at: position)
                    }
                }
                answered += Self.agree(EncryptBody.self, bytes) { $0.plaintext.value == $1.plaintext.value && $0.context == $1.context }
                answered += Self.agree(DecryptBody.self, bytes) { $0.ciphertext.value == $1.ciphertext.value && $0.context == $1.context }
                answered += Self.agree(BatchBody<EncryptBody>.self, bytes) {
                    $0.items.map(\.plaintext.value) == $1.items.map(\.plaintext.value) && $0.items.map(\.context) == $1.items.map(\.context)
                }
            }
        }
        // The mutations leave some bodies valid, so the comparison ran on real answers.
        #expect(answered > 300, "only \(answered) mutated bodies were read on the fast path")
    }

    /// 1 when the fast path answered (and agreed), 0 when it gave up; records a disagreement.
    static func agree<T: FastJSONBody>(_ type: T.Type, _ bytes: [UInt8], _ same: (T, T) -> Bool) -> Int {
        guard let fast = fast(T.self, bytes) else { return 0 }
        guard let slow = decoded(T.self, bytes) else {
            Issue.record("fast path accepted what JSONDecoder refuses: \(String(decoding: bytes, as: UTF8.self))")
            return 1
        }
        if !same(fast, slow) { Issue.record("fast path and JSONDecoder disagree on \(String(decoding: bytes, as: UTF8.self))") }
        return 1
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("RFC 3339 date-times are read exactly, offsets and fractions included")
    func validTimestamps() throws {
        #expect(Timestamp.parse("2027-01-31T12:00:00Z") == Date(timeIntervalSince1970: 1_801_396_800))
        #expect(Timestamp.parse("2027-01-31T13:30:00+01:30") == Date(timeIntervalSince1970: 1_801_396_800))
        #expect(Timestamp.parse("2027-01-31t12:00:00.5z") == Date(timeIntervalSince1970: 1_801_396_800.5))
        #expect(Timestamp.parse("2028-02-29T00:00:00Z") != nil)
    }

    @Test("attack: an out-of-range field is refused, not rolled over into another instant")
    func outOfRangeRefused() {
        for text in ["2024-01-01T12:99:00Z", "2024-13-01T00:00:00Z", "2027-02-29T00:00:00Z", "2024-01-01T24:00:00Z",
                     "2024-01-01T00:00:60Z", "2024-01-01T00:00:00+24:00", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00",
                     "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00Zjunk", "+2024-01-01T00:00:00Z", ""] {
            #expect(Timestamp.parse(text) == nil, "\(text)")
        }
        #expect((try? JSONDecoder.api.decode(CreateKeyBody.self, from: Data(#"{"expiresAt":"2024-01-01T12:99:00Z"}"#.utf8))) == nil)
    }
}
