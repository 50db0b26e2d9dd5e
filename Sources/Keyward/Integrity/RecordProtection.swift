import Foundation
import KeywardCrypto
import KeywardStorage

/// The storage KEK and the keys derived from it, which protect every record:
/// - key versions are sealed with the KEK itself, in Keyward's ciphertext format, with the
///   context `{kind, store, key, version, spec, purpose}` as AAD, so a sealed blob moved to
///   another row, key, version or store does not open;
/// - mutable rows (keys, versions' metadata, aliases, the header) carry an HMAC-SHA-256 under a
///   key derived from the KEK with HKDF (info `keyward/v1/metadata-mac`) over their identity,
///   revision and body;
/// - audit batches are MAC'd under a second derived key (info `keyward/v1/audit-mac`), over the
///   chain hash and the revision index's digest;
/// - the revision index's elements are MACs under a third (info `keyward/v1/revision-anchor`).
final class RecordProtection: Sendable {
    let storeID: KeyID
    let kekID: KeyID
    private let kek: KeyMaterial
    private let metadataKey: KeyMaterial
    private let auditKey: KeyMaterial
    private let anchorKey: KeyMaterial

    init(storeID: KeyID, kekID: KeyID, kek: consuming SecretBytes) throws(KeywardError) {
        self.storeID = storeID
        self.kekID = kekID
        do {
            let metadata = try kek.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in
                try KeyDerivation.hkdf(.sha256, inputKeyMaterial: raw, salt: storeID.bytes, info: Array("keyward/v1/metadata-mac".utf8), outputByteCount: 32)
            }
            let audit = try kek.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in
                try KeyDerivation.hkdf(.sha256, inputKeyMaterial: raw, salt: storeID.bytes, info: Array("keyward/v1/audit-mac".utf8), outputByteCount: 32)
            }
            let anchor = try kek.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> SecretBytes in
                try KeyDerivation.hkdf(.sha256, inputKeyMaterial: raw, salt: storeID.bytes, info: Array("keyward/v1/revision-anchor".utf8), outputByteCount: 32)
            }
            self.anchorKey = try KeyMaterial(spec: .hmacSHA256, secret: anchor)
            self.metadataKey = try KeyMaterial(spec: .hmacSHA256, secret: metadata)
            self.auditKey = try KeyMaterial(spec: .hmacSHA256, secret: audit)
            self.kek = try KeyMaterial(spec: .aes256GCM, secret: kek)
        } catch {
            throw .crypto(error)
        }
    }

    // MARK: Key versions

    private func versionContext(keyID: KeyID, version: UInt32, spec: KeySpec) -> EncryptionContext {
        ["kind": "key-version", "store": storeID.description, "key": keyID.description,
         "version": String(version), "spec": spec.rawValue, "purpose": spec.purpose.rawValue]
    }

    /// Seals a version's material under the KEK.
    func seal(_ material: borrowing KeyMaterial, keyID: KeyID, version: UInt32) throws(KeywardError) -> [UInt8] {
        do {
            return try material.secret.withSecretBytes(InsecureSecretAccess.token) { (raw) throws(KeywardCryptoError) -> [UInt8] in
                try kek.seal(raw, keyID: kekID, version: 1, context: versionContext(keyID: keyID, version: version, spec: material.spec))
            }
        } catch {
            throw .crypto(error)
        }
    }

    /// Opens a version's sealed material; any mismatch (other key, version, spec, store, KEK,
    /// altered bytes) is an integrity failure.
    func open(_ sealed: [UInt8], keyID: KeyID, version: UInt32, spec: KeySpec) throws(KeywardError) -> KeyMaterial {
        do {
            var plain = try kek.open(sealed, keyID: kekID, version: 1, context: versionContext(keyID: keyID, version: version, spec: spec))
            defer { SecureZero.wipe(&plain) }
            return try KeyMaterial(spec: spec, importing: plain)
        } catch {
            throw .integrityFailure("the sealed material of version \(version) of key \(keyID) does not open (altered, moved from another row, or sealed under another KEK)")
        }
    }

    // MARK: MACs

    func mac(_ parts: [[UInt8]]) throws(KeywardError) -> [UInt8] {
        do { return try metadataKey.mac(Self.frame(parts)) } catch { throw .crypto(error) }
    }

    func check(_ tag: [UInt8], _ parts: [[UInt8]], what: @autoclosure () -> String) throws(KeywardError) {
        let valid: Bool
        do { valid = try metadataKey.verifyMAC(tag, for: Self.frame(parts)) } catch { throw .crypto(error) }
        guard valid else { throw .integrityFailure("\(what()) fails its MAC (edited, swapped or forged row)") }
    }

    /// Whether `tag` is the MAC of `parts` (a failure of the primitive counts as no).
    func verifies(_ tag: [UInt8], _ parts: [[UInt8]]) -> Bool {
        (try? metadataKey.verifyMAC(tag, for: Self.frame(parts))) ?? false
    }

    /// A batch's MAC: over its last chain hash and the revision index's digest after the batch.
    func auditMAC(_ hash: [UInt8], _ digest: RevisionIndex.Digest) throws(KeywardError) -> [UInt8] {
        do { return try auditKey.mac(hash + digest.bytes) } catch { throw .crypto(error) }
    }

    func checkAuditMAC(_ tag: [UInt8], _ hash: [UInt8], _ digest: RevisionIndex.Digest) -> Bool {
        (try? auditKey.verifyMAC(tag, for: hash + digest.bytes)) ?? false
    }

    /// One revision-index row's element of the index digest.
    func anchorElement(_ row: RevisionAnchorRow) throws(KeywardError) -> [UInt8] {
        do {
            return try anchorKey.mac(Self.frame([row.record, Self.bytes(row.revision), [row.deleted ? 1 : 0]]))
        } catch {
            throw .crypto(error)
        }
    }

    /// Length-prefixed concatenation, so that field boundaries cannot shift.
    static func frame(_ parts: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(parts.reduce(0) { $0 + 4 + $1.count })
        for part in parts {
            let n = UInt32(part.count)
            out += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            out += part
        }
        return out
    }

    static func bytes(_ value: Int64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    static func bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
}

