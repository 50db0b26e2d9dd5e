import Foundation
import KeywardCrypto
import KeywardStorage

/// Audit segments: runs of the audit log exported as signed files that anyone holding the
/// store's audit signing public key checks offline (`AuditSegment`, docs/formats.md).
extension KeyService {
    /// The alias of the store's audit signing key.
    public static let auditSignerAlias = "keyward/audit-signer"

    /// Most entries in one segment.
    public static let maximumSegmentEntries = 100_000

    /// Exports entries `after + 1` through `through` (or the newest, and at most
    /// `maximumSegmentEntries`) as a segment signed by the store's audit signing key (Ed25519,
    /// alias `keyward/audit-signer`, created on first use, never backed up). Needs `read-audit`
    /// on `*`. The entries' chain is checked as they are read: a store whose log was tampered
    /// with exports nothing.
    ///
    /// - Throws: `invalidArgument` for an empty range; `integrityFailure` naming the first broken
    ///   entry.
    public func exportAuditSegment(after: Int64, through: Int64? = nil, actor: Caller) async throws(KeywardError) -> AuditSegment {
        try await checkAdministration(.readAudit, actor: actor)
        guard after >= 0, through.map({ $0 > after }) ?? true else {
            throw .invalidArgument("a segment runs from an entry after \(after) to a later one, not to \(through.map(String.init) ?? "none")")
        }
        if let pruned = try await storing({ () async throws(StorageError) in try await store.auditCheckpoint() })?.sequence, after < pruned {
            throw .invalidArgument("audit entries through #\(pruned) were archived and removed from the store (audit retention); "
                                   + "export from #\(pruned) on, and find the older ones in the archive")
        }
        // Saturating: `after` comes from a request or a flag, and may be near Int64.max.
        let (ceiling, overflowed) = after.addingReportingOverflow(Int64(Self.maximumSegmentEntries))
        let last = min(through ?? .max, overflowed ? .max : ceiling)
        var entries: [AuditSegment.Entry] = []
        var lastHash: [UInt8]? = nil
        var cursor = after
        while cursor < last {
            let page = try await storing({ () async throws(StorageError) in try await store.auditEntries(after: cursor, limit: Int(min(1000, last - cursor))) })
            if page.isEmpty { break }
            for row in page {
                guard row.sequence == cursor + 1 else {
                    throw .integrityFailure("audit #\(cursor + 1) is missing from the store; nothing was exported (keyward audit verify names it)")
                }
                if let lastHash, row.previousHash != lastHash {
                    throw .integrityFailure("audit #\(row.sequence) does not follow #\(row.sequence - 1); nothing was exported")
                }
                guard AuditLog.chainHash(previous: row.previousHash, sequence: row.sequence, body: row.body) == row.hash else {
                    throw .integrityFailure("audit #\(row.sequence) was changed (hash mismatch); nothing was exported")
                }
                entries.append(AuditSegment.Entry(sequence: row.sequence, previousHash: AuditSegment.hex(row.previousHash),
                                                  hash: AuditSegment.hex(row.hash), body: AuditSegment.base64(row.body)))
                lastHash = row.hash
                cursor = row.sequence
            }
        }
        guard let first = entries.first, let start = AuditSegment.fromHex(first.previousHash) else {
            throw .invalidArgument("the audit log holds no entry after #\(after)")
        }
        if let through, cursor < through {
            throw .invalidArgument("the audit log ends at #\(cursor), before #\(through)")
        }
        let signer = try await auditSigningKey(actor: actor)
        let (header, headerLine, entryLines) = try AuditSegment.unsigned(store: self.header.storeID, entries: entries, previousHash: start,
                                                                       createdAt: clock.now, signer: signer)
        let signature = try await sign(.message(headerLine), key: signer.id.description, actor: actor.internalStep)
        guard signature.version == signer.version else {
            throw .storeState("the audit signing key was rotated while the segment was written; export it again")
        }
        return AuditSegment(header: header, headerLine: headerLine, entries: entries, entryLines: entryLines, signature: signature.signature)
    }

    /// The public key that signs this store's audit segments (Ed25519, alias
    /// `keyward/audit-signer`), created on first use; whoever checks segments offline pins it.
    /// Needs `read-audit` on `*`.
    public func auditSigner(actor: Caller) async throws(KeywardError) -> PublicKey {
        try await checkAdministration(.readAudit, actor: actor)
        return try await auditSigningKey(actor: actor).publicKey
    }

    func auditSigningKey(actor: Caller) async throws(KeywardError) -> (id: KeyID, version: UInt32, publicKey: PublicKey) {
        try await storeSigningKey(alias: Self.auditSignerAlias, description: "signs this store's exported audit segments", what: "audit segments", actor: actor)
    }
}
