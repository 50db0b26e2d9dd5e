import Foundation
import KeywardTestSupport
import Testing

/// One Wycheproof file, loaded from `Vectors/` beside this source file (copied from C2SP/wycheproof,
/// Apache-2.0; see Vectors/LICENSE).
struct VectorFile {
    let name: String
    let groups: [[String: Any]]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    init(_ name: String) throws {
        self.name = name
        let data = try Data(contentsOf: Self.directory.appendingPathComponent(name))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        self.groups = object?["testGroups"] as? [[String: Any]] ?? []
    }

    static var allNames: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.filter { $0.hasSuffix(".json") }.sorted() ?? []
    }
}

/// What a run of one file found.
struct Tally: CustomStringConvertible {
    let file: String
    var accepted = 0          // valid cases accepted
    var rejected = 0          // invalid cases rejected
    var acceptable = 0        // `acceptable` cases, either outcome allowed
    var skipped: [String] = []
    var failures: [String] = []

    var description: String {
        var line = "\(file): \(accepted) valid accepted, \(rejected) invalid rejected, \(acceptable) acceptable, \(skipped.count) skipped, \(failures.count) failed"
        if !skipped.isEmpty {
            let reasons = Dictionary(grouping: skipped, by: { $0.components(separatedBy: ": ").dropFirst().joined(separator: ": ") })
            for (reason, cases) in reasons.sorted(by: { $0.key < $1.key }) {
                line += "\n    skipped \(cases.count): \(reason) (tcId \(cases.map { $0.components(separatedBy: ":")[0] }.prefix(12).joined(separator: ","))\(cases.count > 12 ? ",…" : ""))"
            }
        }
        for failure in failures.prefix(20) { line += "\n    FAILED \(failure)" }
        return line
    }

    /// Records the outcome of one case. `outcome` is true when Keyward accepted (the operation
    /// succeeded with the expected output), false when it rejected (threw, or returned a
    /// different output / false).
    mutating func record(_ test: [String: Any], accepted outcome: Bool, detail: String = "") {
        let id = test["tcId"] as? Int ?? -1
        switch test["result"] as? String {
        case "valid":
            if outcome { accepted += 1 } else { failures.append("tcId \(id) (valid) was rejected \(detail) \(test["comment"] ?? "")") }
        case "invalid":
            if !outcome { rejected += 1 } else { failures.append("tcId \(id) (invalid) was accepted \(test["comment"] ?? "")") }
        default:
            acceptable += 1
        }
    }

    mutating func skip(_ test: [String: Any], _ reason: String) {
        skipped.append("\(test["tcId"] as? Int ?? -1): \(reason)")
    }

    var total: Int { accepted + rejected + acceptable + skipped.count + failures.count }
}

extension Dictionary where Key == String, Value == Any {
    func hex(_ key: String) -> [UInt8] { [UInt8](hexString: self[key] as? String ?? "") }
    func int(_ key: String) -> Int { self[key] as? Int ?? Int(self[key] as? String ?? "") ?? -1 }
    func string(_ key: String) -> String { self[key] as? String ?? "" }
    var tests: [[String: Any]] { self["tests"] as? [[String: Any]] ?? [] }
    var isValid: Bool { self["result"] as? String == "valid" }
}

