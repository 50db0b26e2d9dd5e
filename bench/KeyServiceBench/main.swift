import Foundation
import Keyward
import KeywardCrypto
import KeywardStorage

// KeyService benchmarks (issue 3), release build, bounded loops.
//
//   KeyServiceBench create STORE N [CONCURRENCY]   create N AES-256-GCM keys; keys/s
//   KeyServiceBench encrypt STORE SECONDS [CONCURRENCY]  32-byte encrypts, audited; ops/s
//   KeyServiceBench open STORE                     open time, key count, RSS after touching 10,000 keys
//
// The store uses a key-file root of trust (STORE.key), created with the store.

func rssKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }
    return -1
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func openService(_ path: String) async throws -> KeyService {
    let keyFile = path + ".key"
    if !FileManager.default.fileExists(atPath: path) {
        if !FileManager.default.fileExists(atPath: keyFile) { try KeyFileRootOfTrust.generate(at: keyFile) }
        return try await KeyService.initialize(store: SQLiteKeyStore(path: path), root: KeyFileRootOfTrust(path: keyFile), actor: .owner("bench"))
    }
    return try await KeyService.open(store: SQLiteKeyStore(path: path), root: { (_) throws(KeywardError) in try KeyFileRootOfTrust(path: keyFile) })
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: KeyServiceBench create|encrypt|open STORE [N|SECONDS] [CONCURRENCY]")
    exit(2)
}
let mode = arguments[1]
let path = arguments[2]

switch mode {
case "create":
    let total = Int(arguments.count > 3 ? arguments[3] : "100000") ?? 100_000
    let concurrency = Int(arguments.count > 4 ? arguments[4] : "32") ?? 32
    let service = try await openService(path)
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var index = worker
                while index < total {
                    _ = try await service.createKey(CreateKeyRequest(tags: ["bench": "1"]), actor: .owner("bench"))
                    index += concurrency
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = seconds(since: start)
    print("create\tkeys=\(total)\tconcurrency=\(concurrency)\tseconds=\(String(format: "%.2f", elapsed))\tkeys_per_second=\(String(format: "%.0f", Double(total) / elapsed))\trss_kib=\(rssKiB())")

case "encrypt":
    let duration = Double(arguments.count > 3 ? arguments[3] : "5") ?? 5
    let concurrency = Int(arguments.count > 4 ? arguments[4] : "64") ?? 64
    let service = try await openService(path)
    let key = try await service.createKey(CreateKeyRequest(aliases: ["bench-\(UUID().uuidString.prefix(8))"]), actor: .owner("bench")).metadata.id.description
    let plaintext = [UInt8](repeating: 0x41, count: 32)
    let context: EncryptionContext = ["tenant": "acme"]
    _ = try await service.encrypt(plaintext, key: key, context: context, actor: .owner("bench"))
    let counts = try await withThrowingTaskGroup(of: Int.self) { group in
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(duration * 1000)))
        for _ in 0..<concurrency {
            group.addTask {
                var done = 0
                while ContinuousClock.now < deadline {
                    _ = try await service.encrypt(plaintext, key: key, context: context, actor: .owner("bench"))
                    done += 1
                }
                return done
            }
        }
        var total = 0
        for try await count in group { total += count }
        return total
    }
    print("encrypt\tconcurrency=\(concurrency)\tseconds=\(duration)\tops=\(counts)\tops_per_second=\(String(format: "%.0f", Double(counts) / duration))\trss_kib=\(rssKiB())")

case "open":
    let before = rssKiB()
    let start = ContinuousClock.now
    let service = try await openService(path)
    let opened = seconds(since: start)
    let rssOpen = rssKiB()
    // Touch up to 10,000 keys (the default cache bound) to show memory stays bounded.
    var cursor: KeyID? = nil
    var touched = 0
    while touched < 10_000 {
        let page = try await service.listKeys(after: cursor, limit: 1000, actor: .owner("bench"))
        for key in page.keys { _ = try await service.encrypt([1], key: key.metadata.id.description, actor: .owner("bench")); touched += 1 }
        guard let next = page.nextCursor else { break }
        cursor = next
    }
    let count = try await SQLiteKeyStore(path: path).keyCount()
    print("open\tkeys=\(count)\topen_seconds=\(String(format: "%.3f", opened))\trss_before_kib=\(before)\trss_after_open_kib=\(rssOpen)\ttouched=\(touched)\trss_after_touch_kib=\(rssKiB())\tfile_mib=\(((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) >> 20)")

default:
    print("unknown mode \(mode)")
    exit(2)
}
