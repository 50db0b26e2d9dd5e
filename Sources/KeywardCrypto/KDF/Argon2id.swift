import CArgon2

/// Argon2id (RFC 9106) through Debian's reference libargon2.
///
/// This is the raw primitive with no cost policy; `PassphraseKDF` applies Keyward's minimums.
public enum Argon2id {
    /// Computes Argon2id (version 0x13).
    ///
    /// - Parameters:
    ///   - password: the passphrase bytes.
    ///   - salt: at least 8 bytes (the primitive's own minimum).
    ///   - secret: optional key K (RFC 9106 3.1); empty for none.
    ///   - associatedData: optional data X; empty for none.
    ///   - iterations: t, at least 1.
    ///   - memoryKiB: m in KiB, at least 8 × parallelism.
    ///   - parallelism: p, 1 to 2^24 − 1 (lanes; computed with `parallelism` threads).
    ///   - outputByteCount: at least 4.
    /// - Throws: `invalidParameter` with libargon2's own message when it refuses the parameters.
    public static func derive(
        password: UnsafeRawBufferPointer,
        salt: [UInt8],
        secret: [UInt8] = [],
        associatedData: [UInt8] = [],
        iterations: UInt32,
        memoryKiB: UInt32,
        parallelism: UInt32,
        outputByteCount: Int
    ) throws(KeywardCryptoError) -> SecretBytes {
        guard outputByteCount >= 4, outputByteCount <= 1024 else {
            throw .invalidParameter(name: "Argon2id output length", reason: "\(outputByteCount) bytes; choose 4 to 1024")
        }
        var status: Int32 = 0
        let output: SecretBytes
        do {
            output = try SecretBytes(count: outputByteCount) { out in
                var salt = salt, secret = secret, ad = associatedData
                status = salt.withUnsafeMutableBufferPointer { saltPtr in
                    secret.withUnsafeMutableBufferPointer { secretPtr in
                        ad.withUnsafeMutableBufferPointer { adPtr in
                            var context = argon2_context(
                                out: out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                outlen: UInt32(outputByteCount),
                                pwd: UnsafeMutablePointer(mutating: password.baseAddress?.assumingMemoryBound(to: UInt8.self)),
                                pwdlen: UInt32(password.count),
                                salt: saltPtr.baseAddress, saltlen: UInt32(saltPtr.count),
                                secret: secretPtr.count > 0 ? secretPtr.baseAddress : nil, secretlen: UInt32(secretPtr.count),
                                ad: adPtr.count > 0 ? adPtr.baseAddress : nil, adlen: UInt32(adPtr.count),
                                t_cost: iterations, m_cost: memoryKiB, lanes: parallelism, threads: parallelism,
                                version: UInt32(ARGON2_VERSION_13.rawValue),
                                allocate_cbk: nil, free_cbk: nil,
                                flags: 0)
                            return argon2_ctx(&context, Argon2_id)
                        }
                    }
                }
                if status != ARGON2_OK.rawValue {
                    throw KeywardCryptoError.invalidParameter(name: "Argon2id parameters", reason: String(cString: argon2_error_message(status)))
                }
            }
        } catch let error as KeywardCryptoError {
            throw error
        } catch {
            throw .primitiveFailure(operation: "Argon2id", reason: "\(error)")
        }
        return output
    }
}
