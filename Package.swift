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
        .library(name: "KeywardServer", targets: ["KeywardServer"]),
        .library(name: "KeywardAPI", targets: ["KeywardAPI"]),
        .library(name: "KeywardClient", targets: ["KeywardClient"]),
        .library(name: "KeywardTesting", targets: ["KeywardTesting"]),
        .library(name: "KeywardServerTesting", targets: ["KeywardServerTesting"]),
        .executable(name: "keyward", targets: ["keyward"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // The HTTPS front end and the client SDK only; the library targets stay free of NIO.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The PostgreSQL store (KeywardPostgres) only.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // The web console's server-rendered templates (KeywardServer only).
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // System libraries and tiny C shims only.
        .systemLibrary(
            name: "CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        // libpq: the audit writer's blocking connection to PostgreSQL (decision 0035).
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CPKCS11",
            pkgConfig: "p11-kit-1",
            providers: [.apt(["libp11-kit-dev"])]
        ),
        .target(name: "CSystemHardening"),
        // Bulk AEAD through the system's OpenSSL 3 (see docs/decisions/0001-aead-backend.md).
        .target(name: "COpenSSLAEAD", linkerSettings: [.linkedLibrary("crypto")]),
        // Ed25519 and P-256 signing through swift-crypto's BoringSSL without re-deriving the
        // public key per signature (see docs/decisions/0012-signing-without-key-rederivation.md).
        .target(name: "CBoringSSLDirect"),

        // The Cryptographer: specs, generation, operations, KDFs, ciphertext format, SecretBytes.
        .target(
            name: "KeywardCrypto",
            dependencies: [
                "CArgon2",
                "CSystemHardening",
                "COpenSSLAEAD",
                "CBoringSSLDirect",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // Key Storage: sealed records in SQLite (GRDB); a PostgreSQL backend follows.
        .target(
            name: "KeywardStorage",
            dependencies: [
                "CSystemHardening",
                "KeywardCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),

        // The PostgreSQL store, for several nodes on one database (postgres-nio). Kept apart
        // from KeywardStorage so the library and the CLI's SQLite path stay free of NIO.
        .target(
            name: "KeywardPostgres",
            dependencies: [
                "CLibPQ",
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // The Application: KeyService, lifecycle, audit, root of trust.
        .target(
            name: "Keyward",
            dependencies: [
                "KeywardCrypto",
                "KeywardStorage",
            ],
            swiftSettings: strict
        ),

        // For tests of code built on Keyward: an in-memory KeyStore.
        .target(
            name: "KeywardTesting",
            dependencies: ["KeywardCrypto", "KeywardStorage"],
            swiftSettings: strict
        ),

        // PKCS#11 root of trust (an HSM; SoftHSM2 in tests).
        .target(
            name: "KeywardHSM",
            dependencies: ["CPKCS11", "Keyward", "KeywardCrypto"],
            swiftSettings: strict
        ),

        // The native API's wire contract: the OpenAPI document (a resource compiled in) and the
        // JSON reading and writing behind it. No NIO, no Hummingbird.
        .target(
            name: "KeywardAPI",
            dependencies: ["KeywardCrypto"],
            resources: [.embedInCode("openapi.yaml")],
            // The server's hot bodies are read and written here: full cross-module optimisation
            // lets the server specialise and inline them as it did when they lived in it.
            swiftSettings: strict + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),

        // Cryptography as a service: the HTTPS API over KeyService (Hummingbird 2).
        .target(
            name: "KeywardServer",
            dependencies: [
                "Keyward",
                "KeywardAPI",
                "KeywardCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            resources: ConsoleAssets.resources,
            swiftSettings: strict
        ),

        // For tests against a running server: one live-server fixture.
        .target(
            name: "KeywardServerTesting",
            dependencies: [
                "Keyward",
                "KeywardServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // The Swift SDK for `keyward serve` (AsyncHTTPClient).
        .target(
            name: "KeywardClient",
            dependencies: [
                "KeywardAPI",
                "KeywardCrypto",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "keyward",
            dependencies: [
                "Keyward",
                "KeywardServer",
                "KeywardHSM",
                "KeywardCrypto",
                "KeywardStorage",
                "KeywardPostgres",
                "KeywardClient",
                "KeywardAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
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
            name: "MetricsBench",
            dependencies: ["KeywardServer"],
            path: "bench/MetricsBench",
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

        // A store wrapper that fails on demand (audit fail-closed and crash tests).
        .target(name: "KeywardServiceTestSupport", dependencies: ["Keyward", "KeywardCrypto", "KeywardStorage"],
                path: "Tests/ServiceSupport", swiftSettings: strict),

        .testTarget(
            name: "KeywardCryptoTests",
            dependencies: [
                "KeywardCrypto",
                "KeywardTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardTests",
            dependencies: [
                "Keyward",
                "KeywardTesting",
                "KeywardServiceTestSupport",
                "KeywardTestSupport",
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardPostgresTests",
            dependencies: ["KeywardPostgres", "Keyward", "KeywardCrypto", "KeywardStorage", "KeywardServer", "KeywardServerTesting", "KeywardServiceTestSupport",
                           .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
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
            name: "KeywardServerTests",
            dependencies: [
                "KeywardAPI",
                "KeywardServer",
                "KeywardServerTesting",
                "Keyward",
                "KeywardCrypto",
                "KeywardStorage",
                "KeywardServiceTestSupport",
                "KeywardTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardClientTests",
            dependencies: [
                "KeywardClient",
                "KeywardTestSupport",
                "KeywardServerTesting",
                "KeywardServiceTestSupport",
                "KeywardServer",
                "Keyward",
                "KeywardCrypto",
                "KeywardStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeywardAPITests",
            dependencies: ["KeywardAPI", "KeywardCrypto", "KeywardTestSupport"],
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

/// The web console's templates and static files, compiled into KeywardServer
/// (`Sources/KeywardServer/Console/Assets`; `ConsoleAssets.swift` reads them).
enum ConsoleAssets {
    static let files = [
        "header.mustache", "footer.mustache", "login.mustache", "keys.mustache", "key.mustache", "tokens.mustache", "audit.mustache",
        "health.mustache", "token-created.mustache", "error.mustache", "console.css", "console.js", "favicon.svg",
    ]
    static var resources: [Resource] { files.map { .embedInCode("Console/Assets/\($0)") } }
}
