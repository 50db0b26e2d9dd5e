import KeywardCrypto

/// Where a verification's walk of the audit chain ended: the last entry walked, its chain hash,
/// and the revisions the chain anchors up to it. Kept in memory by the process that walked, it
/// lets a later verification of the same store walk only the entries appended since
/// (`KeyService.verifyStore(inBackground:resumingAfter:progress:)`), so that a server's periodic
/// verification costs what was written since the last one, not the size of the whole log.
///
/// Resuming trusts the entries already walked: an entry rewritten behind the point is found by
/// the next walk from the start (a server makes one every `fullVerifyIntervalSeconds`), not by
/// a resumed one. Entries removed from the log's end below the point are found by either.
///
/// A point is of one store (its id): offered to a verification of another, it is ignored and
/// the walk starts from the beginning.
public struct AuditWalkPoint: Sendable {
    /// The store whose log was walked.
    let store: KeyID
    /// The last entry walked.
    public let sequence: Int64
    /// Its chain hash, which the next entry must name as its predecessor.
    let hash: [UInt8]
    /// The revisions the chain anchors through `sequence`.
    let index: RevisionIndex
}
