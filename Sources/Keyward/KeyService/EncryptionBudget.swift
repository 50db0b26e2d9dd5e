import Foundation
import KeywardCrypto
import KeywardStorage

/// Each key version's budget of random-nonce encryptions (AES-GCM and ChaCha20-Poly1305 must
/// stay well below 2^32 per key). Encryptions are reserved in the store in blocks before they
/// are used, so a crash never reuses a count; a process spends only the blocks it reserved
/// itself. The next block is reserved in the background once less than half a block remains,
/// so callers wait for a store write only when a block is used up before that write lands.
/// Past `limit` a reservation fails and the key must rotate (`KeyService.versionForEncryption`).
struct EncryptionBudget: Sendable {
    let records: KeyRepository
    /// Records each reservation, anchoring the version row's new revision.
    let auditor: Auditor
    /// Encryptions reserved per store write.
    let block: UInt64
    /// Encryptions a version may have reserved in all.
    let limit: UInt64

    /// What taking encryptions from a version's budget found.
    enum Take {
        /// Taken; `refill` when the remainder fell below half a block and the next block
        /// should be reserved now, before callers run out.
        case taken(refill: Bool)
        /// Fewer than asked for remain: a reservation must be written first.
        case exhausted
    }

    /// Takes `count` encryptions from `version`'s reserved budget, all or none.
    func take(_ count: UInt64, from version: LoadedVersion) -> Take {
        let lowWater = block / 2
        return version.budget.withLock { budget -> Take in
            guard budget.reserved - budget.used >= count else { return .exhausted }
            budget.used += count
            return .taken(refill: budget.reserved - budget.used < lowWater)
        }
    }

    /// Waits for a new block to be reserved for `version` (joining the reservation under way, if
    /// any). False when the version has reached its limit.
    func reserve(_ key: LoadedKey, _ version: LoadedVersion) async throws(KeywardError) -> Bool {
        let task = version.reservation.withLock { current -> Task<Bool, any Error> in
            if let current { return current }
            let task = startReservation(key, version)
            current = task
            return task
        }
        defer { version.reservation.withLock { if $0 == task { $0 = nil } } }
        do {
            return try await task.value
        } catch let error as KeywardError {
            throw error
        } catch {
            throw .storage(.database("\(error)"))
        }
    }

    private func startReservation(_ key: LoadedKey, _ version: LoadedVersion) -> Task<Bool, any Error> {
        Task { () async throws -> Bool in try await self.persistReservation(key, version) }
    }

    /// Starts writing the next reservation block unless one is being written; nobody waits for
    /// it here. A failure is left for the caller that finds the budget used up: it starts its
    /// own reservation and sees the error.
    func reserveAhead(_ key: LoadedKey, _ version: LoadedVersion) {
        let started = version.reservation.withLock { current -> Task<Bool, any Error>? in
            guard current == nil else { return nil }
            let task = startReservation(key, version)
            current = task
            return task
        }
        guard let started else { return }
        Task {
            _ = try? await started.value
            version.reservation.withLock { if $0 == started { $0 = nil } }
        }
    }

    /// Writes a larger reservation for `version`; false when that would pass the limit.
    private func persistReservation(_ key: LoadedKey, _ version: LoadedVersion) async throws(KeywardError) -> Bool {
        let id = key.row.id
        for attempt in 0..<8 {
            if attempt > 0 {
                // Another process won the row: wait a random few milliseconds (up to 1, 2, 4 ...
                // 32) before reading it again, so that two nodes reserving under one key do not
                // keep colliding in step. Only a lost race waits.
                try? await Task.sleep(for: .microseconds(Int.random(in: 100...(1_000 << min(attempt - 1, 5)))))
            }
            let fence = records.fence()
            guard let row = try await storing({ () async throws(StorageError) in try await records.store.version(id, version.number) }) else {
                throw .integrityFailure("version \(version.number) of key \(id) vanished")
            }
            var metadata = try records.verifiedVersion(row, of: id, version.number, fence)
            let newReserved = metadata.encryptionsReserved + block
            if newReserved > limit { return false }
            metadata.encryptionsReserved = newReserved
            let updated = try records.versionRow(keyID: id, version: version.number, sealed: row.sealed, metadata: metadata, revision: row.revision + 1)
            do throws(StorageError) {
                try await records.store.updateVersion(updated, expectedRevision: row.revision)
            } catch {
                if case .conflict = error { continue }
                throw .storage(error)
            }
            var event = auditor.event(.reserveEncryptions, caller: .system(.encryptionReservation), key: id, version: version.number)
            event.anchor(.version(id, version.number), updated.revision)
            event.detail = "\(newReserved) encryptions reserved"
            try await record(event)
            // Only what this process reserved itself is usable here: another process's block
            // is that process's to spend. When the stored reservation was this process's own
            // (the usual case), the new block extends the current one and what is left of the
            // current one stays usable; otherwise use starts at the new block.
            let blockStart = newReserved - block
            version.budget.withLock { budget in
                if blockStart != budget.reserved { budget.used = max(budget.used, blockStart) }
                budget.reserved = newReserved
            }
            return true
        }
        throw .storage(.conflict("version \(version.number) of key \(id) is being reserved elsewhere"))
    }

    /// Records a reservation whose row has committed. The block is in the store whether or not
    /// its entry is written, so an entry refused with `auditUnavailable` (several processes on
    /// one SQLite file can lose the race for the log's head for as long as the log tries) is
    /// tried twice more before the reservation fails; the block is then left unused.
    private func record(_ event: AuditEvent) async throws(KeywardError) {
        var attempts = 0
        while true {
            do throws(KeywardError) {
                try await auditor.record(event)
                return
            } catch .auditUnavailable where attempts < 2 {
                attempts += 1
            }
        }
    }
}
