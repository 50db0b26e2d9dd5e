import Keyward

/// The `KeywardError` a throwing call ended with, or nil if it did not throw.
public func keywardError(_ body: () async throws(KeywardError) -> Void) async -> KeywardError? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}
