import Foundation

/// One PEM block (RFC 7468): a label and base64 DER between BEGIN/END lines.
struct PEMBlock {
    let label: String
    let der: [UInt8]

    init(label: String, der: [UInt8]) {
        self.label = label
        self.der = der
    }

    init(parsing text: String) throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            throw KeywardCryptoError.invalidParameter(name: "PEM", reason: "no BEGIN line")
        }
        let label = String(lines[begin].dropFirst(11).dropLast(5))
        guard let end = lines[begin...].firstIndex(of: "-----END \(label)-----") else {
            throw KeywardCryptoError.invalidParameter(name: "PEM", reason: "no END line for \(label)")
        }
        guard let der = Data(base64Encoded: lines[(begin + 1)..<end].joined()) else {
            throw KeywardCryptoError.invalidParameter(name: "PEM", reason: "the body is not base64")
        }
        self.label = label
        self.der = [UInt8](der)
    }

    var pemString: String {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n"
    }
}
