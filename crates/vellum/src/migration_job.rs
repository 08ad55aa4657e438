//! Eager migration (SPEC §4.3): every active entity of a type brought to one schema version, in
//! chunks, online, resumable.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;
use tokio_postgres::Row;
use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{
    Error, Result, SchemaRegistry, UowOptions, WriteOptions, entity::parse_stored,
    migrator::Migrator,
};

/// How [`SchemaRegistry::migrate_entities`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrationJobOptions {
    /// Entities per unit of work (default 500).
    pub chunk_size: usize,
    /// Migrate and validate, and report, but write nothing.
    pub dry_run: bool,
    /// The actor the migration's units of work are recorded under (default `vellum-migrate`).
    pub actor: String,
}

impl Default for MigrationJobOptions {
    fn default() -> Self {
        Self {
            chunk_size: 500,
            dry_run: false,
            actor: "vellum-migrate".into(),
        }
    }
}

/// Where a running migration stands, passed to its progress callback after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationProgress {
    /// Entities migrated so far (in a dry run: that would have been).
    pub migrated: u64,
    /// Entities that could not be migrated, left untouched.
    pub failed: u64,
    /// Entities that needed migrating when the run started.
    pub pending_at_start: u64,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationReport {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The schema version every entity was brought to.
    pub target: Version,
    /// Whether it was a dry run (nothing written).
    pub dry_run: bool,
    /// Active entities under another major line when the run started.
    pub pending_at_start: u64,
    /// Entities migrated (a new version each), or that would be in a dry run.
    pub migrated: u64,
    /// Entities that could not be migrated; they are left untouched.
    pub failed: u64,
    /// Up to [`MIGRATION_SAMPLES`] of them, with why.
    pub samples: Vec<FailedMigration>,
    /// Active entities still under another major line when the run ended: the failed ones,
    /// and any a writer held locked through the last pass (run again to migrate those).
    pub pending_at_end: u64,
}

/// An entity a migration left untouched, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedMigration {
    /// The entity.
    pub entity_id: Uuid,
    /// Its current version.
    pub entity_version: Version,
    /// The schema version it is stored under.
    pub schema_version: Version,
    /// Why it could not be migrated (the violations of the result included).
    pub reason: String,
}

/// How many failed entities a [`MigrationReport`] shows.
pub const MIGRATION_SAMPLES: usize = 20;

/// The active entities stored under another major line than `$1`: what a migration run
/// migrates.
const PENDING: &str = "e.is_active AND e.deleted_at IS NULL \
     AND split_part(e.schema_version, '.', 1)::int <> $1";

/// One active entity that needs migrating.
struct Pending {
    entity_id: Uuid,
    entity_version: Version,
    schema_version: Version,
    payload: serde_json::Value,
}

impl SchemaRegistry<'_> {
    /// How many active, non-deleted entities of `schema_id` are stored under another major
    /// line than `to`: what [`migrate_entities`](Self::migrate_entities) would migrate.
    pub async fn pending_migration(&self, schema_id: &SchemaId, to: Version) -> Result<u64> {
        let client = self.service.client().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} e WHERE {PENDING}",
                    self.service.idents.entity_table(schema_id)
                ),
                &[&(to.major as i32)],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    /// Migrates every active entity of `schema_id` stored under another major line to version
    /// `to`, which must be in the active major line (activate it first: writes then produce
    /// documents of the new line, and the run only has the old ones to catch up).
    ///
    /// Online and resumable: entities are read in chunks of `chunk_size` in entity id order,
    /// migrated in memory (the registered migrations, composed), validated against `to`, and
    /// written as a new version each (a major bump), one unit of work per chunk, attributed to
    /// the migration (actor, and `{"migration": {"to": ...}}` in its metadata). A chunk's rows
    /// are locked from its read to its commit, so writers wait for it (one chunk, briefly)
    /// rather than lose their write; rows a writer holds at that moment are skipped and picked up
    /// by another pass. A run that is stopped (killed, cancelled) leaves every chunk it committed
    /// migrated and the rest untouched; running it again finishes the job.
    ///
    /// An entity that cannot be migrated (a migration step fails on it, or the result does not
    /// satisfy `to`) is reported in [`MigrationReport::samples`] and left untouched.
    pub async fn migrate_entities(
        &self,
        schema_id: &SchemaId,
        to: Version,
        options: MigrationJobOptions,
        mut progress: impl FnMut(MigrationProgress),
    ) -> Result<MigrationReport> {
        let active = self.get(schema_id, None, false).await?.info.schema_version;
        if active.major != to.major {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {to} is not in the active major line {}.x: activate a \
                 version of major {} first, so that writes and the migration agree",
                active.major, to.major
            )));
        }
        let migrator = self.migrator(schema_id, to).await?;
        let chunk_size = options.chunk_size.max(1);
        let mut report = MigrationReport {
            schema_id: schema_id.clone(),
            target: to,
            dry_run: options.dry_run,
            pending_at_start: self.pending_migration(schema_id, to).await?,
            migrated: 0,
            failed: 0,
            samples: Vec::new(),
            pending_at_end: 0,
        };
        let mut failed: HashSet<Uuid> = HashSet::new();
        // Passes until one finds nothing to migrate: a later pass picks up entities that were
        // locked by a writer when the pass reached them. A dry run writes nothing: one pass.
        loop {
            let mut after = Uuid::nil();
            let mut migrated_in_pass = 0;
            loop {
                let step = if options.dry_run {
                    let chunk = self.pending_chunk(schema_id, to, after, chunk_size).await?;
                    let last = chunk.last().map(|p| p.entity_id);
                    let migrated = migrate_in_memory(&migrator, &chunk, &mut report, &mut failed);
                    last.map(|last| (last, migrated.len() as u64))
                } else {
                    self.migrate_chunk(
                        schema_id,
                        &migrator,
                        after,
                        chunk_size,
                        &options,
                        &mut report,
                        &mut failed,
                    )
                    .await?
                };
                let Some((last, written)) = step else {
                    break;
                };
                migrated_in_pass += written;
                report.migrated += written;
                after = last;
                progress(MigrationProgress {
                    migrated: report.migrated,
                    failed: report.failed,
                    pending_at_start: report.pending_at_start,
                });
            }
            if options.dry_run || migrated_in_pass == 0 {
                break;
            }
        }
        report.pending_at_end = self.pending_migration(schema_id, to).await?;
        Ok(report)
    }

    /// Migrates the next chunk after `after` in one unit of work: its rows are read and locked
    /// (`FOR UPDATE SKIP LOCKED`) inside it, so no writer changes them before it commits, and
    /// rows a writer holds are left for a later pass. Returns the last entity id read and how
    /// many entities were migrated, or `None` when nothing is left after `after`.
    #[allow(clippy::too_many_arguments)]
    async fn migrate_chunk(
        &self,
        schema_id: &SchemaId,
        migrator: &Migrator,
        after: Uuid,
        limit: usize,
        options: &MigrationJobOptions,
        report: &mut MigrationReport,
        failed: &mut HashSet<Uuid>,
    ) -> Result<Option<(Uuid, u64)>> {
        let to = migrator.target();
        let uow_options = UowOptions::new(options.actor.clone()).metadata(json!({
            "migration": {"schema_id": schema_id, "to": to}
        }));
        let mut uow = self.service.begin_with(uow_options).await?;
        let rows = uow
            .raw()
            .query(
                &format!(
                    "{} FOR UPDATE SKIP LOCKED",
                    self.pending_chunk_sql(schema_id)
                ),
                &[&(to.major as i32), &after, &(limit as i64)],
            )
            .await?;
        let chunk = rows.iter().map(pending).collect::<Result<Vec<_>>>()?;
        let Some(last) = chunk.last().map(|p| p.entity_id) else {
            return Ok(None);
        };
        let migrated = migrate_in_memory(migrator, &chunk, report, failed);
        for (pending, document) in &migrated {
            uow.update(
                schema_id,
                pending.entity_id,
                document.clone(),
                WriteOptions::expect(pending.entity_version).under_schema(to),
            )
            .await?;
        }
        uow.commit().await?;
        Ok(Some((last, migrated.len() as u64)))
    }

    /// The next chunk of entities needing migration: `$1` the target major, `$2` the entity id
    /// to read after, `$3` the chunk size.
    fn pending_chunk_sql(&self, schema_id: &SchemaId) -> String {
        format!(
            "SELECT e.entity_id, e.entity_version, e.schema_version, e.payload FROM {} e
             WHERE {PENDING} AND e.entity_id > $2 ORDER BY e.entity_id LIMIT $3",
            self.service.idents.entity_table(schema_id)
        )
    }

    /// Up to `limit` active entities after `after` (in entity id order) stored under another
    /// major line than `to`.
    async fn pending_chunk(
        &self,
        schema_id: &SchemaId,
        to: Version,
        after: Uuid,
        limit: usize,
    ) -> Result<Vec<Pending>> {
        let client = self.service.client().await?;
        let rows = client
            .query(
                &self.pending_chunk_sql(schema_id),
                &[&(to.major as i32), &after, &(limit as i64)],
            )
            .await?;
        rows.iter().map(pending).collect()
    }
}

/// Migrates a chunk in memory: the documents that migrate, and (recorded in the report) those
/// that do not, which are left untouched.
fn migrate_in_memory<'a>(
    migrator: &Migrator,
    chunk: &'a [Pending],
    report: &mut MigrationReport,
    failed: &mut HashSet<Uuid>,
) -> Vec<(&'a Pending, serde_json::Value)> {
    let mut migrated = Vec::with_capacity(chunk.len());
    for pending in chunk {
        if failed.contains(&pending.entity_id) {
            continue;
        }
        match migrator.migrate(pending.payload.clone(), pending.schema_version) {
            Ok(document) => migrated.push((pending, document)),
            Err(err) => {
                failed.insert(pending.entity_id);
                report.failed += 1;
                if report.samples.len() < MIGRATION_SAMPLES {
                    report.samples.push(FailedMigration {
                        entity_id: pending.entity_id,
                        entity_version: pending.entity_version,
                        schema_version: pending.schema_version,
                        reason: err.to_string(),
                    });
                }
            }
        }
    }
    migrated
}

fn pending(row: &Row) -> Result<Pending> {
    Ok(Pending {
        entity_id: row.try_get(0)?,
        entity_version: parse_stored(row.try_get(1)?)?,
        schema_version: parse_stored(row.try_get(2)?)?,
        payload: row.try_get(3)?,
    })
}
