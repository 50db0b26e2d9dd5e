import Foundation
@_spi(Testing) import KeywardCrypto
import Synchronization
import KeywardTestSupport
import Testing

@Suite("SecretBytes and process hardening", .serialized)
struct SecretBytesTests {
    /// The VmFlags of the /proc/self/smaps entry that contains `address` (the kernel may merge
    /// neighbouring mappings with equal flags into one entry).
    func vmFlags(at address: UInt) throws -> [String] {
        let smaps = try String(decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data(), as: UTF8.self)
        var inEntry = false
        for line in smaps.split(separator: "\n") {
            let head = line.split(separator: " ", maxSplits: 1).first ?? ""
            let bounds = head.split(separator: "-")
            if bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) {
                inEntry = start <= address && address < end
            } else if inEntry && line.hasPrefix("VmFlags:") {
                return line.dropFirst(8).split(separator: " ").map(String.init)
            }
        }
        throw PythonOracle.Failure(description: "no smaps entry contains 0x\(String(address, radix: 16))")
    }

    @Test("the pages are locked (lo), excluded from core dumps (dd) and wiped on fork (wf)")
    func smapsFlags() throws {
        let secret = try SecretBytes.random(count: 32)
        let flags = try vmFlags(at: secret.mappingAddress)
        #expect(flags.contains("lo"), "not mlocked: \(flags)")
        #expect(flags.contains("dd"), "not MADV_DONTDUMP: \(flags)")
        #expect(flags.contains("wf"), "not MADV_WIPEONFORK: \(flags)")
    }

    @Test("the bytes are zero when released")
    func zeroAfterRelease() throws {
        let seen = Mutex<[UInt8]?>(nil)
        SecretBytes.releaseInspector.withLock { $0 = { buffer in seen.withLock { $0 = Array(buffer) } } }
        defer { SecretBytes.releaseInspector.withLock { $0 = nil } }
        do {
            let secret = try SecretBytes(copying: [UInt8](repeating: 0xA5, count: 100))
            let filled = secret.withSecretBytes(InsecureSecretAccess.token) { $0.allSatisfy { $0 == 0xA5 } }
            #expect(filled)
        }
        let released = seen.withLock { $0 }
        #expect(released != nil)
        #expect(released?.count ?? 0 >= 100)
        #expect(released?.allSatisfy { $0 == 0 } == true)
    }

    @Test("a description never shows the bytes; comparison is by value")
    func descriptionAndEquality() throws {
        let a = try SecretBytes(copying: Array("hunter2hunter2".utf8))
        let b = try SecretBytes(copying: Array("hunter2hunter2".utf8))
        let c = try SecretBytes(copying: Array("hunter2hunter3".utf8))
        #expect(a.description == "SecretBytes(14 bytes)")
        #expect(!a.description.contains("hunter"))
        let byValue = a.constantTimeEquals(b) && !a.constantTimeEquals(c)
        #expect(byValue)
        let prefixDiffers = !a.constantTimeEquals(Array("hunter2".utf8))
        #expect(prefixDiffers)
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
    }

    @Test("random secrets are distinct and of the asked length; a negative length is refused")
    func random() throws {
        let a = try SecretBytes.random(count: 32)
        let b = try SecretBytes.random(count: 32)
        let distinct = a.count == 32 && !a.constantTimeEquals(b)
        #expect(distinct)
        #expect(throws: KeywardCryptoError.self) { try SecretBytes(count: -1) { _ in } }
    }

    @Test("an initializer that throws leaves nothing mapped and passes its error on")
    func initializerFailure() {
        struct Boom: Error {}
        #expect(throws: Boom.self) { try SecretBytes(count: 16) { _ in throw Boom() } }
    }

    @Test("disableCoreDumps makes the process non-dumpable with RLIMIT_CORE 0")
    func coreDumpsOff() throws {
        try ProcessHardening.disableCoreDumps()
        #expect(!ProcessHardening.isDumpable)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
        #expect(limit.rlim_cur == 0 && limit.rlim_max == 0)
        let status = try String(decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/limits")).readToEnd() ?? Data(), as: UTF8.self)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Max core file size") && $0.contains(" 0 ") })
    }
}
