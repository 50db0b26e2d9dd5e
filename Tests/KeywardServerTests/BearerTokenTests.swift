import Testing
@testable import KeywardServer

@Suite("Authorization header parsing")
struct BearerTokenTests {
    @Test("the bearer scheme is matched without case, spaces after it are skipped, anything else is no token")
    func parsing() {
        #expect(AuthenticationMiddleware.bearerToken("Bearer kw_abc") == "kw_abc")
        #expect(AuthenticationMiddleware.bearerToken("bEaReR    kw_abc def") == "kw_abc def")
        #expect(AuthenticationMiddleware.bearerToken("BEARER x") == "x")
        for header in ["Bearer", "Bearer ", "Bearer     ", "Basic dXNlcjpwdw==", "Bearer\tkw_abc", "Bearerxkw_abc", "Beare kw_abc", "", "Bëarer kw"] {
            #expect(AuthenticationMiddleware.bearerToken(header) == nil, "\(header)")
        }
    }
}
