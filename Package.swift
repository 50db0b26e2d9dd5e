// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Keyward",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "KeywardCrypto", targets: ["KeywardCrypto"]),
        .library(name: "KeywardStorage", targets: ["KeywardStorage"]),
        .library(name: "Keyward", targets: ["Keyward"]),
        .library(name: "KeywardHSM", targets: ["KeywardHSM"]),
        .executable(name: "keyward", targets: ["keyward"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // System libraries and tiny C shims only.
        .systemLibrary(
            name: "CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        .systemLibrary(
            name: "CPKCS11",
            pkgConfig: "p11-kit-1",
            providers: [.apt(["libp11-kit-dev"])]
        ),
        .target(name: "CSystemHardening"),
        // Bulk AEAD through the system's OpenSSL 3 (see docs/decisions/0001-aead-backend.md).
        .target(name: "COpenSSLAEAD", linkerSettings: [.linkedLibrary("crypto")]),

        // The Cryptographer: specs, generation, operations, KDFs, ciphertext format, SecretBytes.
        .target(
            name: "KeywardCrypto",
            dependencies: [
                "CArgon2",
                "CSystemHardening",
                "COpenSSLAEAD",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // Key Storage: sealed records in SQLite (GRDB); a PostgreSQL backend follows.
        .target(
            name: "KeywardStorage",
            dependencies: [
                "KeywardCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),

        // The Application: KeyService, lifecycle, audit, root of trust.
        .target(
            name: "Keyward",
            dependencies: [
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // PKCS#11 root of trust (an HSM; SoftHSM2 in tests).
        .target(
            name: "KeywardHSM",
            dependencies: ["CPKCS11", "Keyward", "KeywardCrypto"],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "keyward",
            dependencies: [
                "Keyward",
                "KeywardHSM",
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "KeywardBench",
            dependencies: [
                "KeywardCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "bench/KeywardBench",
            swiftSettings: strict
        ),

        .executableTarget(
            name: "KeyServiceBench",
            dependencies: ["Keyward", "KeywardCrypto", "KeywardStorage"],
            path: "bench/KeyServiceBench",
            swiftSettings: strict
        ),

        // Shared test fixtures (the Python oracle, hex helpers).
        .target(name: "KeywardTestSupport", path: "Tests/Support", swiftSettings: strict),

        .testTarget(
            name: "KeywardCryptoTests",
            dependencies: [
                "KeywardCrypto",
                "KeywardTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardTests",
            dependencies: [
                "Keyward",
                "KeywardTestSupport",
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardHSMTests",
            dependencies: ["KeywardHSM", "Keyward", "KeywardCrypto", "KeywardStorage"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardCLITests",
            dependencies: ["keyward", "Keyward", "KeywardCrypto", "KeywardStorage"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WycheproofTests",
            dependencies: ["KeywardCrypto", "KeywardTestSupport"],
            exclude: ["Vectors"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
