import GRDB

/// The SQLite schema, as GRDB migrations. Never edit a shipped migration; add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: keys, versions, aliases, tokens, audit") { db in
            try db.execute(sql: """
                CREATE TABLE store_header (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    store_id BLOB NOT NULL, format_version INTEGER NOT NULL,
                    root_kind TEXT NOT NULL, root_parameters BLOB NOT NULL,
                    active_kek BLOB NOT NULL, created_at REAL NOT NULL, mac BLOB NOT NULL);
                CREATE TABLE keks (
                    id BLOB PRIMARY KEY, wrapped BLOB NOT NULL, created_at REAL NOT NULL, state TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE keys (
                    id BLOB PRIMARY KEY, body BLOB NOT NULL, revision INTEGER NOT NULL, mac BLOB NOT NULL,
                    spec TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX keys_by_state ON keys(state, id);
                CREATE TABLE key_tags (
                    key_id BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                    tag_key TEXT NOT NULL, tag_value TEXT NOT NULL,
                    PRIMARY KEY (key_id, tag_key)
                ) WITHOUT ROWID;
                CREATE INDEX key_tags_by_tag ON key_tags(tag_key, tag_value, key_id);
                CREATE TABLE key_versions (
                    key_id BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                    version INTEGER NOT NULL, kek_id BLOB NOT NULL, sealed BLOB NOT NULL,
                    body BLOB NOT NULL, revision INTEGER NOT NULL, mac BLOB NOT NULL,
                    PRIMARY KEY (key_id, version)
                ) WITHOUT ROWID;
                CREATE TABLE aliases (
                    name TEXT PRIMARY KEY, key_id BLOB NOT NULL REFERENCES keys(id) ON DELETE CASCADE,
                    revision INTEGER NOT NULL, mac BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX aliases_by_key ON aliases(key_id);
                CREATE TABLE tokens (
                    id BLOB PRIMARY KEY, hash BLOB NOT NULL UNIQUE, body BLOB NOT NULL,
                    revision INTEGER NOT NULL, mac BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE audit (
                    sequence INTEGER PRIMARY KEY, body BLOB NOT NULL, previous_hash BLOB NOT NULL,
                    hash BLOB NOT NULL, mac BLOB NOT NULL, key_id BLOB, key_revision INTEGER, time REAL NOT NULL);
                -- The newest key revision the audit log records per key, kept in the same
                -- transaction as the entries (an index over every audit row cost a fifth of an
                -- audited encrypt). Derived from the log; `keyward verify` recomputes it.
                CREATE TABLE audited_revisions (
                    key_id BLOB PRIMARY KEY, revision INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2: store generation") { db in
            // A counter every administrative change increases, whichever process makes it, so a
            // running server notices another writer's changes by reading one row (`generation`).
            var sql = """
                CREATE TABLE store_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                INSERT INTO store_generation (id, value) VALUES (1, 0);
                """
            let watched = [("keys", ["UPDATE", "DELETE"]), ("aliases", ["INSERT", "UPDATE", "DELETE"]), ("tokens", ["UPDATE", "DELETE"]),
                           ("keks", ["INSERT", "UPDATE", "DELETE"]), ("store_header", ["UPDATE"])]
            for (table, events) in watched {
                for event in events {
                    sql += "CREATE TRIGGER generation_\(table)_\(event.lowercased()) AFTER \(event) ON \(table) "
                        + "BEGIN UPDATE store_generation SET value = value + 1 WHERE id = 1; END;\n"
                }
            }
            try db.execute(sql: sql)
        }
        migrator.registerMigration("v3: revision index for every mutable record") { db in
            // The newest audited revision of every key, version, token and alias, written in the
            // audit append's transaction. Its digest is under the newest batch MAC, so an edited,
            // replayed or emptied index fails the audit head's check (decision 0005).
            try db.execute(sql: """
                DROP TABLE audited_revisions;
                CREATE TABLE anchored_revisions (
                    record BLOB PRIMARY KEY, revision INTEGER NOT NULL, deleted INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v4: leases and node heartbeats") { db in
            // Background work's leases with their fencing tokens, and each serving node's last
            // heartbeat with the generation it had seen (`ClusterStore`). Neither moves the
            // generation: they are coordination, not administrative state.
            try db.execute(sql: """
                CREATE TABLE leases (
                    name TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, expires_at REAL NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE nodes (
                    id TEXT PRIMARY KEY, seen_generation INTEGER NOT NULL, heartbeat_at REAL NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v5: audit checkpoint") { db in
            // The signed checkpoint that stands for the entries a retention run removed
            // (`AuditStore.pruneAudit`): one row, replaced by each run.
            try db.execute(sql: """
                CREATE TABLE audit_checkpoint (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    sequence INTEGER NOT NULL, body BLOB NOT NULL, signature BLOB NOT NULL);
                """)
        }
        return migrator
    }
}
