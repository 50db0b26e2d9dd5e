import Foundation
import Keyward
import KeywardCrypto
import Synchronization
import X509

/// The client-certificate revocation lists of `tls.clientCRL`, each checked against the CAs of
/// `tls.clientCA` (`RevocationList`). The file is read at start (a bad one stops the server) and
/// again when it changes, looked at no more often than every `recheck`; a replacement that does
/// not verify is logged by the caller and the lists in force stay.
final class ClientRevocation: Sendable {
    private let path: String
    private let authorities: [Certificate]
    private let recheck: TimeInterval
    private let state: Mutex<(lists: [RevocationList], modified: Date?, checked: Date)>

    /// Reads `path`; `caPath` is the PEM bundle of `tls.clientCA`.
    init(path: String, caPath: String, recheck: TimeInterval = 5) throws(KeywardError) {
        let pem = try ProtectedFile.text(caPath, "the client CA") { KeywardError.invalidArgument($0) }
        var authorities: [Certificate] = []
        for block in pem.components(separatedBy: "-----END CERTIFICATE-----") where block.contains("-----BEGIN CERTIFICATE-----") {
            do { authorities.append(try Certificate(pemEncoded: block + "-----END CERTIFICATE-----")) } catch {
                throw .invalidArgument("the client CA \(caPath) holds a certificate that does not parse: \(error)")
            }
        }
        self.path = path
        self.authorities = authorities
        self.recheck = recheck
        let lists = try RevocationList.load(path: path, authorities: authorities)
        state = Mutex((lists, Self.modified(path), Date()))
    }

    /// Why a certificate of `issuer` with serial number `serial` must be refused, or nil.
    /// Refused: a serial the issuer's list revokes, and any certificate of an issuer whose list
    /// is past its next update (fail closed until a fresh list is installed).
    func refusal(serial: [UInt8], issuer: DistinguishedName, now: Date = Date()) throws(KeywardError) -> String? {
        try reloadIfChanged(now)
        let lists = state.withLock { $0.lists }
        for list in lists where list.issuer == issuer {
            if let due = list.nextUpdate, due < now {
                return "the revocation list of '\(issuer)' was due for renewal at \(due.formatted(.iso8601)); install a fresh one in tls.clientCRL"
            }
            if list.revoked.contains(serial) { return "the client certificate was revoked by '\(issuer)'" }
        }
        return nil
    }

    private func reloadIfChanged(_ now: Date) throws(KeywardError) {
        let due = state.withLock { (state) -> Bool in
            guard now.timeIntervalSince(state.checked) >= recheck else { return false }
            state.checked = now
            return true
        }
        guard due, let modified = Self.modified(path), modified != state.withLock({ $0.modified }) else { return }
        let lists = try RevocationList.load(path: path, authorities: authorities)
        state.withLock { $0 = (lists, modified, now) }
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}
