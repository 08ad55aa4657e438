//! The unit of work: one atomic commit of entity writes, with an actor and one commit time.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures_util::{
    TryFutureExt, TryStreamExt,
    future::{BoxFuture, FutureExt, join_all},
};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Row, Statement, types::ToSql};
use tracing::{debug, instrument};
use uuid::Uuid;
use vellum_core::{CompiledSchema, SchemaId, Version};

use crate::{
    Entity, Error, Result, Service,
    entity::{COLUMNS, parse_stored},
    raw::RawSql,
    service::STAMP_LOCK_CLASS,
    sql,
};

/// Who runs a unit of work, and why; see [`Service::begin_with`].
#[derive(Debug, Clone)]
pub struct UowOptions {
    actor: String,
    correlation_id: Option<String>,
    metadata: Value,
}

impl UowOptions {
    /// A unit of work on behalf of `actor` (a user, a service, a job).
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            correlation_id: None,
            metadata: Value::Object(Default::default()),
        }
    }

    /// Ties the unit of work to a request or a saga.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Free-form audit metadata stored with the unit of work (a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::NotAllowed(reason.to_string()));
        if self.actor.trim().is_empty() {
            return bad("a unit of work needs an actor");
        }
        if self.actor.len() > 256 || self.correlation_id.as_ref().is_some_and(|c| c.len() > 256) {
            return bad("actor and correlation id are at most 256 bytes");
        }
        if !self.metadata.is_object() {
            return bad("unit of work metadata must be a JSON object");
        }
        Ok(())
    }
}

/// Options of one write in a unit of work.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// For a create: the entity id to use instead of a fresh UUIDv7.
    pub entity_id: Option<Uuid>,
    /// Optimistic locking: the write fails with [`Error::VersionConflict`] unless this is the
    /// entity's active version. Without it, the write locks the entity until commit.
    pub expected_version: Option<Version>,
    /// The schema version to validate and store under, instead of the active one. It must be a
    /// non-deleted version of the active version's major.
    pub schema_version: Option<Version>,
}

impl WriteOptions {
    /// Expect `version` to be the active entity version.
    pub fn expect(version: Version) -> Self {
        Self {
            expected_version: Some(version),
            ..Self::default()
        }
    }

    /// Create the entity with this id.
    pub fn with_id(entity_id: Uuid) -> Self {
        Self {
            entity_id: Some(entity_id),
            ..Self::default()
        }
    }

    /// Write under this schema version.
    pub fn under_schema(mut self, version: Version) -> Self {
        self.schema_version = Some(version);
        self
    }
}

/// A write staged in a unit of work: what it will store when the unit of work commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staged {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The entity.
    pub entity_id: Uuid,
    /// The entity version the write creates (for a delete: the version that gets deleted).
    pub entity_version: Version,
    /// Its revision.
    pub revision: i64,
    /// The schema version the payload was validated against.
    pub schema_version: Version,
}

/// The outcome of a committed unit of work.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Committed {
    /// The unit of work, as recorded in the audit trail.
    pub uow_id: Uuid,
    /// The commit time: `created_at` of every version it wrote.
    pub committed_at: DateTime<Utc>,
    /// Every entity version written (or deleted) in staging order.
    pub entities: Vec<Entity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Create,
    Update,
    Undelete,
    Delete,
}

/// One staged write. Creates, updates and undeletes insert a version (after superseding the
/// previous one); deletes mark the active version deleted.
#[derive(Debug)]
struct Op {
    kind: OpKind,
    schema_id: SchemaId,
    entity_id: Uuid,
    revision: i64,
    entity_version: Version,
    schema_version: Version,
    payload: Value,
    expected: Option<Version>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The commit pipeline was sent; its outcome is not known yet.
    Committing,
    /// Committed or rolled back; the connection is clean.
    Done,
}

/// How often a locking read retries after losing the entity to a concurrent writer.
const MAX_LOCK_RETRIES: usize = 100;

type Pipelined<'a> = BoxFuture<'a, Result<Vec<Row>, tokio_postgres::Error>>;

/// A statement as a pipeline stage. `query_raw` sends on its first poll, so polling the stages
/// in order keeps the pipeline in order.
fn pipelined<'a>(
    client: &'a Object,
    stmt: &'a Statement,
    params: Vec<&'a (dyn ToSql + Sync)>,
) -> Pipelined<'a> {
    async move { client.query_raw(stmt, params).await?.try_collect().await }.boxed()
}

/// What the unit of work knows of an entity it touched: its latest version, staged or stored.
#[derive(Debug, Clone)]
struct Current {
    revision: i64,
    entity_version: Version,
    schema_version: Version,
    payload: Value,
    deleted: bool,
}

/// A unit of work: reads, staged writes across the entity types of one service, and one
/// all-or-nothing commit.
///
/// Writes are validated when they are staged and flushed at [`commit`](Self::commit) in one
/// pipelined round trip, so the database transaction stays short. Every version the unit of
/// work writes carries the same commit time, taken at commit.
///
/// Commit is explicit: a unit of work dropped without [`commit`](Self::commit) (an early
/// return, a panic, a cancelled future) is rolled back and writes nothing. After any failed
/// operation the unit of work can only be dropped: `commit` returns
/// [`Error::UnitOfWorkFailed`], so a half-done unit of work never commits.
///
/// Reads ([`get`](Self::get)) and raw SQL run inside the unit of work's transaction and see the
/// committed state plus raw-SQL effects; staged writes become visible at commit.
pub struct UnitOfWork {
    service: Service,
    client: Option<Object>,
    uow_id: Uuid,
    options: UowOptions,
    begin_sql: String,
    in_transaction: bool,
    state: State,
    failed: Option<String>,
    ops: Vec<Op>,
    current: HashMap<(SchemaId, Uuid), Current>,
    active_schemas: HashMap<SchemaId, Version>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("uow_id", &self.uow_id)
            .field("service", &self.service.name)
            .field("actor", &self.options.actor)
            .field("staged", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl UnitOfWork {
    pub(crate) async fn begin(service: Service, options: UowOptions) -> Result<Self> {
        options.check()?;
        let client = service.client().await?;
        let begin_sql = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; {}",
            service.idents.set_role()
        );
        Ok(Self {
            service,
            client: Some(client),
            uow_id: Uuid::now_v7(),
            options,
            begin_sql,
            in_transaction: false,
            state: State::Open,
            failed: None,
            ops: Vec::new(),
            current: HashMap::new(),
            active_schemas: HashMap::new(),
        })
    }

    /// The id this unit of work is recorded under.
    pub fn id(&self) -> Uuid {
        self.uow_id
    }

    /// Stages a new entity; validated now, stored at commit as revision 1, version 1.0.0.
    pub async fn create(
        &mut self,
        schema_id: &SchemaId,
        payload: Value,
        options: WriteOptions,
    ) -> Result<Staged> {
        let result = self.stage_create(schema_id, payload, options).await;
        self.record(result)
    }

    /// Stages a new version of an entity with a whole new payload.
    pub async fn update(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        payload: Value,
        options: WriteOptions,
    ) -> Result<Staged> {
        let result = self
            .stage_update(schema_id, entity_id, payload, options)
            .await;
        self.record(result)
    }

    /// Stages a soft delete of the entity's active version; every version stays in history.
    pub async fn delete(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        expected_version: Option<Version>,
    ) -> Result<Staged> {
        let result = self
            .stage_delete(schema_id, entity_id, expected_version)
            .await;
        self.record(result)
    }

    /// Stages the undelete of a soft-deleted entity: a new version with the deleted payload.
    pub async fn undelete(&mut self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Staged> {
        let result = self.stage_undelete(schema_id, entity_id).await;
        self.record(result)
    }

    /// The current committed version of an entity, read inside this unit of work's transaction.
    pub async fn get(&mut self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Entity> {
        let result = self
            .read_current(schema_id, entity_id, false)
            .await
            .and_then(|row| {
                row.filter(|e| !e.is_deleted())
                    .ok_or_else(|| Error::NotFound {
                        what: format!("entity {schema_id}/{entity_id}"),
                    })
            });
        self.record(result)
    }

    /// The raw-SQL escape hatch: statements with bound parameters, run inside this unit of
    /// work's transaction under the service's role. For tuning and maintenance, never needed
    /// for domain work; the immutability triggers and role privileges apply to it as to
    /// everything else.
    pub fn raw(&mut self) -> RawSql<'_> {
        RawSql::new(self)
    }

    /// Flushes every staged write, records the unit of work, and commits, in one pipelined
    /// round trip. All or nothing: on any error nothing is written.
    #[instrument(skip_all, fields(uow_id = %self.uow_id, service = %self.service.name, actor = %self.options.actor, writes = self.ops.len()))]
    pub async fn commit(mut self) -> Result<Committed> {
        self.usable()?;
        self.state = State::Committing;
        let client = self
            .client
            .as_ref()
            .expect("a unit of work holds its connection until it ends");
        let idents = &self.service.idents;
        let uow_table = idents.fixed("units_of_work");
        let stamp = client
            .prepare_cached(&format!(
                "WITH stamp_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($5, $6))
                 INSERT INTO {uow_table} (uow_id, actor, correlation_id, committed_at, metadata)
                 SELECT $1, $2, $3, clock_timestamp(), $4 FROM stamp_lock
                 RETURNING committed_at"
            ))
            .await?;
        let mut statements = Vec::with_capacity(self.ops.len() * 2);
        for op in &self.ops {
            let table = idents.entity_table(&op.schema_id);
            let supersede = match op.kind {
                OpKind::Update | OpKind::Undelete => Some(format!(
                    "WITH s AS (UPDATE {table} e SET is_active = false, updated_at = u.committed_at
                                FROM {uow_table} u
                                WHERE u.uow_id = $1 AND e.entity_id = $2 AND e.revision = $3
                                  AND e.is_active AND (e.deleted_at IS NOT NULL) = $4
                                RETURNING 1)
                     SELECT vellum.expect_changed(count(*), $5) FROM s"
                )),
                OpKind::Create | OpKind::Delete => None,
            };
            let write = match op.kind {
                OpKind::Delete => format!(
                    "WITH s AS (UPDATE {table} e SET deleted_at = u.committed_at,
                                       deleted_uow_id = u.uow_id, updated_at = u.committed_at
                                FROM {uow_table} u
                                WHERE u.uow_id = $1 AND e.entity_id = $2 AND e.revision = $3
                                  AND e.is_active AND e.deleted_at IS NULL
                                RETURNING 1)
                     SELECT vellum.expect_changed(count(*), $4) FROM s"
                ),
                _ => format!(
                    "INSERT INTO {table} (entity_id, revision, entity_version, schema_id,
                                          schema_version, payload, created_at, updated_at, uow_id)
                     SELECT $1, $2, $3, $4, $5, $6, u.committed_at, u.committed_at, u.uow_id
                     FROM {uow_table} u WHERE u.uow_id = $7"
                ),
            };
            let supersede = match supersede {
                Some(sql) => Some(client.prepare_cached(&sql).await?),
                None => None,
            };
            statements.push((supersede, client.prepare_cached(&write).await?));
        }

        // Parameters must outlive the pipelined futures.
        let texts: Vec<[String; 4]> = self
            .ops
            .iter()
            .map(|op| {
                let what = format!(
                    "{}/{} revision {}",
                    op.schema_id,
                    op.entity_id,
                    op.revision - 1
                );
                [
                    op.entity_version.to_string(),
                    op.schema_version.to_string(),
                    what,
                    op.schema_id.to_string(),
                ]
            })
            .collect();
        let revisions: Vec<(i64, bool)> = self
            .ops
            .iter()
            .map(|op| match op.kind {
                OpKind::Delete => (op.revision, false),
                OpKind::Undelete => (op.revision - 1, true),
                _ => (op.revision - 1, false),
            })
            .collect();

        // Every statement is sent before any answer is read; a failing statement aborts the
        // transaction, and the trailing COMMIT then rolls it back.
        let run = |stmt, params| pipelined(client, stmt, params);
        let mut pipeline: Vec<(Option<usize>, Pipelined<'_>)> = Vec::new();
        if !self.in_transaction {
            pipeline.push((
                None,
                client
                    .batch_execute(&self.begin_sql)
                    .map_ok(|()| vec![])
                    .boxed(),
            ));
        }
        let stamp_params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.uow_id,
            &self.options.actor,
            &self.options.correlation_id,
            &self.options.metadata,
            &STAMP_LOCK_CLASS,
            &self.service.lock_key,
        ];
        pipeline.push((None, run(&stamp, stamp_params)));
        for (index, (op, (supersede, write))) in self.ops.iter().zip(&statements).enumerate() {
            let [entity_version, schema_version, what, schema_id] = &texts[index];
            let (revision, deleted) = &revisions[index];
            if let Some(supersede) = supersede {
                let params: Vec<&(dyn ToSql + Sync)> =
                    vec![&self.uow_id, &op.entity_id, revision, deleted, what];
                pipeline.push((Some(index), run(supersede, params)));
            }
            let params: Vec<&(dyn ToSql + Sync)> = match op.kind {
                OpKind::Delete => vec![&self.uow_id, &op.entity_id, revision, what],
                _ => vec![
                    &op.entity_id,
                    &op.revision,
                    entity_version,
                    schema_id,
                    schema_version,
                    &op.payload,
                    &self.uow_id,
                ],
            };
            pipeline.push((Some(index), run(write, params)));
        }
        pipeline.push((
            None,
            client.batch_execute("COMMIT").map_ok(|()| vec![]).boxed(),
        ));

        let (owners, futures): (Vec<_>, Vec<_>) = pipeline.into_iter().unzip();
        let mut results = join_all(futures).await;
        // The first failure in pipeline order is the cause; later ones only report the abort.
        if let Some(failed) = results.iter().position(Result::is_err) {
            let err = results
                .swap_remove(failed)
                .expect_err("position found an error");
            if err.as_db_error().is_some() {
                // The server answered every statement and the trailing COMMIT rolled back:
                // the connection is clean. Otherwise the outcome is unknown and Drop closes it.
                self.state = State::Done;
            }
            return Err(self.commit_error(owners[failed].map(|i| &self.ops[i]), err));
        }
        self.state = State::Done;
        let stamp_index = usize::from(!self.in_transaction);
        let committed_at: DateTime<Utc> = results[stamp_index]
            .as_ref()
            .ok()
            .and_then(|rows| rows.first())
            .map(|row| row.try_get(0))
            .transpose()?
            .ok_or_else(|| Error::Corrupt("commit stamp missing".into()))?;
        debug!(%committed_at, "unit of work committed");
        let entities = self.committed_entities(committed_at);
        Ok(Committed {
            uow_id: self.uow_id,
            committed_at,
            entities,
        })
    }

    /// Rolls back explicitly (dropping the unit of work does the same).
    pub async fn rollback(mut self) -> Result<()> {
        if self.in_transaction {
            let client = self
                .client
                .as_ref()
                .expect("a unit of work holds its connection until it ends");
            client.batch_execute("ROLLBACK").await?;
        }
        self.state = State::Done;
        Ok(())
    }

    async fn stage_create(
        &mut self,
        schema_id: &SchemaId,
        payload: Value,
        options: WriteOptions,
    ) -> Result<Staged> {
        let entity_id = options.entity_id.unwrap_or_else(Uuid::now_v7);
        if self.current.contains_key(&(schema_id.clone(), entity_id)) {
            return Err(Error::AlreadyExists {
                what: format!("entity {schema_id}/{entity_id}"),
            });
        }
        let schema_version = self
            .validate(schema_id, options.schema_version, &payload)
            .await?;
        Ok(self.stage(
            OpKind::Create,
            schema_id,
            entity_id,
            None,
            schema_version,
            payload,
            None,
        ))
    }

    async fn stage_update(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        payload: Value,
        options: WriteOptions,
    ) -> Result<Staged> {
        let current = self
            .live(schema_id, entity_id, options.expected_version)
            .await?;
        let schema_version = self
            .validate(schema_id, options.schema_version, &payload)
            .await?;
        Ok(self.stage(
            OpKind::Update,
            schema_id,
            entity_id,
            Some(&current),
            schema_version,
            payload,
            options.expected_version,
        ))
    }

    async fn stage_delete(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        expected: Option<Version>,
    ) -> Result<Staged> {
        let current = self.live(schema_id, entity_id, expected).await?;
        let payload = current.payload.clone();
        Ok(self.stage(
            OpKind::Delete,
            schema_id,
            entity_id,
            Some(&current),
            current.schema_version,
            payload,
            expected,
        ))
    }

    async fn stage_undelete(&mut self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Staged> {
        let current = self
            .latest(schema_id, entity_id, true)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("entity {schema_id}/{entity_id}"),
            })?;
        if !current.deleted {
            return Err(Error::NotAllowed(format!(
                "entity {schema_id}/{entity_id} is not deleted"
            )));
        }
        let schema_version = self
            .validate(schema_id, Some(current.schema_version), &current.payload)
            .await?;
        let payload = current.payload.clone();
        Ok(self.stage(
            OpKind::Undelete,
            schema_id,
            entity_id,
            Some(&current),
            schema_version,
            payload,
            None,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        kind: OpKind,
        schema_id: &SchemaId,
        entity_id: Uuid,
        previous: Option<&Current>,
        schema_version: Version,
        payload: Value,
        expected: Option<Version>,
    ) -> Staged {
        let (revision, entity_version) = match (kind, previous) {
            (OpKind::Delete, Some(p)) => (p.revision, p.entity_version),
            (_, Some(p)) => (
                p.revision + 1,
                p.entity_version
                    .next_entity_version(p.schema_version, schema_version),
            ),
            (_, None) => (1, Version::INITIAL),
        };
        self.current.insert(
            (schema_id.clone(), entity_id),
            Current {
                revision,
                entity_version,
                schema_version,
                payload: payload.clone(),
                deleted: kind == OpKind::Delete,
            },
        );
        self.ops.push(Op {
            kind,
            schema_id: schema_id.clone(),
            entity_id,
            revision,
            entity_version,
            schema_version,
            payload,
            expected,
        });
        Staged {
            schema_id: schema_id.clone(),
            entity_id,
            entity_version,
            revision,
            schema_version,
        }
    }

    /// The latest version of an entity that is not deleted, checked against `expected`.
    async fn live(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        expected: Option<Version>,
    ) -> Result<Current> {
        // Without an expected version the write is pessimistic: lock the row until commit.
        let current = self
            .latest(schema_id, entity_id, expected.is_none())
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| Error::NotFound {
                what: format!("entity {schema_id}/{entity_id}"),
            })?;
        if let Some(expected) = expected
            && expected != current.entity_version
        {
            return Err(Error::VersionConflict {
                schema_id: schema_id.to_string(),
                entity_id,
                expected: expected.to_string(),
                found: current.entity_version.to_string(),
            });
        }
        Ok(current)
    }

    /// The latest version known to this unit of work: staged here, or read from the database.
    async fn latest(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        lock: bool,
    ) -> Result<Option<Current>> {
        if let Some(current) = self.current.get(&(schema_id.clone(), entity_id)) {
            return Ok(Some(current.clone()));
        }
        let Some(entity) = self.read_current(schema_id, entity_id, lock).await? else {
            return Ok(None);
        };
        let current = Current {
            revision: entity.revision,
            entity_version: entity.entity_version,
            schema_version: entity.schema_version,
            payload: entity.payload,
            deleted: entity.deleted_at.is_some(),
        };
        self.current
            .insert((schema_id.clone(), entity_id), current.clone());
        Ok(Some(current))
    }

    async fn read_current(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        lock: bool,
    ) -> Result<Option<Entity>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} e WHERE e.entity_id = $1 AND e.is_active{}",
            self.service.idents.entity_table(schema_id),
            if lock { " FOR UPDATE" } else { "" }
        );
        if !lock {
            let rows = self.query(&sql, &[&entity_id], schema_id).await?;
            return rows.first().map(Entity::from_row).transpose();
        }
        let unlocked = sql.trim_end_matches(" FOR UPDATE").to_string();
        // A row locked FOR UPDATE that another unit of work superseded while this one waited
        // drops out of the result; the next statement's snapshot sees its successor. Each retry
        // means another writer committed, so the loop ends; the bound is a safety net.
        for _ in 0..MAX_LOCK_RETRIES {
            let rows = self.query(&sql, &[&entity_id], schema_id).await?;
            if let Some(row) = rows.first() {
                return Entity::from_row(row).map(Some);
            }
            if self
                .query(&unlocked, &[&entity_id], schema_id)
                .await?
                .is_empty()
            {
                return Ok(None);
            }
        }
        Err(Error::VersionConflict {
            schema_id: schema_id.to_string(),
            entity_id,
            expected: "a stable version to lock".into(),
            found: format!("{MAX_LOCK_RETRIES} concurrent changes in a row"),
        })
    }

    /// Validates `payload` against the requested schema version, or the active one; returns
    /// the version it was validated against.
    async fn validate(
        &mut self,
        schema_id: &SchemaId,
        requested: Option<Version>,
        payload: &Value,
    ) -> Result<Version> {
        let active = self.active_schema(schema_id).await?;
        let version = match requested {
            None => active,
            Some(v) if v == active => v,
            Some(v) => {
                if v.major != active.major {
                    return Err(Error::NotAllowed(format!(
                        "schema {schema_id} version {v} is not in the active major line {}.x",
                        active.major
                    )));
                }
                v
            }
        };
        let compiled = self.compiled(schema_id, version).await?;
        compiled
            .validate(payload)
            .map_err(|violations| Error::Validation {
                schema_id: schema_id.to_string(),
                schema_version: version,
                violations,
            })?;
        Ok(version)
    }

    async fn active_schema(&mut self, schema_id: &SchemaId) -> Result<Version> {
        if let Some(version) = self.active_schemas.get(schema_id) {
            return Ok(*version);
        }
        let sql = format!(
            "SELECT schema_version FROM {} WHERE schema_id = $1 AND is_active",
            self.service.idents.fixed("schemas")
        );
        let rows = self.query(&sql, &[&schema_id.as_str()], schema_id).await?;
        let version = match rows.first() {
            Some(row) => parse_stored(row.try_get(0)?)?,
            None => {
                return Err(Error::NotFound {
                    what: format!("entity type {schema_id} in service {}", self.service.name),
                });
            }
        };
        self.active_schemas.insert(schema_id.clone(), version);
        Ok(version)
    }

    async fn compiled(
        &mut self,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<Arc<CompiledSchema>> {
        let key = (self.service.name.clone(), schema_id.clone(), version);
        let live_check = format!(
            "SELECT schema_definition, deleted_at IS NOT NULL FROM {} WHERE schema_id = $1 AND schema_version = $2",
            self.service.idents.fixed("schemas")
        );
        let cached = self.service.store.cached_validator(&key);
        // The definition never changes, but a version can be soft-deleted at any time.
        let rows = self
            .query(
                &live_check,
                &[&schema_id.as_str(), &version.to_string()],
                schema_id,
            )
            .await?;
        let row = rows.first().ok_or_else(|| Error::NotFound {
            what: format!("schema {schema_id} version {version}"),
        })?;
        if row.try_get::<_, bool>(1)? {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {version} is deleted"
            )));
        }
        if let Some(compiled) = cached {
            return Ok(compiled);
        }
        let compiled = Arc::new(CompiledSchema::compile(
            &row.try_get(0)?,
            self.service.store.schema_limits(),
        )?);
        self.service.store.cache_validator(key, compiled.clone());
        Ok(compiled)
    }

    /// Runs a statement in the transaction, starting it (pipelined with the statement) if needed.
    async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        schema_id: &SchemaId,
    ) -> Result<Vec<Row>> {
        let client = self
            .client
            .as_ref()
            .expect("a unit of work holds its connection until it ends");
        let map = |err: tokio_postgres::Error| match sql::db_error(&err) {
            Some(("42P01", _)) => Error::NotFound {
                what: format!("entity type {schema_id} in service {}", self.service.name),
            },
            _ => err.into(),
        };
        let stmt = client.prepare_cached(sql).await.map_err(map)?;
        if self.in_transaction {
            return client.query(&stmt, params).await.map_err(map);
        }
        let (begun, rows) = tokio::join!(
            client.batch_execute(&self.begin_sql),
            client.query(&stmt, params)
        );
        self.in_transaction = true;
        begun?;
        rows.map_err(map)
    }

    pub(crate) async fn raw_query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.usable()?;
        let client = self
            .client
            .as_ref()
            .expect("a unit of work holds its connection until it ends");
        let result = if self.in_transaction {
            client.query(sql, params).await
        } else {
            let (begun, rows) = tokio::join!(
                client.batch_execute(&self.begin_sql),
                client.query(sql, params)
            );
            self.in_transaction = true;
            begun.and(rows)
        };
        let result = result.map_err(|err| match sql::db_error(&err) {
            Some((sql::state::IMMUTABLE, _)) => Error::Immutable(
                err.as_db_error()
                    .map(|e| e.message().to_string())
                    .unwrap_or_default(),
            ),
            _ => err.into(),
        });
        self.record(result)
    }

    fn usable(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => Err(Error::UnitOfWorkFailed {
                uow_id: self.uow_id,
                reason: reason.clone(),
            }),
            None if self.state != State::Open => {
                Err(Error::NotAllowed("the unit of work has ended".into()))
            }
            None => Ok(()),
        }
    }

    /// Remembers the first failure: after it the unit of work can only be dropped.
    fn record<T>(&mut self, result: Result<T>) -> Result<T> {
        self.usable()?;
        if let Err(err) = &result {
            self.failed = Some(err.to_string());
        }
        result
    }

    fn commit_error(&self, op: Option<&Op>, err: tokio_postgres::Error) -> Error {
        let Some(op) = op else {
            return err.into();
        };
        let conflict = || Error::VersionConflict {
            schema_id: op.schema_id.to_string(),
            entity_id: op.entity_id,
            expected: op.expected.map_or_else(
                || format!("revision {}", op.revision - 1),
                |v| v.to_string(),
            ),
            found: "a version written concurrently by another unit of work".into(),
        };
        match sql::db_error(&err) {
            Some((sql::state::CONFLICT, _)) => conflict(),
            Some(("23505", _)) if op.kind == OpKind::Create => Error::AlreadyExists {
                what: format!("entity {}/{}", op.schema_id, op.entity_id),
            },
            Some(("23505", _)) => conflict(),
            Some((sql::state::IMMUTABLE, _)) => Error::Immutable(
                err.as_db_error()
                    .map(|e| e.message().to_string())
                    .unwrap_or_default(),
            ),
            _ => err.into(),
        }
    }

    fn committed_entities(&self, committed_at: DateTime<Utc>) -> Vec<Entity> {
        self.ops
            .iter()
            .map(|op| Entity {
                entity_id: op.entity_id,
                entity_version: op.entity_version,
                revision: op.revision,
                schema_id: op.schema_id.clone(),
                schema_version: op.schema_version,
                payload: op.payload.clone(),
                created_at: committed_at,
                updated_at: committed_at,
                deleted_at: (op.kind == OpKind::Delete).then_some(committed_at),
                is_active: true,
                uow_id: self.uow_id,
            })
            .collect()
    }
}

impl Drop for UnitOfWork {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        match self.state {
            State::Done => return,
            // Cancelled mid-commit: whether COMMIT reached the server is unknown, so the
            // connection cannot go back to the pool. Closing it rolls back an open transaction.
            State::Committing => return drop(Object::take(client)),
            State::Open if !self.in_transaction => return,
            State::Open => {}
        }
        // Not committed: roll back before the connection goes back to the pool. Without a
        // runtime to do that on, close the connection instead; the server rolls back.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}
