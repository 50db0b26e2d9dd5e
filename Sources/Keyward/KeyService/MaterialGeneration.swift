import Dispatch
import KeywardCrypto

/// Key material made where it does not hold anyone up.
///
/// RSA key generation takes from tens of milliseconds to seconds (RSA-4096). Run on the
/// caller's executor, which in `keyward serve` is a NIO event loop, it would stall every
/// connection on that loop; so slow specs are generated on a Dispatch thread and awaited.
/// Everything else is generated in place, where it costs microseconds.
enum MaterialGeneration {
    /// Fresh material of `spec`, held in a box so it can cross threads without a copy.
    static func generate(_ spec: KeySpec) async throws(KeywardError) -> MaterialBox {
        guard isSlow(spec) else {
            do { return MaterialBox(try KeyMaterial.generate(spec)) } catch { throw .crypto(error) }
        }
        let result: Result<MaterialBox, KeywardCryptoError> = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                do throws(KeywardCryptoError) {
                    continuation.resume(returning: .success(MaterialBox(try KeyMaterial.generate(spec))))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        do { return try result.get() } catch { throw .crypto(error) }
    }

    /// Specs whose generation is slow enough to move off the caller's executor.
    static func isSlow(_ spec: KeySpec) -> Bool {
        spec.rawValue.hasPrefix("RSA-")
    }
}
