//! The CQL schema, shipped as files under `schema/` and applied at start-up as numbered
//! migrations. Every statement is idempotent (`IF NOT EXISTS`), so nodes starting together may
//! all apply the same migration; each records its version once applied.

use crate::ScyllaConfig;
use scylla::client::session::Session;
use sentinel_store::StoreError;

/// One schema change.
pub struct Migration {
    /// Applied in ascending order.
    pub version: i32,
    /// What it does.
    pub name: &'static str,
    /// The CQL, with `{keyspace}` where the keyspace goes.
    pub cql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    cql: include_str!("../schema/001_initial.cql"),
}];

/// The statements of a migration for `keyspace`: comments removed, split at `;`.
pub fn statements(cql: &str, keyspace: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{keyspace}", keyspace))
        .collect()
}

fn backend(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

/// Creates the keyspace when missing and applies every migration not yet recorded. Returns the
/// versions this call applied.
pub async fn apply(session: &Session, config: &ScyllaConfig) -> Result<Vec<i32>, StoreError> {
    let ks = &config.keyspace;
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
                config.replication
            ),
            (),
        )
        .await
        .map_err(|e| backend("creating the keyspace", e))?;
    // The ledger itself comes first so that it can be read; migration 1 creates it again.
    let ledger = statements(MIGRATIONS[0].cql, ks)
        .into_iter()
        .next()
        .expect("migration 1 starts with the migrations ledger");
    session
        .query_unpaged(ledger, ())
        .await
        .map_err(|e| backend("creating the migrations ledger", e))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| backend("waiting for schema agreement", e))?;

    let applied_rows = session
        .query_unpaged(format!("SELECT version FROM {ks}.schema_migrations"), ())
        .await
        .map_err(|e| backend("reading applied migrations", e))?
        .into_rows_result()
        .map_err(|e| backend("reading applied migrations", e))?;
    let mut done = Vec::new();
    for row in applied_rows
        .rows::<(i32,)>()
        .map_err(|e| backend("reading applied migrations", e))?
    {
        done.push(row.map_err(|e| backend("reading applied migrations", e))?.0);
    }

    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        for statement in statements(migration.cql, ks) {
            session
                .query_unpaged(statement.as_str(), ())
                .await
                .map_err(|e| backend(&format!("migration {}", migration.version), e))?;
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| backend("waiting for schema agreement", e))?;
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_migrations (version, name, applied_at) \
                     VALUES (?, ?, toTimestamp(now())) IF NOT EXISTS"
                ),
                (migration.version, migration.name),
            )
            .await
            .map_err(|e| backend("recording a migration", e))?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "schema migration applied"
        );
        applied.push(migration.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_every_statement_is_idempotent() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted, "versions ascend without repeats");
        for migration in MIGRATIONS {
            let statements = statements(migration.cql, "ks_test");
            assert!(!statements.is_empty());
            for s in &statements {
                assert!(
                    s.starts_with("CREATE TABLE IF NOT EXISTS ks_test."),
                    "not idempotent or not in the keyspace: {s}"
                );
                assert!(!s.contains("{keyspace}") && !s.contains("--"), "{s}");
            }
        }
    }

    #[test]
    fn statements_drop_comment_lines_split_at_semicolons_and_name_the_keyspace() {
        let cql = "-- header\n\
                   CREATE TABLE IF NOT EXISTS {keyspace}.a (x int);\n\
                   \x20   -- an indented comment; with a semicolon\n\
                   CREATE TABLE IF NOT EXISTS {keyspace}.b (y int, z text)\n\
                   ;\n\n;\n\
                   INSERT INTO {keyspace}.a (x) VALUES (1)";
        assert_eq!(
            statements(cql, "fraud"),
            [
                "CREATE TABLE IF NOT EXISTS fraud.a (x int)",
                "CREATE TABLE IF NOT EXISTS fraud.b (y int, z text)",
                "INSERT INTO fraud.a (x) VALUES (1)",
            ]
        );
        assert!(statements("-- only a comment\n\n", "fraud").is_empty());
    }

    #[test]
    fn the_first_statement_is_the_migrations_ledger() {
        let first = &statements(MIGRATIONS[0].cql, "ks")[0];
        assert!(
            first.starts_with("CREATE TABLE IF NOT EXISTS ks.schema_migrations"),
            "{first}"
        );
    }

    #[test]
    fn the_initial_schema_has_a_table_per_query() {
        let tables: Vec<String> = statements(MIGRATIONS[0].cql, "ks")
            .iter()
            .filter_map(|s| s.strip_prefix("CREATE TABLE IF NOT EXISTS ks."))
            .map(|s| s.split_whitespace().next().unwrap().to_owned())
            .collect();
        assert_eq!(
            tables,
            [
                "schema_migrations",
                "decisions_by_txn",
                "decisions_by_user",
                "decisions_by_day",
                "flagged_by_day",
                "user_snapshots",
                "records",
                "counters"
            ]
        );
    }
}
