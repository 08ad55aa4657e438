//! vellum's own DDL: versioned migrations embedded in the binary, applied once, in order, under
//! an advisory lock so that processes starting together do not race.

use deadpool_postgres::Client;
use tracing::info;

use crate::{Result, sql::MIGRATIONS};

/// Advisory lock key (`'vellum:migrate'` as a number) held while migrations run.
const MIGRATION_LOCK: i64 = 0x7665_6c6c_756d_4d47;

/// Applies every migration the database lacks. Idempotent; safe to run from many processes.
pub(crate) async fn run(client: &mut Client) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply_missing(client).await;
    // Unlock even when a migration failed; the session may be reused by the pool.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
}

async fn apply_missing(client: &mut Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS vellum;
             CREATE TABLE IF NOT EXISTS vellum.migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
        )
        .await?;
    let applied: Vec<i32> = client
        .query(
            "SELECT version FROM vellum.migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for &(version, name, ddl) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(ddl).await?;
        tx.execute(
            "INSERT INTO vellum.migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        info!(version, name, "applied vellum migration");
    }
    Ok(())
}
