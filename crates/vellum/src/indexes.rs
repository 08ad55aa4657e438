//! Path indexes: what `"x-vellum-index"` and `"x-vellum-ref"` ask for (SPEC §8).
//!
//! The indexes of an entity type follow its active schema version. They cover the active rows
//! only (`is_active AND deleted_at IS NULL`, the predicate of every live query); a unique one
//! makes a value unique among active documents, and the others end with `entity_id`, every
//! query's last order key ([`sql::PATH_INDEX_DDL`]). Index names are digests of what defines them
//! ([`sql::path_index_name`]), so the set wanted by a definition is known without bookkeeping.
//!
//! On an existing table, indexes are built `CONCURRENTLY` before the version that asks for them
//! is activated (writers are not blocked, and a unique index that existing documents violate
//! refuses the activation rather than failing writes later), and the indexes no longer wanted
//! are dropped `CONCURRENTLY` after. On a new table they are created in the registering
//! transaction.

use std::collections::HashSet;

use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::types::ToSql;
use vellum_core::{CompiledSchema, SchemaId, schema::PathIndex};

use crate::{Error, Result, Service, sql};

/// How often a session waiting for another's index build asks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The path indexes of one entity type, as a definition declares them.
pub(crate) struct PathIndexes<'a> {
    service: &'a Service,
    schema_id: &'a SchemaId,
}

impl<'a> PathIndexes<'a> {
    pub(crate) fn new(service: &'a Service, schema_id: &'a SchemaId) -> Self {
        Self { service, schema_id }
    }

    /// Creates the indexes of `schema` on a table created in the same transaction (`client`).
    pub(crate) async fn create_in(
        &self,
        client: &impl GenericClient,
        schema: &CompiledSchema,
    ) -> Result<()> {
        let mut analyze = false;
        for index in &schema.annotations().indexes {
            let ddl = self.ddl(client, index, false).await?;
            client.batch_execute(&ddl.index).await?;
            analyze |= self.create_statistics(client, &ddl).await?;
        }
        self.analyze(client, analyze).await
    }

    /// Builds, without blocking writers, the indexes `schema` wants that the table lacks (and
    /// rebuilds any left invalid by an interrupted build). Called before `schema` becomes active.
    ///
    /// A unique index that the active documents violate is refused with
    /// [`Error::NotAllowed`], and nothing of it is left behind.
    pub(crate) async fn build(&self, schema: &CompiledSchema) -> Result<()> {
        let locked = self.lock().await?;
        let built = self.build_locked(locked.client(), schema).await;
        locked.unlock().await?;
        built
    }

    async fn build_locked(
        &self,
        client: &impl GenericClient,
        schema: &CompiledSchema,
    ) -> Result<()> {
        let existing = self.existing(client).await?;
        let mut analyze = false;
        for index in &schema.annotations().indexes {
            let name = sql::path_index_name(self.schema_id, index);
            match existing.iter().find(|(n, _)| *n == name) {
                Some((_, true)) => continue,
                Some((_, false)) => self.drop(client, &name).await?,
                None => {}
            }
            let ddl = self.ddl(client, index, true).await?;
            if let Err(err) = client.batch_execute(&ddl.index).await {
                // A failed concurrent build leaves an invalid index behind.
                self.drop(client, &name).await?;
                return Err(match sql::db_error(&err) {
                    Some(("23505", _)) => Error::NotAllowed(format!(
                        "cannot make {}{} unique: active entities share a value ({})",
                        self.schema_id,
                        index.pointer,
                        err.as_db_error()
                            .and_then(|e| e.detail())
                            .unwrap_or("duplicate values"),
                    )),
                    _ => err.into(),
                });
            }
            analyze |= self.create_statistics(client, &ddl).await?;
            tracing::info!(
                service = %self.service.name, schema_id = %self.schema_id,
                pointer = %index.pointer, unique = index.unique, index = %name,
                "path index built"
            );
        }
        self.analyze(client, analyze).await
    }

    /// Creates the expression statistics of an index, where the server has them; says whether
    /// it did.
    async fn create_statistics(&self, client: &impl GenericClient, ddl: &IndexDdl) -> Result<bool> {
        match &ddl.statistics {
            Some(statement) => {
                client.batch_execute(statement).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Fills new expression statistics: one `ANALYZE` of the table for all of them.
    async fn analyze(&self, client: &impl GenericClient, wanted: bool) -> Result<()> {
        if wanted {
            client
                .batch_execute(&format!(
                    "ANALYZE {}",
                    self.service.idents.entity_table(self.schema_id)
                ))
                .await?;
        }
        Ok(())
    }

    /// Whether the entity table exists (it is created with the first registered version).
    pub(crate) async fn table_exists(&self) -> Result<bool> {
        let client = self.service.client().await?;
        let table = self.service.idents.entity_table(self.schema_id);
        Ok(client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await?
            .try_get(0)?)
    }

    /// Drops the path indexes the active version does not want: after an activation, those of
    /// the version it replaced; after a refused one, those built for it.
    pub(crate) async fn drop_unwanted(&self) -> Result<()> {
        let locked = self.lock().await?;
        let dropped = self.drop_unwanted_locked(locked.client()).await;
        locked.unlock().await?;
        dropped
    }

    async fn drop_unwanted_locked(&self, client: &impl GenericClient) -> Result<()> {
        let registry = self.service.schemas();
        let active = match registry.get(self.schema_id, None, false).await {
            Ok(active) => {
                registry
                    .compiled(self.schema_id, active.info.schema_version)
                    .await?
            }
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        let wanted: HashSet<String> = active
            .annotations()
            .indexes
            .iter()
            .map(|index| sql::path_index_name(self.schema_id, index))
            .collect();
        for (name, _) in self.existing(client).await? {
            if !wanted.contains(&name) {
                self.drop(client, &name).await?;
                tracing::info!(
                    service = %self.service.name, schema_id = %self.schema_id, index = %name,
                    "path index dropped"
                );
            }
        }
        Ok(())
    }

    /// Serializes index maintenance of the entity type across sessions, so one session never
    /// drops an index another is building. A session-level lock, taken by polling: a session
    /// blocked inside `pg_advisory_lock` would hold a snapshot that the other session's
    /// `CREATE INDEX CONCURRENTLY` waits for, a deadlock.
    async fn lock(&self) -> Result<Locked> {
        let client = self.service.client().await?;
        let key = self.lock_key();
        loop {
            let locked: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&key],
                )
                .await?
                .try_get(0)?;
            if locked {
                return Ok(Locked {
                    client: Some(client),
                    key,
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    fn lock_key(&self) -> String {
        format!("vellum:path-index:{}/{}", self.service.name, self.schema_id)
    }

    /// The path indexes of the table, with their validity. Only names vellum makes are listed.
    async fn existing(&self, client: &impl GenericClient) -> Result<Vec<(String, bool)>> {
        let rows = client
            .query(
                sql::PATH_INDEXES,
                &[&self.service.name.as_str(), &self.schema_id.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<_, String>(0)?, row.try_get(1)?)))
            .filter(|found| {
                found
                    .as_ref()
                    .map_or(true, |(name, _)| is_path_index_name(name))
            })
            .collect()
    }

    async fn drop(&self, client: &impl GenericClient, name: &str) -> Result<()> {
        for statement in sql::drop_path_index(&self.service.name, name) {
            client.batch_execute(&statement).await?;
        }
        Ok(())
    }

    /// The statements that create the index: the index itself, and (on PostgreSQL 14 and later)
    /// statistics on its expression.
    async fn ddl(
        &self,
        client: &impl GenericClient,
        index: &PathIndex,
        concurrently: bool,
    ) -> Result<IndexDdl> {
        let name = sql::path_index_name(self.schema_id, index);
        let statistics = sql::path_statistics_name(&name);
        let params: [&(dyn ToSql + Sync); 8] = [
            &index.unique,
            &concurrently,
            &name,
            &self.service.name.as_str(),
            &self.schema_id.as_str(),
            &index.date_time,
            &index.segments,
            &statistics,
        ];
        let row = client.query_one(sql::PATH_INDEX_DDL, &params).await?;
        Ok(IndexDdl {
            index: row.try_get(0)?,
            statistics: row.try_get(1)?,
        })
    }
}

/// The statements that make one path index.
struct IndexDdl {
    index: String,
    statistics: Option<String>,
}

/// Whether `name` is one [`sql::path_index_name`] makes: the prefix and 16 hex digits.
fn is_path_index_name(name: &str) -> bool {
    name.strip_prefix(sql::PATH_INDEX_PREFIX)
        .is_some_and(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// A pooled connection holding the session-level index lock of an entity type. Unlocked
/// explicitly; if dropped locked (an error, a cancelled request), the connection is taken out of
/// the pool and closed, which releases the lock, rather than returned to the pool holding it.
struct Locked {
    client: Option<Object>,
    key: String,
}

impl Locked {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("held until unlocked or dropped")
    }

    async fn unlock(mut self) -> Result<()> {
        let client = self.client.take().expect("held until unlocked or dropped");
        let unlocked = client
            .execute(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                &[&self.key],
            )
            .await;
        if unlocked.is_err() {
            drop(Object::take(client));
        }
        unlocked?;
        Ok(())
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// The pointer of the unique path index named `index` in `schema` (the version a refused write
/// was validated against), for naming it in [`Error::UniqueViolation`].
pub(crate) fn unique_pointer(
    schema_id: &SchemaId,
    schema: Option<&CompiledSchema>,
    index: &str,
) -> String {
    schema
        .and_then(|schema| {
            schema
                .annotations()
                .indexes
                .iter()
                .find(|i| sql::path_index_name(schema_id, i) == index)
        })
        .map_or_else(|| format!(" (index {index})"), |i| i.pointer.clone())
}
