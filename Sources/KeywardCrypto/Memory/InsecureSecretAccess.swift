/// Permission to read the bytes of a secret, as Tink's `InsecureSecretKeyAccess` is: the only
/// way to the bytes in a ``SecretBytes`` is ``SecretBytes/withSecretBytes(_:_:)``, which takes
/// this token. `grep -rn InsecureSecretAccess Sources` lists every place key bytes, passphrases
/// and shared secrets leave secure memory, so a reviewer reads each of them and nothing else.
public struct InsecureSecretAccess: Sendable {
    /// The token. Passing it says: the bytes are needed here, and this place has been reviewed.
    public static let token = InsecureSecretAccess()

    private init() {}
}
