import NIOCore
import NIOEmbedded
@testable import KeywardServer
import Testing

/// `ListMethodRewriter` byte for byte: which bytes reach the parser, and which heads are `LIST`.
@Suite("Vault's LIST method over HTTP/1.1: the rewrite before the parser")
struct ListMethodRewriterTests {
    /// What the parser receives for `reads`, one read each, and the rewriter.
    private func parse(_ reads: [String]) throws -> (bytes: String, rewriter: ListMethodRewriter) {
        let rewriter = ListMethodRewriter()
        let channel = EmbeddedChannel(handler: rewriter)
        var out = ""
        for read in reads {
            try channel.writeInbound(ByteBuffer(string: read))
            while let part = try channel.readInbound(as: ByteBuffer.self) { out += String(buffer: part) }
        }
        _ = try channel.finish()
        return (out, rewriter)
    }

    /// Which of `count` heads were rewritten, in order.
    private func heads(_ rewriter: ListMethodRewriter, _ count: Int) -> [Bool] {
        (0..<count).map { _ in rewriter.takeRewritten() }
    }

    @Test("A LIST request reaches the parser as LINK and its head is marked; other bytes are untouched")
    func rewritesTheMethod() throws {
        let (bytes, rewriter) = try parse(["LIST /v1/transit/keys HTTP/1.1\r\nHost: a\r\nX-Note: LIST \r\n\r\n"])
        #expect(bytes == "LINK /v1/transit/keys HTTP/1.1\r\nHost: a\r\nX-Note: LIST \r\n\r\n")
        #expect(heads(rewriter, 2) == [true, false])
    }

    @Test("Pipelined requests: a body that reads LIST is left alone, the LIST request after it is rewritten")
    func followsContentLength() throws {
        let (bytes, rewriter) = try parse(["POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nLIST LIST GET /b HTTP/1.1\r\n\r\nLIST /c HTTP/1.1\r\n\r\n"])
        #expect(bytes == "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nLIST LIST GET /b HTTP/1.1\r\n\r\nLINK /c HTTP/1.1\r\n\r\n")
        #expect(heads(rewriter, 3) == [false, false, true])
    }

    @Test("A body split across reads, one starting with LIST, is left alone")
    func bodyAcrossReads() throws {
        let (bytes, rewriter) = try parse(["POST /a HTTP/1.1\r\ncontent-length:  7 \r\n\r\nab", "LIST ", "LIST /b HTTP/1.1\r\n\r\n"])
        #expect(bytes == "POST /a HTTP/1.1\r\ncontent-length:  7 \r\n\r\nabLIST LINK /b HTTP/1.1\r\n\r\n")
        #expect(heads(rewriter, 2) == [false, true])
    }

    @Test("Header lines split across reads are read whole: the Content-Length counts, the body after it is left alone")
    func headerAcrossReads() throws {
        let (bytes, rewriter) = try parse(["POST /a HTTP/1.1\r\nConte", "nt-Length: 5\r", "\n\r", "\nLIST LIST /b HTTP/1.1\r\n\r\n"])
        #expect(bytes == "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nLIST LINK /b HTTP/1.1\r\n\r\n")
        #expect(heads(rewriter, 2) == [false, true])
        // A Content-Length longer than the part of a split line that is kept: rewriting ends.
        let long = "POST /a HTTP/1.1\r\nContent-Length: " + String(repeating: "0", count: 70) + "5\r\n\r\nLIST LIST /b HTTP/1.1\r\n\r\n"
        let split = long.index(long.startIndex, offsetBy: 30)
        let (untouched, ended) = try parse([String(long[..<split]), String(long[split...])])
        #expect(untouched == long)
        #expect(heads(ended, 2) == [false, false])
    }

    @Test("A method split across reads is held until it can be read whole")
    func methodAcrossReads() throws {
        let (bytes, rewriter) = try parse(["GET /a HTTP/1.1\r\n\r\nLI", "S", "T /b HTTP/1.1\r\n\r\nCONN"])
        #expect(bytes == "GET /a HTTP/1.1\r\n\r\nLINK /b HTTP/1.1\r\n\r\n")
        #expect(heads(rewriter, 2) == [false, true])
    }

    @Test("Framing it cannot follow exactly (chunked, repeated or malformed Content-Length, folded lines, Upgrade, CONNECT) ends rewriting")
    func unknownFramingEndsRewriting() throws {
        let tails = "LIST /z HTTP/1.1\r\n\r\n"
        for head in ["POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                     "POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nxx",
                     "POST /a HTTP/1.1\r\nContent-Length: 2x\r\n\r\nxx",
                     "POST /a HTTP/1.1\r\nContent-Length: +2\r\n\r\nxx",
                     "GET /a HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
                     "GET /a HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
                     "CONNECT a:443 HTTP/1.1\r\n\r\n"] {
            let (bytes, rewriter) = try parse([head + tails])
            #expect(bytes == head + tails, "\(head)")
            #expect(heads(rewriter, 2) == [false, false], "\(head)")
        }
    }

    @Test("A client's own LINK stays LINK; long and empty-looking lines are read past")
    func ownLinkAndLongLines() throws {
        let long = "X-Long: " + String(repeating: "v", count: 500)
        let (bytes, rewriter) = try parse(["LINK /a HTTP/1.1\r\n\(long)\r\n\r\n\r\nLIST /b HTTP/1.1\r\n\r\n"])
        #expect(bytes == "LINK /a HTTP/1.1\r\n\(long)\r\n\r\n\r\nLINK /b HTTP/1.1\r\n\r\n")
        #expect(heads(rewriter, 2) == [false, true])
    }
}
