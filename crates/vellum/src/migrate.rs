//! vellum's own DDL: versioned migrations embedded in the binary, applied once, in order, under
//! an advisory lock so that processes starting together do not race.

use deadpool_postgres::Client;
use tracing::info;

use vellum_core::ServiceName;

use crate::{
    Error, Result,
    sql::{MIGRATIONS, SERVICE_DDL_VERSION, ServiceIdents},
};

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
    upgrade_services(client).await
}

/// Brings every service provisioned by an older vellum to [`SERVICE_DDL_VERSION`], one
/// transaction per service.
async fn upgrade_services(client: &mut Client) -> Result<()> {
    let behind = client
        .query(
            "SELECT name, ddl_version FROM vellum.services WHERE ddl_version < $1 ORDER BY name",
            &[&SERVICE_DDL_VERSION],
        )
        .await?;
    for row in behind {
        let name = ServiceName::new(row.get::<_, String>(0))
            .map_err(|e| Error::Corrupt(format!("service registry: {e}")))?;
        let from: i32 = row.get(1);
        let tx = client.transaction().await?;
        tx.batch_execute(&ServiceIdents::new(&name).upgrade_ddl(from))
            .await?;
        tx.execute(
            "UPDATE vellum.services SET ddl_version = $2 WHERE name = $1",
            &[&name.as_str(), &SERVICE_DDL_VERSION],
        )
        .await?;
        tx.commit().await?;
        info!(service = %name, from, to = SERVICE_DDL_VERSION, "upgraded service DDL");
    }
    Ok(())
}
