import Logging
import PostgresNIO
import KeywardStorage

/// The PostgreSQL schema, as numbered migrations. Never edit a shipped migration; add one.
///
/// `migrate` applies what is missing in one transaction that first takes a transaction-scoped
/// advisory lock, so two nodes starting at the same moment apply each migration once: the second
/// waits, then finds it applied. Each applied migration is a row of `keyward_migrations`.
enum PostgresSchema {
    /// The advisory lock key migrations hold (an arbitrary constant: "keyward" in ASCII).
    static let migrationLock: Int64 = 0x6b_6579_7761_7264
    /// The advisory lock key every write holds shared and a KEK rotation holds exclusively
    /// (`PostgresKeyStore.fenceWrites`).
    static let kekLock: Int64 = 0x6b_6579_7761_7265

    static let migrations: [(version: Int, name: String, sql: [String])] = [
        (1, "keys, versions, aliases, tokens, audit, revision index, generation", [
            """
            CREATE TABLE store_header (
                id integer PRIMARY KEY CHECK (id = 1),
                store_id bytea NOT NULL, format_version bigint NOT NULL,
                root_kind text NOT NULL, root_parameters bytea NOT NULL,
                active_kek bytea NOT NULL, created_at double precision NOT NULL, mac bytea NOT NULL)
            """,
            "CREATE TABLE keks (id bytea PRIMARY KEY, wrapped bytea NOT NULL, created_at double precision NOT NULL, state text NOT NULL)",
            """
            CREATE TABLE keys (
                id bytea PRIMARY KEY, body bytea NOT NULL, revision bigint NOT NULL, mac bytea NOT NULL,
                spec text NOT NULL, state text NOT NULL, created_at double precision NOT NULL)
            """,
            "CREATE INDEX keys_by_state ON keys(state, id)",
            """
            CREATE TABLE key_tags (
                key_id bytea NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                tag_key text NOT NULL, tag_value text NOT NULL, PRIMARY KEY (key_id, tag_key))
            """,
            "CREATE INDEX key_tags_by_tag ON key_tags(tag_key, tag_value, key_id)",
            """
            CREATE TABLE key_versions (
                key_id bytea NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                version bigint NOT NULL, kek_id bytea NOT NULL, sealed bytea NOT NULL,
                body bytea NOT NULL, revision bigint NOT NULL, mac bytea NOT NULL,
                PRIMARY KEY (key_id, version))
            """,
            """
            CREATE TABLE aliases (
                name text PRIMARY KEY, key_id bytea NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                revision bigint NOT NULL, mac bytea NOT NULL)
            """,
            "CREATE INDEX aliases_by_key ON aliases(key_id)",
            """
            CREATE TABLE tokens (
                id bytea PRIMARY KEY, hash bytea NOT NULL UNIQUE, body bytea NOT NULL,
                revision bigint NOT NULL, mac bytea NOT NULL)
            """,
            """
            CREATE TABLE audit (
                sequence bigint PRIMARY KEY, body bytea NOT NULL, previous_hash bytea NOT NULL,
                hash bytea NOT NULL, mac bytea NOT NULL, key_id bytea, time double precision NOT NULL)
            """,
            // The newest audited revision of every key, version, token and alias (decision 0005).
            "CREATE TABLE anchored_revisions (record bytea PRIMARY KEY, revision bigint NOT NULL, deleted boolean NOT NULL)",
            // A counter every administrative change increases, whichever node makes it: a node
            // notices another's changes by reading one row.
            "CREATE TABLE store_generation (id integer PRIMARY KEY CHECK (id = 1), value bigint NOT NULL)",
            "INSERT INTO store_generation (id, value) VALUES (1, 0)",
            """
            CREATE FUNCTION keyward_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN UPDATE store_generation SET value = value + 1 WHERE id = 1; RETURN NULL; END $$
            """,
        ] + [("keys", "UPDATE OR DELETE"), ("aliases", "INSERT OR UPDATE OR DELETE"), ("tokens", "UPDATE OR DELETE"),
             ("keks", "INSERT OR UPDATE OR DELETE"), ("store_header", "UPDATE")].map { table, events in
            "CREATE TRIGGER generation_\(table) AFTER \(events) ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION keyward_bump_generation()"
        }),
        (2, "leases and node heartbeats", [
            // Background work's leases with their fencing tokens, and each serving node's last
            // heartbeat with the generation it had seen (`ClusterStore`). Times are the
            // database's clock (seconds since 1970), so the nodes' clocks need not agree.
            "CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL, expires_at double precision NOT NULL)",
            "CREATE TABLE nodes (id text PRIMARY KEY, seen_generation bigint NOT NULL, heartbeat_at double precision NOT NULL)",
        ]),
        (3, "audit checkpoint", [
            // The signed checkpoint that stands for the entries a retention run removed
            // (`AuditStore.pruneAudit`): one row, replaced by each run.
            "CREATE TABLE audit_checkpoint (id integer PRIMARY KEY CHECK (id = 1), sequence bigint NOT NULL, body bytea NOT NULL, signature bytea NOT NULL)",
        ]),
        (4, "audit intake", [
            // Entries each node inserts in transactions of its own, waiting for the elected
            // sequencer to chain them into `audit` (decision 0034).
            """
            CREATE TABLE audit_intake (
                id bigserial PRIMARY KEY, node text NOT NULL, body bytea NOT NULL, key_id bytea,
                time double precision NOT NULL, mac bytea NOT NULL)
            """,
        ]),
        (5, "audit entry ids", [
            // The id each intake entry's body names, copied so that the sequencer finds an id
            // already chained (a replayed intake row) by the index, and no id is chained twice.
            "ALTER TABLE audit ADD COLUMN entry text",
            "CREATE UNIQUE INDEX audit_by_entry ON audit(entry) WHERE entry IS NOT NULL",
        ]),
    ]

    /// The newest schema version this build knows.
    static var latest: Int { migrations.map(\.version).max() ?? 0 }

    /// Applies the missing migrations under the migration lock. Refuses a database migrated by
    /// a newer Keyward (a version this build does not know).
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS keyward_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var applied: Set<Int> = []
            for try await version in try await connection.query("SELECT version FROM keyward_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > latest {
                throw StorageError.unavailable("the database's schema is version \(newest), newer than this Keyward knows (\(latest)); upgrade this node")
            }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO keyward_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                logger.notice("applied schema migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }
}
