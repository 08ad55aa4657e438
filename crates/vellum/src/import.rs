//! Bulk import: many new entities of one type in one unit of work, streamed with binary `COPY`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{binary_copy::BinaryCopyInWriter, types::Type};
use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{
    Error, Result, Service, UowOptions,
    events::NOTIFY_CHANNEL,
    indexes::unique_pointer,
    service::STAMP_LOCK_CLASS,
    sql,
    store::InTransaction,
    uow::{check, stamp_sql},
};

/// What [`Service::import`] stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The unit of work every imported entity was written in.
    pub uow_id: Uuid,
    /// Its commit time: `created_at` of every imported entity.
    pub committed_at: DateTime<Utc>,
    /// How many entities were imported.
    pub count: u64,
    /// The schema version they were validated against (the active one).
    pub schema_version: Version,
}

/// An import of at least this many documents that grows the table by a tenth or more analyzes
/// it once committed, so queries are planned on statistics that count the rows it brought.
const ANALYZE_AFTER: u64 = 1_000;

/// The columns an import writes; the others take their defaults (active, not deleted).
const COPY_COLUMNS: &str = "entity_id, revision, entity_version, schema_id, schema_version, \
     payload, created_at, updated_at, uow_id";

const COPY_TYPES: [Type; 9] = [
    Type::UUID,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::UUID,
];

impl Service {
    /// Imports `documents` as new entities of `schema_id`, all or nothing: one unit of work,
    /// one transaction, one commit time, the rows streamed with binary `COPY`.
    ///
    /// Each document is validated against the active schema version as it is streamed; the
    /// first invalid one (or a failed item of `documents`) aborts the import, and nothing is
    /// stored: [`Error::ImportRefused`] names it by its position (1-based). References
    /// (`x-vellum-ref`) are checked once all rows are in, and unique path indexes hold as for any
    /// write. When the service writes entity change events, each imported entity gets its
    /// `entity.created` event, committed with the import. `progress` is called with the count of documents streamed so far, every 1,000
    /// documents and at the end.
    ///
    /// The import holds its commit stamp (see [`Service::get_as_of`]) from the start, so as-of
    /// reads of times after the start wait until it ends; other writers are not held up. No
    /// statement timeout applies to it. An import that grows the table by a tenth or more
    /// (and at least 1,000 documents) then analyzes it, so queries right after it are planned
    /// on statistics that know the new rows.
    pub async fn import<I>(
        &self,
        schema_id: &SchemaId,
        options: UowOptions,
        documents: I,
        mut progress: impl FnMut(u64),
    ) -> Result<Imported>
    where
        I: IntoIterator<Item = Result<Value>>,
    {
        options.check()?;
        let (schema_version, schema) = self.active_version(schema_id).await?;
        let client = self.client().await?;
        let table = self.idents.entity_table(schema_id);
        let table_rows: f32 = client
            .query_one(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)",
                &[&table],
            )
            .await?
            .try_get(0)?;
        let uow_id = Uuid::now_v7();
        let stamp = client
            .prepare_cached(&stamp_sql(&self.idents.fixed("units_of_work")))
            .await?;
        let client = InTransaction::new(client);
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; {}",
                self.idents.set_role()
            ))
            .await?;
        let imported = async {
            let committed_at: DateTime<Utc> = client
                .query_one(
                    &stamp,
                    &[
                        &uow_id,
                        &options.actor,
                        &options.correlation_id,
                        &options.metadata,
                        &STAMP_LOCK_CLASS,
                        &self.lock_key,
                    ],
                )
                .await?
                .try_get(0)?;
            let sink = client
                .copy_in(&format!("COPY {table} ({COPY_COLUMNS}) FROM STDIN BINARY"))
                .await?;
            let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
            let (initial, schema_id_text, version_text) = (
                Version::INITIAL.to_string(),
                schema_id.to_string(),
                schema_version.to_string(),
            );
            let mut count = 0u64;
            for document in documents {
                count += 1;
                let refused = |reason: Error| Error::ImportRefused {
                    document: count,
                    reason: Box::new(reason),
                };
                let document = document.map_err(refused)?;
                let invalid = |violations| {
                    refused(Error::Validation {
                        schema_id: schema_id.to_string(),
                        schema_version,
                        violations,
                    })
                };
                check(&self.store, &schema, &document).map_err(invalid)?;
                let entity_id = Uuid::now_v7();
                writer
                    .as_mut()
                    .write(&[
                        &entity_id,
                        &1i64,
                        &initial,
                        &schema_id_text,
                        &version_text,
                        &document,
                        &committed_at,
                        &committed_at,
                        &uow_id,
                    ])
                    .await?;
                if count.is_multiple_of(1000) {
                    progress(count);
                }
            }
            writer.finish().await?;
            progress(count);
            for reference in &schema.annotations().references {
                self.check_imported_references(&client, schema_id, uow_id, reference)
                    .await?;
            }
            self.write_change_events(&client, schema_id, uow_id).await?;
            client.batch_execute("COMMIT").await?;
            Ok(Imported {
                uow_id,
                committed_at,
                count,
                schema_version,
            })
        }
        .await;
        match imported {
            Ok(imported) => {
                // Like autovacuum would, a while later: a query planned on statistics from
                // before the import can pick a plan that is only good for few rows.
                let client = client.settled();
                if imported.count >= ANALYZE_AFTER
                    && (table_rows < 0.0 || imported.count as f32 >= table_rows / 10.0)
                {
                    client.batch_execute(&format!("ANALYZE {table}")).await?;
                }
                Ok(imported)
            }
            Err(err) => {
                // The connection goes back to the pool only if it is clean; dropped unsettled,
                // the guard closes it.
                if client.batch_execute("ROLLBACK").await.is_ok() {
                    drop(client.settled());
                }
                Err(self.import_error(schema_id, &schema, err))
            }
        }
    }

    /// Fails with [`Error::InvalidReference`] if an imported entity references a missing or
    /// deleted entity through `reference`: one statement for all of them.
    async fn check_imported_references(
        &self,
        client: &deadpool_postgres::Object,
        schema_id: &SchemaId,
        uow_id: Uuid,
        reference: &vellum_core::schema::Reference,
    ) -> Result<()> {
        let sql = format!(
            "SELECT e.entity_id, e.payload #>> $2::text[] FROM {table} e
             WHERE e.uow_id = $1 AND (e.payload #>> $2::text[]) IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM {target} t
                               WHERE t.is_active
                                 AND {active} = (e.payload #>> $2::text[])::uuid
                                 AND t.deleted_at IS NULL)
             LIMIT 1",
            table = self.idents.entity_table(schema_id),
            target = self.idents.entity_table(&reference.target),
            active = sql::active_entity("t"),
        );
        let missing = client
            .query_opt(&sql, &[&uow_id, &reference.segments])
            .await?;
        match missing {
            None => Ok(()),
            Some(row) => {
                let target_id: String = row.try_get(1)?;
                Err(Error::InvalidReference {
                    schema_id: schema_id.to_string(),
                    entity_id: row.try_get(0)?,
                    pointer: reference.pointer.clone(),
                    target: reference.target.to_string(),
                    target_id: Uuid::try_parse(&target_id)
                        .map_err(|e| Error::Corrupt(format!("a validated reference: {e}")))?,
                })
            }
        }
    }

    /// When the service writes entity change events, an `entity.created` event per imported
    /// entity, in entity id order, shaped as a unit of work's (one statement).
    async fn write_change_events(
        &self,
        client: &deadpool_postgres::Object,
        schema_id: &SchemaId,
        uow_id: Uuid,
    ) -> Result<()> {
        let sql = format!(
            "WITH written AS (
                 INSERT INTO {outbox} (event_id, uow_id, aggregate_type, aggregate_id,
                                       aggregate_version, event_type, payload, created_at)
                 SELECT gen_random_uuid(), e.uow_id, e.schema_id, e.entity_id::text,
                        e.entity_version, 'entity.created',
                        jsonb_build_object('schema_id', e.schema_id, 'entity_id', e.entity_id,
                                           'entity_version', e.entity_version,
                                           'revision', e.revision,
                                           'schema_version', e.schema_version,
                                           'payload', e.payload),
                        e.created_at
                 FROM {table} e
                 WHERE e.uow_id = $1 AND (SELECT s.change_events FROM {settings} s)
                 ORDER BY e.entity_id
                 RETURNING position),
             woken AS (SELECT pg_notify($2, $3) WHERE EXISTS (SELECT FROM written))
             SELECT count(*) FROM written LEFT JOIN woken ON true",
            outbox = self.idents.fixed("outbox"),
            settings = self.idents.fixed("event_settings"),
            table = self.idents.entity_table(schema_id),
        );
        client
            .query_one(&sql, &[&uow_id, &NOTIFY_CHANNEL, &self.name.as_str()])
            .await?;
        Ok(())
    }

    fn import_error(
        &self,
        schema_id: &SchemaId,
        schema: &vellum_core::CompiledSchema,
        err: Error,
    ) -> Error {
        let Error::Database(db) = &err else {
            return err;
        };
        match sql::db_error(db) {
            Some(("23505", Some(index))) if index.starts_with(sql::PATH_INDEX_PREFIX) => {
                Error::UniqueViolation {
                    schema_id: schema_id.to_string(),
                    pointer: unique_pointer(schema_id, Some(schema), index),
                    entity_id: None,
                }
            }
            // The referenced type has no table.
            Some(("42P01", _)) => Error::NotFound {
                what: format!("an entity type referenced by {schema_id}"),
            },
            _ => err,
        }
    }
}
