//! A handle on one service: its registry, its reads, and units of work.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;
use vellum_core::{CompiledSchema, SchemaId, ServiceName, Version};

use crate::{
    Entity, EntityJson, Error, HistoryEntry, Result, SchemaRegistry, Store, UnitOfWork, UowOptions,
    entity::{COLUMN_COUNT, COLUMNS, known_version},
    known::EntityKey,
    sql::{self, ServiceIdents},
    uow::CommitSql,
};

/// First key of the per-service stamp locks ('VELL'), plus the slot; the second key is the
/// service's lock key.
pub(crate) const STAMP_LOCK_CLASS: i32 = 0x5645_4c4c;

/// How many stamp-lock slots a service has. A committing unit of work takes every slot shared
/// (in order) just before it takes its commit stamp, and holds them until its transaction ends;
/// an as-of read takes one slot, chosen at random, exclusively. One exclusive slot is enough to
/// wait out every stamped writer, and readers on different slots do not wait for each other.
pub(crate) const STAMP_SLOTS: i32 = 8;

/// Waits until every unit of work of the service that has taken its commit stamp has finished:
/// the barrier that makes an as-of read final. Held to the end of the read's own (one-statement,
/// pipelined) transaction. Returns the database clock read once the lock is held: a settled
/// time (see [`Store::settled`]).
const STAMP_BARRIER: &str = "WITH barrier AS MATERIALIZED (SELECT pg_advisory_xact_lock($1, $2))
                             SELECT clock_timestamp() FROM barrier";

/// How many prepared statements a pooled connection keeps before a query empties its cache.
const QUERY_STATEMENTS: usize = 256;

/// One service of a [`Store`]: everything it owns lives in its own PostgreSQL schema, and every
/// request runs under its own PostgreSQL role.
#[derive(Debug, Clone)]
pub struct Service {
    pub(crate) store: Store,
    pub(crate) name: ServiceName,
    pub(crate) idents: ServiceIdents,
    pub(crate) lock_key: i32,
    /// The settings batch that puts a session under this service (its role, `READ COMMITTED`
    /// for its transactions, and the store's statement timeout): for its plain reads, and in
    /// the transaction of a unit of work.
    session: Arc<str>,
    /// `BEGIN` for a unit of work with [`session`](Self::session) in the transaction: the
    /// settings stay on the session only if the transaction commits.
    begin_entering: Arc<str>,
    /// The SQL of its units of work's commits.
    pub(crate) commit_sql: Arc<CommitSql>,
}

/// `BEGIN` for a unit of work whose session is under its service already, which makes
/// `READ COMMITTED` the default.
const UOW_BEGIN: &str = "BEGIN";

/// `BEGIN` for a unit of work whose session is not under its service yet: the session's
/// default isolation may be another, and the settings that follow apply from the next
/// transaction on.
const UOW_BEGIN_ENTERING: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

impl Service {
    pub(crate) fn new(store: Store, name: ServiceName, lock_key: i32) -> Self {
        let idents = ServiceIdents::new(&name);
        let mut session = idents.set_session_role();
        session.push_str("; SET default_transaction_isolation = 'read committed'");
        if let Some(timeout) = store.statement_timeout() {
            session.push_str("; ");
            session.push_str(&crate::sql::set_session_statement_timeout(timeout));
        }
        Self {
            store,
            name,
            idents,
            lock_key,
            begin_entering: format!("{UOW_BEGIN_ENTERING}; {session}").into(),
            session: session.into(),
            commit_sql: Arc::default(),
        }
    }

    /// The service name.
    pub fn name(&self) -> &ServiceName {
        &self.name
    }

    /// The schema repository of this service.
    pub fn schemas(&self) -> SchemaRegistry<'_> {
        SchemaRegistry::new(self)
    }

    /// Begins a unit of work on behalf of `actor` (recorded in the audit trail).
    pub async fn begin(&self, actor: impl Into<String>) -> Result<UnitOfWork> {
        self.begin_with(UowOptions::new(actor)).await
    }

    /// Begins a unit of work with a correlation id or metadata.
    pub async fn begin_with(&self, options: UowOptions) -> Result<UnitOfWork> {
        UnitOfWork::begin(self.clone(), options).await
    }

    /// The current version of an entity; [`Error::NotFound`] if it does not exist or is deleted.
    pub async fn get(&self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Entity> {
        Entity::from_row(&self.latest(schema_id, entity_id).await?)
    }

    /// The current version of an entity as its JSON, made without parsing the payload (see
    /// [`EntityJson`]): what a server answering with the entity unchanged needs.
    pub async fn get_json(&self, schema_id: &SchemaId, entity_id: Uuid) -> Result<EntityJson> {
        EntityJson::from_row(&self.latest(schema_id, entity_id).await?)
    }

    /// The row of an entity's current version, which becomes the latest version this process
    /// knows of it: a read followed by an update naming that version (HTTP GET, then PUT with
    /// If-Match) stages the update without reading again.
    async fn latest(&self, schema_id: &SchemaId, entity_id: Uuid) -> Result<Row> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} e WHERE e.is_active AND {} = $1 AND e.deleted_at IS NULL",
            self.idents.entity_table(schema_id),
            sql::active_entity("e"),
        );
        let rows = self.read(schema_id, &sql, &[&entity_id]).await?;
        let row = one_row(rows, schema_id, entity_id)?;
        self.store.known_versions().set(
            EntityKey::new(&self.name, schema_id, entity_id),
            Some(known_version(&row)?),
        );
        Ok(row)
    }

    /// One version of an entity, whatever its state (superseded and deleted versions included).
    pub async fn get_version(
        &self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        version: &Version,
    ) -> Result<Entity> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} e WHERE e.entity_id = $1 AND e.entity_version = $2",
            self.idents.entity_table(schema_id)
        );
        let rows = self
            .read(schema_id, &sql, &[&entity_id, &version.to_string()])
            .await?;
        rows.first()
            .map(Entity::from_row)
            .transpose()?
            .ok_or_else(|| Error::NotFound {
                what: format!("version {version} of entity {schema_id}/{entity_id}"),
            })
    }

    /// The entity as it was at `as_of`: the latest version whose unit of work committed at or
    /// before it, unless the entity was deleted by then.
    ///
    /// A read as of a time that is not in the future (by the database clock) is final: it waits
    /// for the units of work that took their commit stamp before the read, so the same read
    /// always returns the same version. A read as of a time this process already knows to be
    /// settled (earlier than the database clock at a previous barrier) needs no wait.
    pub async fn get_as_of(
        &self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        as_of: DateTime<Utc>,
    ) -> Result<Entity> {
        let row = if self.is_settled(as_of) {
            let sql = format!(
                "SELECT {COLUMNS} FROM {} e
                 WHERE e.entity_id = $1 AND e.created_at <= $2
                 ORDER BY e.created_at DESC, e.revision DESC
                 LIMIT 1",
                self.idents.entity_table(schema_id)
            );
            let rows = self.read(schema_id, &sql, &[&entity_id, &as_of]).await?;
            one_row(rows, schema_id, entity_id)?
        } else {
            // The reader takes one stamp-lock slot, chosen at random, exclusively (see
            // `STAMP_SLOTS`), then reads with a snapshot taken once it holds it. The clock is
            // read while the slot is held, after the reader returned its row: a settled time.
            let sql = format!(
                "SELECT {COLUMNS}, clock_timestamp() FROM {}($1, $2, $3, $4) e",
                self.idents.as_of_reader(schema_id)
            );
            let slot = STAMP_LOCK_CLASS + rand::random_range(0..STAMP_SLOTS);
            let rows = self
                .read(
                    schema_id,
                    &sql,
                    &[&entity_id, &as_of, &slot, &self.lock_key],
                )
                .await?;
            let row = one_row(rows, schema_id, entity_id)?;
            self.store.settle(&self.name, row.try_get(COLUMN_COUNT)?);
            row
        };
        let entity = Entity::from_row(&row)?;
        match entity.deleted_at {
            Some(deleted_at) if deleted_at <= as_of => Err(Error::NotFound {
                what: format!("entity {schema_id}/{entity_id} (deleted at {deleted_at})"),
            }),
            _ => Ok(entity),
        }
    }

    /// Whether every unit of work of the service stamped at or before `at` has ended, as far as
    /// this process knows: `at` is earlier than a time read under the stamp barrier (see
    /// [`Store::settled`]). An as-of read of such a time is final without the barrier.
    fn is_settled(&self, at: DateTime<Utc>) -> bool {
        self.store
            .settled(&self.name)
            .is_some_and(|settled| at < settled)
    }

    /// The current versions of many entities in one round trip, in the order of `entity_ids`;
    /// missing and deleted ones are left out.
    pub async fn get_many(&self, schema_id: &SchemaId, entity_ids: &[Uuid]) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} e
             WHERE e.is_active AND {} = ANY($1) AND e.deleted_at IS NULL",
            self.idents.entity_table(schema_id),
            sql::active_entity("e"),
        );
        let rows = self.read(schema_id, &sql, &[&entity_ids]).await?;
        let order: HashMap<Uuid, usize> = entity_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .rev()
            .collect();
        let mut found = rows
            .iter()
            .map(Entity::from_row)
            .collect::<Result<Vec<_>>>()?;
        found.sort_by_key(|e| order.get(&e.entity_id).copied());
        Ok(found)
    }

    /// Every version of an entity, oldest first, with who wrote and who deleted it.
    pub async fn history(
        &self,
        schema_id: &SchemaId,
        entity_id: Uuid,
    ) -> Result<Vec<HistoryEntry>> {
        let sql = format!(
            "SELECT {COLUMNS}, u.actor, u.correlation_id, e.deleted_uow_id, d.actor
             FROM {} e
             JOIN {uow} u ON u.uow_id = e.uow_id
             LEFT JOIN {uow} d ON d.uow_id = e.deleted_uow_id
             WHERE e.entity_id = $1 ORDER BY e.revision",
            self.idents.entity_table(schema_id),
            uow = self.idents.fixed("units_of_work"),
        );
        let rows = self.read(schema_id, &sql, &[&entity_id]).await?;
        if rows.is_empty() {
            return Err(Error::NotFound {
                what: format!("entity {schema_id}/{entity_id}"),
            });
        }
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    entity: Entity::from_row(row)?,
                    actor: row.try_get(COLUMN_COUNT)?,
                    correlation_id: row.try_get(COLUMN_COUNT + 1)?,
                    deleted_uow_id: row.try_get(COLUMN_COUNT + 2)?,
                    deleted_by: row.try_get(COLUMN_COUNT + 3)?,
                })
            })
            .collect()
    }

    /// `begin` followed by the settings of every transaction of this service: its role, and the
    /// store's statement timeout when there is one. One batch, so they cost no round trip.
    pub(crate) fn begin_sql(&self, begin: &str) -> String {
        let mut sql = format!("{begin}; {}", self.idents.set_role());
        if let Some(timeout) = self.store.statement_timeout() {
            sql.push_str("; ");
            sql.push_str(&crate::sql::set_statement_timeout(timeout));
        }
        sql
    }

    /// Runs one statement that only reads, under the service role, in one round trip and with
    /// no transaction around it: the pooled session is put under the service's role (and the
    /// store's statement timeout) with `SET ROLE`, pipelined before the statement, and stays
    /// there for the next read of the service on that connection, which then sends the
    /// statement alone. Every other use of a pooled connection resets the session first
    /// ([`Store::client`]). One statement sees one snapshot, so it needs no transaction.
    async fn read(
        &self,
        schema_id: &SchemaId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self.service_client().await?;
        let sessions = self.store.sessions();
        sessions
            .read_under(&client, &self.session, sql, params)
            .await
            .map_err(|err| {
                sessions.forget_closed(&client);
                self.map_read_error(err, schema_id)
            })
    }

    /// Runs a compiled query under the service role in a read-only transaction of its own,
    /// planned for its parameter values (`plan_cache_mode = force_custom_plan`): PostgreSQL then
    /// folds the path parameters into constants and can use the expression indexes of
    /// `x-vellum-index`. `BEGIN; SET LOCAL ROLE` (and the statement timeout), the stamp barrier
    /// of a query as of a time not yet settled (see [`Service::get_as_of`]), the statement and
    /// `COMMIT` are pipelined in one round trip,
    /// all sent in the first poll of the `join!`, so a query cancelled at any point still ends
    /// its transaction on the server before the connection serves anything else. Query
    /// statements are prepared and cached per connection like the others; the cache is emptied
    /// when it grows past [`QUERY_STATEMENTS`], since query shapes come from clients.
    pub(crate) async fn run_query(
        &self,
        schema_id: &SchemaId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Row>> {
        let client = self.service_client().await?;
        if client.statement_cache.size() > QUERY_STATEMENTS {
            client.statement_cache.clear();
        }
        let stmt = match client.prepare_cached(sql).await {
            Ok(stmt) => stmt,
            Err(err) => return Err(self.map_read_error(err, schema_id)),
        };
        let barrier_stmt = match as_of {
            Some(as_of) if !self.is_settled(as_of) => {
                Some(client.prepare_cached(STAMP_BARRIER).await?)
            }
            _ => None,
        };
        // `READ COMMITTED` whatever the session's default: the statement after the barrier must
        // take its snapshot once the barrier holds its lock, not when the barrier began.
        let mut begin = self.begin_sql("BEGIN READ ONLY ISOLATION LEVEL READ COMMITTED");
        begin.push_str("; SET LOCAL plan_cache_mode = force_custom_plan");
        let stamp_slot = STAMP_LOCK_CLASS + rand::random_range(0..STAMP_SLOTS);
        let barrier_fut = async {
            match &barrier_stmt {
                Some(stmt) => client
                    .query_one(stmt, &[&stamp_slot, &self.lock_key])
                    .await
                    .map(|row| Some(row.get::<_, DateTime<Utc>>(0))),
                None => Ok(None),
            }
        };
        let (begun, barrier_done, rows, committed) = tokio::join!(
            client.batch_execute(&begin),
            barrier_fut,
            client.query(&stmt, params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        if let Some(settled) = barrier_done? {
            self.store.settle(&self.name, settled);
        }
        let rows = rows.map_err(|err| self.map_read_error(err, schema_id))?;
        committed?;
        Ok(rows)
    }

    /// The compiled active version of an entity type.
    pub(crate) async fn active_schema(&self, schema_id: &SchemaId) -> Result<Arc<CompiledSchema>> {
        Ok(self.active_version(schema_id).await?.1)
    }

    /// The active version of an entity type, compiled.
    pub(crate) async fn active_version(
        &self,
        schema_id: &SchemaId,
    ) -> Result<(Version, Arc<CompiledSchema>)> {
        let sql = format!(
            "SELECT schema_version FROM {} WHERE schema_id = $1 AND is_active",
            self.idents.fixed("schemas")
        );
        let rows = self.read(schema_id, &sql, &[&schema_id.as_str()]).await?;
        let row = rows.first().ok_or_else(|| Error::NotFound {
            what: format!("entity type {schema_id} in service {}", self.name),
        })?;
        let version = crate::entity::parse_stored(row.try_get(0)?)?;
        Ok((version, self.schemas().compiled(schema_id, version).await?))
    }

    fn map_read_error(&self, err: tokio_postgres::Error, schema_id: &SchemaId) -> Error {
        match crate::sql::db_error(&err) {
            // No table, or no as-of reader: nothing of the type was ever registered.
            Some(("42P01" | "42883", _)) => Error::NotFound {
                what: format!("entity type {schema_id} in service {}", self.name),
            },
            _ => err.into(),
        }
    }

    pub(crate) async fn client(&self) -> Result<Object> {
        self.store.client().await
    }

    /// A pooled connection for this service's own reads and transactions (see
    /// [`Store::service_client`]).
    pub(crate) async fn service_client(&self) -> Result<Object> {
        self.store.service_client(&self.session).await
    }

    /// The settings batch that puts a session under this service.
    pub(crate) fn session(&self) -> &str {
        &self.session
    }

    /// How a unit of work begins its transaction: with the service's session settings inside
    /// it when `enter_session` (the pooled session is not under them yet), so that they stay
    /// on the session only if the unit of work commits, and a failed one leaves no setting half
    /// made. `SET` rather than `SET LOCAL`: the next unit of work or read of the service on
    /// this connection then needs no settings at all.
    pub(crate) fn begin_uow_sql(&self, enter_session: bool) -> &str {
        if enter_session {
            &self.begin_entering
        } else {
            UOW_BEGIN
        }
    }
}

/// The row of a read of one entity; [`Error::NotFound`] without one.
fn one_row(rows: Vec<Row>, schema_id: &SchemaId, entity_id: Uuid) -> Result<Row> {
    rows.into_iter().next().ok_or_else(|| Error::NotFound {
        what: format!("entity {schema_id}/{entity_id}"),
    })
}
