import ArgumentParser
import Foundation
import KeywardClient
import Keyward
import KeywardCrypto
import KeywardStorage

/// A failure with the exit code the CLI documents.
struct CLIError: Error, CustomStringConvertible {
    enum Code: Int32 {
        case failure = 1, usage = 2, notFound = 3, integrity = 4, refused = 5, rootOfTrust = 6, verification = 7
    }

    let code: Code
    let description: String

    /// `--version` of verify and verify-mac with a server, which verifies against the key's versions itself.
    static let versionNeedsStore = CLIError(.usage, "--version is for a local store; a server verifies against the key's versions itself")

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// Maps library errors to exit codes, with what to do next at the command line.
    init(_ error: KeywardError) {
        switch error {
        case .keyNotFound: self.init(.notFound, error.description + "; `keyward key list` shows the keys")
        case .integrityFailure: self.init(.integrity, error.description + "; run `keyward verify` to see every damaged record")
        case .storeEmpty: self.init(.failure, error.description + "; create it with `keyward init`")
        case .storage(.alreadyInitialized): self.init(.failure, error.description + "; use another --store path")
        case .storage(.corrupted): self.init(.integrity, error.description + "; run `keyward verify`")
        case .wrongState, .keyDestroyed, .notPermitted, .versionUnavailable, .accessDenied: self.init(.refused, error.description)
        case .crypto(.wrongPurpose), .crypto(.unsupportedOperation): self.init(.refused, error.description)
        case .rootOfTrustRejected, .backupRejected, .unauthenticated: self.init(.rootOfTrust, error.description)
        default: self.init(.failure, error.description)
        }
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, printing errors as `keyward: message` and exiting with the documented code.
    func guarded(_ body: () async throws -> Void) async throws {
        try await runGuarded(body)
    }
}

/// Runs `body`, printing errors as `keyward: message` and exiting with the documented code.
func runGuarded(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        FileHandle.standardError.write(Data("keyward: \(error.description)\n".utf8))
        throw ExitCode(error.code.rawValue)
    } catch let error as KeywardError {
        let mapped = CLIError(error)
        FileHandle.standardError.write(Data("keyward: \(mapped.description)\n".utf8))
        throw ExitCode(mapped.code.rawValue)
    } catch let error as StorageError {
        FileHandle.standardError.write(Data("keyward: \(error.description)\n".utf8))
        throw ExitCode(CLIError.Code.failure.rawValue)
    } catch let error as KeywardClientError {
        FileHandle.standardError.write(Data("keyward: \(error.description)\n".utf8))
        let code: CLIError.Code
        switch error {
        case .api(_, 401, _), .api(_, 403, _): code = .refused
        case .api(_, 404, _): code = .notFound
        default: code = .failure
        }
        throw ExitCode(code.rawValue)
    } catch let error as KeywardCryptoError {
        FileHandle.standardError.write(Data("keyward: \(error.description)\n".utf8))
        throw ExitCode(CLIError.Code.failure.rawValue)
    }
}
