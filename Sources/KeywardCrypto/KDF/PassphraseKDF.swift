import Crypto
import CryptoExtras
import Foundation

/// The record stored beside a passphrase-derived key: which KDF, its salt and its costs.
/// Everything needed to derive the same key again, and nothing secret. Costs can be raised
/// later by deriving under new parameters and re-wrapping.
public struct KDFParameters: Sendable, Hashable, Codable {
    /// The KDF and its costs.
    public enum Algorithm: Sendable, Hashable, Codable {
        /// Argon2id (RFC 9106): memory in KiB, iterations t, parallelism p.
        case argon2id(memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32)
        /// scrypt (RFC 7914): cost N (a power of two), block size r, parallelism p.
        case scrypt(cost: Int, blockSize: Int, parallelism: Int)
        /// PBKDF2-HMAC-SHA-256 (RFC 8018), for FIPS settings.
        case pbkdf2SHA256(iterations: Int)
    }

    /// The KDF and its costs.
    public let algorithm: Algorithm
    /// The random salt, 16 to 64 bytes.
    public let salt: [UInt8]
    /// Length of the derived key; Keyward derives 32-byte AES-256 keys.
    public let outputByteCount: Int

    /// Parameters with an explicit salt.
    public init(algorithm: Algorithm, salt: [UInt8], outputByteCount: Int = 32) {
        self.algorithm = algorithm
        self.salt = salt
        self.outputByteCount = outputByteCount
    }

    /// The default: Argon2id with m = 64 MiB, t = 3, p = 4 (RFC 9106's second recommended
    /// option) and a fresh 16-byte salt.
    public static func argon2idDefault() -> KDFParameters {
        KDFParameters(algorithm: .argon2id(memoryKiB: 64 * 1024, iterations: 3, parallelism: 4), salt: randomSalt())
    }

    /// scrypt with N = 2^17, r = 8, p = 1 (OWASP's recommendation) and a fresh salt.
    public static func scryptDefault() -> KDFParameters {
        KDFParameters(algorithm: .scrypt(cost: 1 << 17, blockSize: 8, parallelism: 1), salt: randomSalt())
    }

    /// PBKDF2-HMAC-SHA-256 with 600,000 iterations (OWASP 2023) and a fresh salt; for
    /// deployments that must use FIPS-approved algorithms.
    public static func pbkdf2Default() -> KDFParameters {
        KDFParameters(algorithm: .pbkdf2SHA256(iterations: 600_000), salt: randomSalt())
    }

    /// 16 random bytes.
    public static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Keyward's minimums. Below these a derived key is refused, so a store cannot be created
    /// or opened with parameters an attacker could brute-force cheaply.
    public enum Minimum {
        /// Argon2id: 19 MiB, t = 2, p = 1 (OWASP's lowest recommended setting).
        public static let argon2idMemoryKiB: UInt32 = 19 * 1024
        public static let argon2idIterations: UInt32 = 2
        /// scrypt: N = 2^15, r = 8.
        public static let scryptCost = 1 << 15
        public static let scryptBlockSize = 8
        /// PBKDF2-HMAC-SHA-256: 600,000 iterations.
        public static let pbkdf2Iterations = 600_000
        /// Salt length in bytes.
        public static let saltBytes = 16
    }

    /// Keyward's maximums. KDF records arrive from outside (a backup bundle, a store header that
    /// anyone with the file can edit), so a record above these is refused before any derivation:
    /// no file can make Keyward allocate gigabytes or spin for hours.
    public enum Maximum {
        /// Argon2id: 1 GiB, t = 32, p = 16.
        public static let argon2idMemoryKiB: UInt32 = 1024 * 1024
        public static let argon2idIterations: UInt32 = 32
        public static let argon2idParallelism: UInt32 = 16
        /// scrypt: 128·N·r up to 1 GiB, p up to 16.
        public static let scryptMemoryBytes = 1 << 30
        public static let scryptParallelism = 16
        /// PBKDF2-HMAC-SHA-256: 10,000,000 iterations.
        public static let pbkdf2Iterations = 10_000_000
    }

    /// Throws `weakKDFParameters` naming the first cost below Keyward's minimum, or
    /// `invalidParameter` for values above Keyward's maximum or that the KDF cannot take.
    public func validate() throws(KeywardCryptoError) {
        guard salt.count >= Minimum.saltBytes, salt.count <= 64 else {
            throw .weakKDFParameters(reason: "salt is \(salt.count) bytes; use 16 to 64 random bytes")
        }
        guard outputByteCount >= 16, outputByteCount <= 64 else {
            throw .invalidParameter(name: "KDF output length", reason: "\(outputByteCount) bytes; choose 16 to 64")
        }
        switch algorithm {
        case .argon2id(let memory, let iterations, let parallelism):
            guard memory >= Minimum.argon2idMemoryKiB else {
                throw .weakKDFParameters(reason: "Argon2id memory \(memory) KiB is below \(Minimum.argon2idMemoryKiB) KiB")
            }
            guard iterations >= Minimum.argon2idIterations else {
                throw .weakKDFParameters(reason: "Argon2id iterations \(iterations) is below \(Minimum.argon2idIterations)")
            }
            guard (1...Maximum.argon2idParallelism).contains(parallelism) else {
                throw .invalidParameter(name: "Argon2id parallelism", reason: "\(parallelism); choose 1 to \(Maximum.argon2idParallelism)")
            }
            guard memory <= Maximum.argon2idMemoryKiB else {
                throw .invalidParameter(name: "Argon2id memory", reason: "\(memory) KiB; at most \(Maximum.argon2idMemoryKiB) KiB (1 GiB)")
            }
            guard iterations <= Maximum.argon2idIterations else {
                throw .invalidParameter(name: "Argon2id iterations", reason: "\(iterations); at most \(Maximum.argon2idIterations)")
            }
        case .scrypt(let cost, let blockSize, let parallelism):
            guard cost > 1, cost & (cost - 1) == 0 else {
                throw .invalidParameter(name: "scrypt cost", reason: "N = \(cost) must be a power of two")
            }
            guard cost >= Minimum.scryptCost, blockSize >= Minimum.scryptBlockSize else {
                throw .weakKDFParameters(reason: "scrypt N = \(cost), r = \(blockSize) is below N = 2^15, r = 8")
            }
            guard (1...Maximum.scryptParallelism).contains(parallelism), cost <= Maximum.scryptMemoryBytes, blockSize <= Maximum.scryptMemoryBytes,
                  128 * cost * blockSize <= Maximum.scryptMemoryBytes else {
                throw .invalidParameter(name: "scrypt parameters", reason: "p must be 1 to \(Maximum.scryptParallelism) and 128·N·r at most 1 GiB")
            }
        case .pbkdf2SHA256(let iterations):
            guard iterations >= Minimum.pbkdf2Iterations else {
                throw .weakKDFParameters(reason: "PBKDF2 iterations \(iterations) is below \(Minimum.pbkdf2Iterations)")
            }
            guard iterations <= Maximum.pbkdf2Iterations else {
                throw .invalidParameter(name: "PBKDF2 iterations", reason: "\(iterations); at most \(Maximum.pbkdf2Iterations)")
            }
        }
    }
}

/// Derives keys from passphrases (to wrap a store's KEK, or a passphrase-protected backup).
public enum PassphraseKDF {
    /// Derives the key that `parameters` describe from `passphrase`, after `validate()`.
    ///
    /// - Throws: `weakKDFParameters` / `invalidParameter` from `validate()`; `invalidParameter`
    ///   for an empty passphrase.
    public static func deriveKey(
        passphrase: borrowing SecretBytes, parameters: KDFParameters
    ) throws(KeywardCryptoError) -> SecretBytes {
        try parameters.validate()
        guard passphrase.count > 0 else {
            throw .invalidParameter(name: "passphrase", reason: "it is empty")
        }
        return try passphrase.withSecretBytes(InsecureSecretAccess.token) { (password) throws(KeywardCryptoError) -> SecretBytes in
            try derive(password: password, parameters: parameters)
        }
    }

    /// The same derivation without Keyward's minimums, for known-answer tests against published
    /// vectors with small costs. Never use it for real keys.
    @_spi(KnownAnswerTests)
    public static func derive(password: UnsafeRawBufferPointer, parameters: KDFParameters) throws(KeywardCryptoError) -> SecretBytes {
        switch parameters.algorithm {
        case .argon2id(let memory, let iterations, let parallelism):
            return try Argon2id.derive(
                password: password, salt: parameters.salt, iterations: iterations,
                memoryKiB: memory, parallelism: parallelism, outputByteCount: parameters.outputByteCount)
        case .scrypt(let cost, let blockSize, let parallelism):
            let key: SymmetricKey = try mapping(.invalidParameter(name: "scrypt parameters", reason: "refused by the primitive")) {
                try KDF.Scrypt.deriveKey(
                    from: password, salt: parameters.salt, outputByteCount: parameters.outputByteCount,
                    rounds: cost, blockSize: blockSize, parallelism: parallelism,
                    maxMemory: 128 * cost * blockSize * parallelism + 1024 * 1024)
            }
            return try SecretBytes(copyingBytesOf: key)
        case .pbkdf2SHA256(let iterations):
            let key: SymmetricKey = try mapping(.invalidParameter(name: "PBKDF2 parameters", reason: "refused by the primitive")) {
                try KDF.Insecure.PBKDF2.deriveKey(
                    from: password, salt: parameters.salt, using: .sha256,
                    outputByteCount: parameters.outputByteCount, unsafeUncheckedRounds: iterations)
            }
            return try SecretBytes(copyingBytesOf: key)
        }
    }
}
