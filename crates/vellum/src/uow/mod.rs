//! The unit of work: one atomic commit of entity writes, with an actor and one commit time.

mod flush;
mod options;
mod stats;
mod validate;

use std::{collections::HashMap, sync::Arc};

use deadpool_postgres::Object;
use serde_json::Value;
use tokio_postgres::{Row, types::ToSql};
use tracing::instrument;
use uuid::Uuid;
use vellum_core::{CompiledSchema, SchemaId, Version};

pub(crate) use flush::{CommitSql, stamp_sql};
pub use options::{Committed, Staged, UowOptions, WriteOptions};
pub(crate) use stats::UowCounters;
pub use stats::UowStats;
pub(crate) use validate::check;
use validate::{ReferenceCheck, Validated};

use crate::{
    Entity, Error, Event, Result, Service,
    entity::COLUMNS,
    known::{EntityKey, KnownVersion},
    raw::RawSql,
    sql,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Shared with the unit of work's [`Current`] view of the entity; moved out at commit.
    payload: Arc<Value>,
    expected: Option<Version>,
    /// The stored version this write follows (none for a create).
    previous: Option<KnownVersion>,
    /// `previous` came from what this process knew, not from a read in this transaction: the
    /// commit alone checks that it is still the latest.
    unread: bool,
    references: Vec<ReferenceCheck>,
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

/// What the unit of work knows of an entity it touched: its latest version, staged or stored.
#[derive(Debug, Clone)]
struct Current {
    revision: i64,
    entity_version: Version,
    schema_version: Version,
    payload: Arc<Value>,
    deleted: bool,
}

impl Current {
    fn version(&self) -> KnownVersion {
        KnownVersion {
            entity_version: self.entity_version,
            revision: self.revision,
            schema_version: self.schema_version,
        }
    }
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
    /// Whether the pooled session is not under the service's settings yet: the transaction
    /// sets them ([`Service::begin_uow_sql`]).
    enter_session: bool,
    /// Whether raw SQL ran, which may have changed the session's settings.
    ran_raw: bool,
    in_transaction: bool,
    state: State,
    failed: Option<String>,
    ops: Vec<Op>,
    /// Events emitted, in order; written to the outbox at commit.
    events: Vec<Event>,
    current: HashMap<(SchemaId, Uuid), Current>,
    active_schemas: HashMap<SchemaId, Version>,
    /// Entity types whose active version came from the store's cache rather than from this
    /// transaction, with the registry generation it was seen at: the commit checks, in the same
    /// round trip, that the generation has not moved, or else that each version may still be
    /// written, with the active version in the same line (`vellum.expect_writable_schema`).
    unconfirmed_active: Vec<(SchemaId, i64)>,
    /// Schema versions this unit of work has checked are live, with their validators.
    schemas: HashMap<(SchemaId, Version), Arc<CompiledSchema>>,
}

impl std::fmt::Debug for UnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitOfWork")
            .field("uow_id", &self.uow_id)
            .field("service", &self.service.name)
            .field("actor", &self.options.actor)
            .field("staged", &self.ops.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl UnitOfWork {
    pub(crate) async fn begin(service: Service, options: UowOptions) -> Result<Self> {
        options.check()?;
        let client = service.service_client().await?;
        let enter_session = !service
            .store
            .sessions()
            .is_under(&client, service.session());
        Ok(Self {
            service,
            client: Some(client),
            uow_id: Uuid::now_v7(),
            options,
            enter_session,
            ran_raw: false,
            in_transaction: false,
            state: State::Open,
            failed: None,
            ops: Vec::new(),
            events: Vec::new(),
            current: HashMap::new(),
            active_schemas: HashMap::new(),
            unconfirmed_active: Vec::new(),
            schemas: HashMap::new(),
        })
    }

    /// The id this unit of work is recorded under.
    pub fn id(&self) -> Uuid {
        self.uow_id
    }

    /// Stages a new entity; validated now, stored at commit as revision 1, version 1.0.0.
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id))]
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
    ///
    /// With an expected version (optimistic locking) that is the version this process last
    /// wrote or read of the entity, the update is staged without reading the entity, and the
    /// commit checks that the version is still the latest: a stale expected version then fails
    /// the commit with [`Error::VersionConflict`] rather than this call. Otherwise the entity is
    /// read (and, without an expected version, locked) in the unit of work's transaction.
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id))]
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

    /// Stages a new version computed from the entity's latest version, as this unit of work
    /// sees it (its own staged write, or the stored version): `change` edits a copy of that
    /// document (a JSON Merge Patch, say), and the result is validated like any update.
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id, %entity_id))]
    pub async fn update_with<F>(
        &mut self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        options: WriteOptions,
        change: F,
    ) -> Result<Staged>
    where
        F: FnOnce(&mut Value) + Send,
    {
        let result = async {
            let current = self
                .live(schema_id, entity_id, options.expected_version)
                .await?;
            let mut payload = Value::clone(&current.payload);
            change(&mut payload);
            let schema_version = self
                .validate(schema_id, options.schema_version, &payload)
                .await?;
            Ok(self.stage(
                OpKind::Update,
                schema_id,
                entity_id,
                Some(current.version()),
                schema_version,
                Arc::new(payload),
                options.expected_version,
            ))
        }
        .await;
        self.record(result)
    }

    /// Stages a soft delete of the entity's active version; every version stays in history.
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id))]
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
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id))]
    pub async fn undelete(&mut self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Staged> {
        let result = self.stage_undelete(schema_id, entity_id).await;
        self.record(result)
    }

    /// Emits an event: it is written to the service's outbox at commit, in the same
    /// transaction as the writes, so it is published if and only if the unit of work commits.
    /// Returns the event id. An event whose names break the subject grammar is refused with
    /// [`Error::InvalidEvent`] (and, like any failed operation, fails the unit of work).
    pub fn emit(&mut self, event: Event) -> Result<Uuid> {
        self.usable()?;
        let result = event.check().and_then(|()| {
            if self.events.iter().any(|e| e.event_id == event.event_id) {
                return Err(Error::InvalidEvent(format!(
                    "event id {} is emitted twice",
                    event.event_id
                )));
            }
            Ok(event.event_id)
        });
        if result.is_ok() {
            self.events.push(event);
        }
        self.record(result)
    }

    /// The current committed version of an entity, read inside this unit of work's transaction.
    ///
    /// Not finding the entity is an answer, not a failure: it leaves the unit of work usable.
    #[instrument(level = "debug", skip_all, fields(uow_id = %self.uow_id, %schema_id))]
    pub async fn get(&mut self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Entity> {
        let result = self.read_current(schema_id, entity_id, false).await;
        self.record(result)?
            .filter(|e| !e.is_deleted())
            .ok_or_else(|| Error::NotFound {
                what: format!("entity {schema_id}/{entity_id}"),
            })
    }

    /// The raw-SQL escape hatch: statements with bound parameters, run inside this unit of
    /// work's transaction under the service's role. For tuning and maintenance, never needed
    /// for domain work; the immutability triggers and role privileges apply to it as to
    /// everything else.
    pub fn raw(&mut self) -> RawSql<'_> {
        RawSql::new(self)
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
        let validated = self
            .validate(schema_id, options.schema_version, &payload)
            .await?;
        Ok(self.stage(
            OpKind::Create,
            schema_id,
            entity_id,
            None,
            validated,
            Arc::new(payload),
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
        // An expected version this process saw written or read last needs no read: the commit
        // checks it is still the latest, and the whole unit of work is one round trip.
        let known = match options.expected_version {
            Some(expected) if !self.current.contains_key(&(schema_id.clone(), entity_id)) => {
                let key = EntityKey::new(&self.service.name, schema_id, entity_id);
                self.service.store.known_versions().get(&key, expected)
            }
            _ => None,
        };
        let previous = match known {
            Some(known) => known,
            None => self
                .live(schema_id, entity_id, options.expected_version)
                .await?
                .version(),
        };
        let validated = self
            .validate(schema_id, options.schema_version, &payload)
            .await?;
        let staged = self.stage(
            OpKind::Update,
            schema_id,
            entity_id,
            Some(previous),
            validated,
            Arc::new(payload),
            options.expected_version,
        );
        self.ops
            .last_mut()
            .expect("an update was just staged")
            .unread = known.is_some();
        Ok(staged)
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
            Some(current.version()),
            Validated {
                schema_version: current.schema_version,
                references: Vec::new(),
            },
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
        let validated = self
            .validate(schema_id, Some(current.schema_version), &current.payload)
            .await?;
        let payload = current.payload.clone();
        Ok(self.stage(
            OpKind::Undelete,
            schema_id,
            entity_id,
            Some(current.version()),
            validated,
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
        previous: Option<KnownVersion>,
        validated: Validated,
        payload: Arc<Value>,
        expected: Option<Version>,
    ) -> Staged {
        let Validated {
            schema_version,
            references,
        } = validated;
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
            previous,
            unread: false,
            references,
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
            payload: Arc::new(entity.payload),
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
            "SELECT {COLUMNS} FROM {} e WHERE e.is_active AND {} = $1{}",
            self.service.idents.entity_table(schema_id),
            sql::active_entity("e"),
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
        self.in_transaction = true;
        let (begun, rows) = tokio::join!(
            client.batch_execute(self.begin_sql()),
            client.query(&stmt, params)
        );
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
        // The statement may change the session's settings: its next user resets them.
        self.ran_raw = true;
        self.service.store.sessions().leaving(client);
        let result = if self.in_transaction {
            client.query(sql, params).await
        } else {
            self.in_transaction = true;
            let (begun, rows) = tokio::join!(
                client.batch_execute(self.begin_sql()),
                client.query(sql, params)
            );
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

    /// The `BEGIN` batch, with the session's settings when it enters them; such a session is
    /// marked as elsewhere until the unit of work commits. Set `in_transaction` before sending
    /// it: a unit of work dropped while it is in flight must roll back before its connection
    /// goes back to the pool.
    fn begin_sql(&self) -> &str {
        if self.enter_session
            && let Some(client) = &self.client
        {
            self.service.store.sessions().leaving(client);
        }
        self.service.begin_uow_sql(self.enter_session)
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
            self.service.store.counters().failed(err);
            self.failed = Some(err.to_string());
        }
        result
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
