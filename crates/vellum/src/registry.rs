//! The schema repository of a service: versioned, immutable JSON Schemas per entity type.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Row, types::ToSql};
use vellum_core::{CompiledSchema, SchemaId, Version, compat::Assessment};

use crate::{
    Error, MigrationInfo, Result, SchemaMigration, Service, entity::parse_stored,
    indexes::PathIndexes, sql,
};

/// One registered schema version, without its definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaVersionInfo {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The version.
    pub schema_version: Version,
    /// Whether writes use this version by default.
    pub is_active: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed state (activated, deactivated, deleted).
    pub updated_at: DateTime<Utc>,
    /// When it was soft-deleted; deleted versions cannot be written with.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One registered schema version with its definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaVersion {
    /// State and identity.
    #[serde(flatten)]
    pub info: SchemaVersionInfo,
    /// The JSON Schema (draft 2020-12), exactly as registered.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub definition: Value,
    /// Only in the answer to [`SchemaRegistry::register`], for a version with a predecessor:
    /// how it compares with it (every change and its class), and the compatibility mode it was
    /// checked under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<Assessment>,
    /// The migration the version was registered with, for the first version of a major line
    /// above another (SPEC §4.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationInfo>,
}

/// An entity type with its active version, as listed by [`SchemaRegistry::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaSummary {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The version writes use by default, if any version is active.
    pub active_version: Option<Version>,
    /// How many versions are registered, soft-deleted ones included.
    pub versions: i64,
}

/// The schema repository of one service; see [`Service::schemas`].
#[derive(Debug, Clone, Copy)]
pub struct SchemaRegistry<'a> {
    pub(crate) service: &'a Service,
}

const INFO_COLUMNS: &str =
    "schema_id, schema_version, is_active, created_at, updated_at, deleted_at";

impl<'a> SchemaRegistry<'a> {
    pub(crate) fn new(service: &'a Service) -> Self {
        Self { service }
    }

    /// Registers a new schema version.
    ///
    /// The definition must be a valid JSON Schema 2020-12 with local `$ref`s only. The version
    /// must be new and greater than every version already registered in its major line. The
    /// first version of a schema id becomes active and provisions the entity table; later
    /// versions become active only when `activate` is set.
    ///
    /// A later version is classified against its predecessor, the greatest non-deleted version
    /// lower than it (SPEC §4.2). It is refused with [`Error::IncompatibleSchema`], and nothing
    /// is registered, when the bump its number declares (major, minor or patch) is smaller than
    /// the class of the change, or when, within a major line, the schema id's
    /// [compatibility mode](Self::compatibility) refuses a change. A new major version is exempt
    /// from the mode. The answer carries the [`Assessment`] when there was a predecessor.
    ///
    /// The path indexes a version declares (`x-vellum-index`, `x-vellum-ref`) are built before
    /// it becomes active, without blocking writers; a unique index that the active documents
    /// violate refuses the registration. Every `x-vellum-ref` must name this schema id or one
    /// already registered.
    pub async fn register(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: Value,
        activate: bool,
    ) -> Result<SchemaVersion> {
        self.register_checked(schema_id, version, definition, None, activate)
            .await
    }

    /// [`register`](Self::register), with the migration of a new major version.
    pub(crate) async fn register_checked(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: Value,
        migration: Option<SchemaMigration>,
        activate: bool,
    ) -> Result<SchemaVersion> {
        let compiled = Arc::new(CompiledSchema::compile(
            &definition,
            self.service.store.schema_limits(),
        )?);
        let indexes = PathIndexes::new(self.service, schema_id);
        let prebuilt = activate && indexes.table_exists().await?;
        if prebuilt {
            indexes.build(&compiled).await?;
        }
        let registered = self
            .register_version(
                schema_id,
                version,
                definition,
                migration.as_ref(),
                activate,
                &compiled,
            )
            .await;
        if prebuilt {
            // Refused: drop what was built for it. Registered: drop what the old version wanted.
            indexes.drop_unwanted().await?;
        }
        registered
    }

    async fn register_version(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: Value,
        migration: Option<&SchemaMigration>,
        activate: bool,
        compiled: &Arc<CompiledSchema>,
    ) -> Result<SchemaVersion> {
        let mut client = self.service.client().await?;
        let tx = client.transaction().await?;
        let registered = self
            .register_in(
                &tx, schema_id, version, definition, migration, activate, compiled, false,
            )
            .await?;
        tx.commit().await?;
        self.service.store.forget_active(&self.service.name);
        if let Some(SchemaMigration::Function(function)) = migration {
            self.service.store.install_migration_fn(
                (self.service.name.clone(), schema_id.clone(), version),
                function.clone(),
            );
        }
        self.cache(schema_id, version, compiled);
        Ok(registered)
    }

    pub(crate) fn cache(
        &self,
        schema_id: &SchemaId,
        version: Version,
        compiled: &Arc<CompiledSchema>,
    ) {
        self.service.store.cache_validator(
            (self.service.name.clone(), schema_id.clone(), version),
            compiled.clone(),
        );
    }

    /// Registers one version in `tx`, which the caller commits, with the migration of a new
    /// major version (a Rust one is for the caller to install once committed). With
    /// `indexes_in_tx`, a version that becomes active gets its path indexes created in `tx`
    /// (for a table created earlier in the same transaction, which no other session can see or
    /// write).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn register_in(
        &self,
        tx: &Transaction<'_>,
        schema_id: &SchemaId,
        version: Version,
        definition: Value,
        migration: Option<&SchemaMigration>,
        activate: bool,
        compiled: &Arc<CompiledSchema>,
        indexes_in_tx: bool,
    ) -> Result<SchemaVersion> {
        if let Some(SchemaMigration::Operations(operations)) = migration {
            operations.check().map_err(|err| Error::InvalidMigration {
                schema_id: schema_id.to_string(),
                version,
                reason: err.to_string(),
                documents_checked: 0,
                documents_failing: 0,
                samples: Vec::new(),
            })?;
        }
        let table = self.table();
        self.lock_schema_id(tx, schema_id).await?;
        let existing: Vec<(Version, bool)> = tx
            .query(
                &format!("SELECT schema_version, is_active FROM {table} WHERE schema_id = $1"),
                &[&schema_id.as_str()],
            )
            .await?
            .iter()
            .map(|row| Ok((parse_stored(row.try_get(0)?)?, row.try_get(1)?)))
            .collect::<Result<_>>()?;
        let registered: Vec<Version> = existing.iter().map(|(v, _)| *v).collect();
        check_new_version(schema_id, &registered, version)?;
        let assessment = self.assess_in(tx, schema_id, version, &definition).await?;
        if let Some(incompatibility) = assessment.incompatibility.clone() {
            return Err(Error::incompatible(schema_id, version, incompatibility));
        }
        if let Some(predecessor) = assessment.predecessor {
            tracing::info!(
                service = %self.service.name, %schema_id, %version, %predecessor,
                class = %assessment.class, changes = assessment.changes.len(),
                "schema version classified"
            );
        }
        self.check_references(tx, schema_id, compiled).await?;
        let first = existing.is_empty();
        let previous_major = if first {
            if migration.is_some() {
                return Err(Error::InvalidMigration {
                    schema_id: schema_id.to_string(),
                    version,
                    reason: "the first version of a schema id takes no migration".to_owned(),
                    documents_checked: 0,
                    documents_failing: 0,
                    samples: Vec::new(),
                });
            }
            None
        } else {
            self.check_migration_rule(schema_id, version, &registered, migration)?
        };
        if let (Some(previous), Some(migration)) = (previous_major, migration) {
            self.check_migration_on_documents(
                tx, schema_id, version, previous, migration, compiled,
            )
            .await?;
        }
        if first {
            tx.batch_execute(&self.service.idents.entity_table_ddl(schema_id))
                .await?;
            PathIndexes::new(self.service, schema_id)
                .create_in(tx, compiled)
                .await?;
        }
        let active = first || activate;
        if active && !first && indexes_in_tx {
            PathIndexes::new(self.service, schema_id)
                .create_in(tx, compiled)
                .await?;
        }
        if active && !first {
            tx.execute(
                &format!(
                    "UPDATE {table} SET is_active = false, updated_at = clock_timestamp()
                     WHERE schema_id = $1 AND is_active"
                ),
                &[&schema_id.as_str()],
            )
            .await?;
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO {table} (schema_id, schema_version, major, minor, patch,
                                          schema_definition, is_active)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {INFO_COLUMNS}"
                ),
                &[
                    &schema_id.as_str(),
                    &version.to_string(),
                    &(version.major as i32),
                    &(version.minor as i32),
                    &(version.patch as i32),
                    &definition,
                    &active,
                ],
            )
            .await?;
        let recorded = match migration {
            Some(migration) => Some(
                self.insert_migration(tx, schema_id, version, migration)
                    .await?,
            ),
            None => None,
        };
        Ok(SchemaVersion {
            info: info_from_row(&row)?,
            definition,
            assessment: assessment.predecessor.is_some().then_some(assessment),
            migration: recorded,
        })
    }

    /// Every entity type of the service with its active version.
    pub async fn list(&self) -> Result<Vec<SchemaSummary>> {
        let client = self.service.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT schema_id, max(schema_version) FILTER (WHERE is_active), count(*)
                     FROM {} GROUP BY schema_id ORDER BY schema_id",
                    self.table()
                ),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SchemaSummary {
                    schema_id: schema_id_from(row)?,
                    active_version: row
                        .try_get::<_, Option<&str>>(1)?
                        .map(parse_stored)
                        .transpose()?,
                    versions: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Every version of a schema id in semver order, soft-deleted ones included.
    pub async fn versions(&self, schema_id: &SchemaId) -> Result<Vec<SchemaVersionInfo>> {
        let client = self.service.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM {} WHERE schema_id = $1 ORDER BY major, minor, patch",
                    self.table()
                ),
                &[&schema_id.as_str()],
            )
            .await?;
        if rows.is_empty() {
            return Err(Error::NotFound {
                what: format!("schema {schema_id}"),
            });
        }
        rows.iter().map(info_from_row).collect()
    }

    /// One version with its definition; `None` reads the active version. A soft-deleted
    /// version is returned only when `include_deleted` is set.
    pub async fn get(
        &self,
        schema_id: &SchemaId,
        version: Option<Version>,
        include_deleted: bool,
    ) -> Result<SchemaVersion> {
        let client = self.service.client().await?;
        let table = self.table();
        let row = match version {
            Some(version) => {
                client
                    .query_opt(
                        &format!(
                            "SELECT {INFO_COLUMNS}, schema_definition FROM {table}
                             WHERE schema_id = $1 AND schema_version = $2
                               AND (deleted_at IS NULL OR $3)"
                        ),
                        &[&schema_id.as_str(), &version.to_string(), &include_deleted],
                    )
                    .await?
            }
            None => {
                client
                    .query_opt(
                        &format!(
                            "SELECT {INFO_COLUMNS}, schema_definition FROM {table}
                             WHERE schema_id = $1 AND is_active"
                        ),
                        &[&schema_id.as_str()],
                    )
                    .await?
            }
        };
        let row = row.ok_or_else(|| Error::NotFound {
            what: match version {
                Some(v) => format!("schema {schema_id} version {v}"),
                None => format!("active version of schema {schema_id}"),
            },
        })?;
        let info = info_from_row(&row)?;
        let migration = self
            .migration_to(&client, schema_id, info.schema_version)
            .await?;
        Ok(SchemaVersion {
            info,
            definition: row.try_get(6)?,
            assessment: None,
            migration,
        })
    }

    /// Makes `version` the one writes use by default. It must exist and not be deleted.
    ///
    /// The path indexes the version declares are built first, without blocking writers; those
    /// only the previously active version wanted are dropped after.
    pub async fn activate(
        &self,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<SchemaVersionInfo> {
        let compiled = self.compiled(schema_id, version).await?;
        let indexes = PathIndexes::new(self.service, schema_id);
        indexes.build(&compiled).await?;
        let activated = self.activate_version(schema_id, version).await;
        indexes.drop_unwanted().await?;
        activated
    }

    async fn activate_version(
        &self,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<SchemaVersionInfo> {
        let mut client = self.service.client().await?;
        let tx = client.transaction().await?;
        let table = self.table();
        self.lock_schema_id(&tx, schema_id).await?;
        let target = self.lock_version(&tx, schema_id, version).await?;
        if target.is_active {
            return Ok(target);
        }
        tx.execute(
            &format!(
                "UPDATE {table} SET is_active = false, updated_at = clock_timestamp()
                 WHERE schema_id = $1 AND is_active"
            ),
            &[&schema_id.as_str()],
        )
        .await?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE {table} SET is_active = true, updated_at = clock_timestamp()
                     WHERE schema_id = $1 AND schema_version = $2 RETURNING {INFO_COLUMNS}"
                ),
                &[&schema_id.as_str(), &version.to_string()],
            )
            .await?;
        tx.commit().await?;
        self.service.store.forget_active(&self.service.name);
        info_from_row(&row)
    }

    /// Soft-deletes a version: it stays readable but can no longer be written with. The active
    /// version cannot be deleted; activate another one first.
    pub async fn delete(
        &self,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<SchemaVersionInfo> {
        let mut client = self.service.client().await?;
        let tx = client.transaction().await?;
        self.lock_schema_id(&tx, schema_id).await?;
        let target = self.lock_version(&tx, schema_id, version).await?;
        if target.is_active {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {version} is active; activate another version before deleting it"
            )));
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE {} SET deleted_at = clock_timestamp(), updated_at = clock_timestamp()
                     WHERE schema_id = $1 AND schema_version = $2 RETURNING {INFO_COLUMNS}",
                    self.table()
                ),
                &[&schema_id.as_str(), &version.to_string()],
            )
            .await?;
        tx.commit().await?;
        self.service.store.forget_active(&self.service.name);
        info_from_row(&row)
    }

    /// The compiled definition of a registered version (deleted ones included), from the
    /// store's validator cache when it is there.
    pub(crate) async fn compiled(
        &self,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<Arc<CompiledSchema>> {
        let key = (self.service.name.clone(), schema_id.clone(), version);
        if let Some(compiled) = self.service.store.cached_validator(&key) {
            return Ok(compiled);
        }
        let found = self.get(schema_id, Some(version), true).await?;
        let compiled = Arc::new(CompiledSchema::compile(
            &found.definition,
            self.service.store.schema_limits(),
        )?);
        self.service.store.cache_validator(key, compiled.clone());
        Ok(compiled)
    }

    /// Every `x-vellum-ref` must name this schema id or a registered one: a reference to a type
    /// that does not exist could never be satisfied.
    async fn check_references(
        &self,
        tx: &impl GenericClient,
        schema_id: &SchemaId,
        compiled: &CompiledSchema,
    ) -> Result<()> {
        for reference in &compiled.annotations().references {
            if &reference.target == schema_id {
                continue;
            }
            let registered = tx
                .query_opt(
                    &format!(
                        "SELECT 1 FROM {} WHERE schema_id = $1 LIMIT 1",
                        self.table()
                    ),
                    &[&reference.target.as_str()],
                )
                .await?
                .is_some();
            if !registered {
                return Err(Error::NotAllowed(format!(
                    "{schema_id}{} references entity type {}, which has no registered schema; \
                     register it first",
                    reference.pointer, reference.target
                )));
            }
        }
        Ok(())
    }

    /// Starts a change of one schema id in `tx`: applies the store's statement timeout, and
    /// serializes the changes of the schema id (registration, activation, deletion, mode) until the
    /// transaction ends, so the ordering rule and the one-active-version rule hold under
    /// concurrent callers. The two statements are pipelined: one round trip.
    pub(crate) async fn lock_schema_id(
        &self,
        tx: &impl GenericClient,
        schema_id: &SchemaId,
    ) -> Result<()> {
        let key = format!("vellum:schema:{}/{}", self.service.name, schema_id);
        let params: [&(dyn ToSql + Sync); 1] = [&key];
        let lock = tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &params,
        );
        match self.service.store.statement_timeout() {
            Some(timeout) => {
                let set_timeout = sql::set_statement_timeout(timeout);
                let (set, locked) = tokio::join!(tx.batch_execute(&set_timeout), lock);
                set?;
                locked?;
            }
            None => {
                lock.await?;
            }
        }
        Ok(())
    }

    /// Locks a live (not deleted) version row for a state change.
    async fn lock_version(
        &self,
        tx: &impl GenericClient,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<SchemaVersionInfo> {
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {INFO_COLUMNS} FROM {} WHERE schema_id = $1 AND schema_version = $2
                     FOR UPDATE",
                    self.table()
                ),
                &[&schema_id.as_str(), &version.to_string()],
            )
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("schema {schema_id} version {version}"),
            })?;
        let info = info_from_row(&row)?;
        if info.deleted_at.is_some() {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {version} is deleted"
            )));
        }
        Ok(info)
    }

    fn table(&self) -> String {
        self.service.idents.fixed("schemas")
    }
}

/// Whether `version` may be registered next to the `registered` ones: it must be new, and greater
/// than every version of its major line.
pub(crate) fn check_new_version(
    schema_id: &SchemaId,
    registered: &[Version],
    version: Version,
) -> Result<()> {
    if registered.contains(&version) {
        return Err(Error::AlreadyExists {
            what: format!("schema {schema_id} version {version}"),
        });
    }
    if let Some(newest) = registered
        .iter()
        .copied()
        .filter(|v| v.major == version.major)
        .max()
        && newest > version
    {
        return Err(Error::NotAllowed(format!(
            "schema {schema_id} version {version} is lower than {newest}, already registered \
             in major line {}: new versions must be greater than every version of their major",
            version.major
        )));
    }
    Ok(())
}

fn schema_id_from(row: &Row) -> Result<SchemaId> {
    SchemaId::new(row.try_get::<_, String>(0)?).map_err(|e| Error::Corrupt(e.to_string()))
}

fn info_from_row(row: &Row) -> Result<SchemaVersionInfo> {
    Ok(SchemaVersionInfo {
        schema_id: schema_id_from(row)?,
        schema_version: parse_stored(row.try_get(1)?)?,
        is_active: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        deleted_at: row.try_get(5)?,
    })
}
