import CSystemHardening
import Foundation
import Synchronization

/// Long-lived secret bytes: key material, derived keys, passphrases.
///
/// Invariants:
/// - The bytes live in locked (`mlock`, never swapped), non-dumpable (`MADV_DONTDUMP`),
///   wipe-on-fork (`MADV_WIPEONFORK`) anonymous memory: secrets up to 2 KiB in a chunk of a
///   shared 64 KiB arena of such pages (so thousands of keys fit the default 8 MiB
///   `RLIMIT_MEMLOCK`), larger ones in a page-aligned mapping of their own.
/// - The value is non-copyable: there is exactly one owner, and when it ends the pages are
///   zeroed with `explicit_bzero`, unlocked and unmapped.
/// - It never prints its contents: `description` shows only the length.
/// - Comparison is constant-time in the length.
///
/// Allocation costs system calls (mmap, mlock, madvise): make one per key, not per operation.
public struct SecretBytes: ~Copyable, @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let pooled: Bool
    /// The number of secret bytes.
    public let count: Int

    /// Allocates `count` bytes of locked memory and lets `initializer` fill them.
    ///
    /// - Throws: `KeywardCryptoError.secureMemoryUnavailable` when the memory cannot be mapped or
    ///   locked (raise `ulimit -l`, or run with `CAP_IPC_LOCK`); any error `initializer` throws,
    ///   after the pages are wiped and released.
    public init(
        count: Int,
        initializingWith initializer: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        guard count >= 0 else {
            throw KeywardCryptoError.invalidParameter(name: "count", reason: "must not be negative")
        }
        var mapped = 0
        var step: Int32 = 0
        var errorNumber: Int32 = 0
        let chunk = keyward_secure_chunk_size(count)
        let allocated: UnsafeMutableRawPointer?
        if chunk > 0 {
            allocated = keyward_secure_chunk_alloc(count, &step, &errorNumber)
            mapped = chunk
        } else {
            allocated = keyward_secure_alloc(count, &mapped, &step, &errorNumber)
        }
        guard let pointer = allocated else {
            let what = ["", "mmap", "mlock", "madvise(MADV_DONTDUMP)", "madvise(MADV_WIPEONFORK)"][Int(step)]
            throw KeywardCryptoError.secureMemoryUnavailable(
                reason: "\(what) failed with errno \(errorNumber); raise the locked-memory limit (ulimit -l) or grant CAP_IPC_LOCK"
            )
        }
        do {
            try initializer(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        } catch {
            SecretBytes.release(pointer, mapped: mapped, pooled: chunk > 0)
            throw error
        }
        self.base = pointer
        self.mappedLength = mapped
        self.pooled = chunk > 0
        self.count = count
    }

    /// Copies `bytes` into locked memory. The caller remains responsible for its own copy.
    public init(copying bytes: some Collection<UInt8>) throws(KeywardCryptoError) {
        do {
            try self.init(count: bytes.count) { buffer in
                _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw .secureMemoryUnavailable(reason: "\(error)")
        }
    }

    /// Copies the bytes of a swift-crypto key or shared secret (or any contiguous bytes) into
    /// locked memory.
    public init(copyingBytesOf source: some ContiguousBytes) throws(KeywardCryptoError) {
        let count = source.withUnsafeBytes { $0.count }
        do {
            try self.init(count: count) { buffer in
                source.withUnsafeBytes { if count > 0 { buffer.copyMemory(from: $0) } }
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw .secureMemoryUnavailable(reason: "\(error)")
        }
    }

    /// `count` bytes from the system's cryptographically secure random source.
    public static func random(count: Int) throws(KeywardCryptoError) -> SecretBytes {
        do {
            return try SecretBytes(count: count) { buffer in
                var generator = SystemRandomNumberGenerator()
                var offset = 0
                while offset < buffer.count {
                    var word = generator.next()
                    let n = Swift.min(8, buffer.count - offset)
                    Swift.withUnsafeBytes(of: &word) { wordBytes in
                        buffer.baseAddress!.advanced(by: offset).copyMemory(from: wordBytes.baseAddress!, byteCount: n)
                    }
                    word = 0
                    offset += n
                }
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw .secureMemoryUnavailable(reason: "\(error)")
        }
    }

    /// The one door to the bytes: calls `body` with read access to them. Do not let the pointer
    /// escape. The `access` argument is there to be grepped for: every place secret bytes leave
    /// `SecretBytes` names ``InsecureSecretAccess`` and is a place a reviewer checks.
    public func withSecretBytes<R: ~Copyable, E: Error>(_ access: InsecureSecretAccess, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Compares with `other` in time that depends only on the lengths.
    public func constantTimeEquals(_ other: borrowing SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return other.withSecretBytes(InsecureSecretAccess.token) { theirs in
            keyward_constant_time_equal(base, theirs.baseAddress, count) == 1
        }
    }

    /// Compares with `bytes` in time that depends only on the lengths.
    public func constantTimeEquals(_ bytes: some ContiguousBytes) -> Bool {
        bytes.withUnsafeBytes { theirs in
            ConstantTime.equals(UnsafeRawBufferPointer(start: base, count: count), theirs)
        }
    }

    deinit {
        keyward_zeroize(base, mappedLength)
        SecretBytes.releaseInspector.withLock { inspector in
            inspector?(UnsafeRawBufferPointer(start: base, count: mappedLength))
        }
        SecretBytes.release(base, mapped: mappedLength, pooled: pooled)
    }

    private static func release(_ base: UnsafeMutableRawPointer, mapped: Int, pooled: Bool) {
        if pooled { keyward_secure_chunk_free(base, mapped) } else { keyward_secure_free(base, mapped) }
    }

    /// Test hook: when set, called on every release with the whole mapping, after it has been
    /// zeroed and before it is unmapped, so a test can prove the wipe.
    @_spi(Testing)
    public static let releaseInspector = Mutex<(@Sendable (UnsafeRawBufferPointer) -> Void)?>(nil)

    /// Test hook: the start of the mapping, for `/proc/self/smaps` checks.
    @_spi(Testing)
    public var mappingAddress: UInt { UInt(bitPattern: base) }
}

extension SecretBytes {
    /// Only the length; never the bytes.
    public var description: String { "SecretBytes(\(count) bytes)" }
}

