//! Commit: every staged write flushed in one pipelined round trip.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
};

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures_util::{
    TryFutureExt, TryStreamExt,
    future::{BoxFuture, FutureExt, join_all},
};
use serde_json::{Value, json};
use tokio_postgres::{Row, Statement, types::ToSql};
use tracing::{debug, instrument};
use uuid::Uuid;
use vellum_core::SchemaId;

use super::{Committed, Op, OpKind, ReferenceCheck, State, UnitOfWork};
use crate::{
    Entity, Error, OutboxEvent, Result,
    events::NOTIFY_CHANNEL,
    indexes::unique_pointer,
    known::{EntityKey, KnownVersion},
    service::{STAMP_LOCK_CLASS, STAMP_SLOTS},
    sql,
    store::SeenActive,
};

/// Takes a unit of work's commit stamp: every stamp-lock slot of the service shared (see
/// [`STAMP_SLOTS`]), then the `units_of_work` row with `clock_timestamp()` as the commit time,
/// which it returns (with the unit of work's id). Parameters: `$1` uow id, `$2` actor, `$3`
/// correlation id, `$4` metadata, `$5` [`STAMP_LOCK_CLASS`], `$6` the service's lock key.
pub(crate) fn stamp_sql(uow_table: &str) -> String {
    format!(
        "WITH stamp AS MATERIALIZED (SELECT {slots})
         {insert}",
        slots = slot_locks(),
        insert = stamp_insert(uow_table),
    )
}

/// The stamp's lock of every slot, shared. Each slot is one call in one row (not a
/// `generate_series` counted by an aggregate): the plan is a bare projection, cheap to start at
/// every commit, and its cost does not depend on a parameter, so PostgreSQL keeps one generic
/// plan.
fn slot_locks() -> String {
    (0..STAMP_SLOTS)
        .map(|slot| format!("pg_advisory_xact_lock_shared($5 + {slot}, $6)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `units_of_work` row, once the CTE `stamp` has taken the locks: the clock is read after.
fn stamp_insert(uow_table: &str) -> String {
    format!(
        "INSERT INTO {uow_table} (uow_id, actor, correlation_id, committed_at, metadata)
         SELECT $1, $2, $3, clock_timestamp(), $4 FROM stamp
         RETURNING committed_at, uow_id"
    )
}

/// A unit of work's commit stamp ([`stamp_sql`]) with the checks of what the process cached,
/// in the same statement and the same row as the slot locks, on the service's one settings
/// row: `vellum.expect_change_events($7, setting)` (`$7`: whether the entity change events
/// were sent), called only when it fails; and, for the entity types whose active version came
/// from the cache (`$8` schema ids, `$9` versions, `$10` the registry generations they were
/// seen at), nothing more while the registry generation has not moved, else
/// `vellum.expect_writable_schemas`. Returns the commit time, the `change_events` setting, the
/// active version of each checked type in order, and the registry generation.
///
/// With `first`, the statement also runs the statements of the first staged write
/// ([`Write::stamped`]), after the stamp and the checks: a unit of work of one write is one
/// statement between `BEGIN` and `COMMIT`.
///
/// The settings table has one row, and `LIMIT 1` tells the planner so: a table never analyzed
/// is estimated at thousands of rows, the generic plan then looks dearer than a custom one, and
/// PostgreSQL would plan the statement again at every commit.
fn checked_stamp_sql(idents: &sql::ServiceIdents, first: Option<StampedWrite>) -> String {
    let (write, check) = match first {
        Some(StampedWrite { cte, check }) => (
            format!(", {cte}"),
            check.map(|check| format!(", {check}")).unwrap_or_default(),
        ),
        None => Default::default(),
    };
    format!(
        "WITH stamp AS MATERIALIZED (
             SELECT {slots},
                    CASE WHEN s.change_events AND NOT $7
                         THEN vellum.expect_change_events($7, s.change_events)
                         ELSE s.change_events END AS change_events,
                    CASE WHEN s.registry_generation = ALL($10::bigint[]) THEN $9::text[]
                         ELSE vellum.expect_writable_schemas({schemas}, $8::text[], $9::text[])
                    END AS active,
                    s.registry_generation
             FROM {settings} s LIMIT 1),
         stamped AS ({insert}){write}
         SELECT stamped.committed_at, stamp.change_events, stamp.active,
                stamp.registry_generation{check}
         FROM stamped, stamp",
        slots = slot_locks(),
        schemas = idents.fixed_regclass("schemas"),
        settings = idents.fixed("event_settings"),
        insert = stamp_insert(&idents.fixed("units_of_work")),
    )
}

/// The parameters of the stamp statement before those of a write in it.
const STAMP_PARAMS: usize = 10;

/// A write's statements inside the stamp statement ([`Write::stamped`]).
struct StampedWrite {
    /// The data-modifying CTEs.
    cte: String,
    /// What the stamp statement's row adds to check it, if anything.
    check: Option<String>,
}

/// One statement of a staged write. Creates insert a version; updates and undeletes
/// supersede the previous version, then insert one; deletes mark the active version deleted.
/// Each reads the unit of work's id and commit time as `u`; the `UPDATE`s are checked
/// ([`Write::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Write {
    /// Parameters: entity id, revision, entity version, schema id, schema version, payload.
    Insert,
    /// Parameters: entity id, the revision superseded, whether it is deleted (an undelete),
    /// what (for the conflict error), its entity version, its schema version.
    Supersede,
    /// Parameters: entity id, the revision deleted, what.
    Delete,
}

impl Write {
    /// The statements of a staged write, in order.
    fn of(kind: OpKind) -> &'static [Write] {
        match kind {
            OpKind::Create => &[Write::Insert],
            OpKind::Update | OpKind::Undelete => &[Write::Supersede, Write::Insert],
            OpKind::Delete => &[Write::Delete],
        }
    }

    /// The statement's data-modifying part, reading `u` from `commit`, with its parameters
    /// numbered from `$first`. The `UPDATE`s return a row for what they changed.
    fn body(self, table: &str, commit: &str, first: usize) -> String {
        let p = |i: usize| format!("${}", first + i);
        match self {
            Write::Insert => format!(
                "INSERT INTO {table} (entity_id, revision, entity_version, schema_id,
                                      schema_version, payload, created_at, updated_at, uow_id)
                 SELECT {}, {}, {}, {}, {}, {}, u.committed_at, u.committed_at, u.uow_id
                 FROM {commit}",
                p(0),
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
            ),
            Write::Supersede => format!(
                "UPDATE {table} e SET is_active = false, updated_at = u.committed_at
                 FROM {commit}
                 WHERE e.entity_id = {} AND e.revision = {} AND e.entity_version = {}
                   AND e.schema_version = {} AND e.is_active
                   AND (e.deleted_at IS NOT NULL) = {}
                 RETURNING 1",
                p(0),
                p(1),
                p(4),
                p(5),
                p(2),
            ),
            Write::Delete => format!(
                "UPDATE {table} e SET deleted_at = u.committed_at, deleted_uow_id = u.uow_id,
                                      updated_at = u.committed_at
                 FROM {commit}
                 WHERE e.entity_id = {} AND e.revision = {} AND e.is_active
                   AND e.deleted_at IS NULL
                 RETURNING 1",
                p(0),
                p(1),
            ),
        }
    }

    /// The number of its parameters.
    fn params(self) -> usize {
        match self {
            Write::Insert | Write::Supersede => 6,
            Write::Delete => 3,
        }
    }

    /// For the `UPDATE`s, which must change a row: `vellum.expect_changed` (a conflict, naming
    /// the write by its parameter), called only when `changed` (the `UPDATE` as a CTE) changed
    /// nothing. The statement's parameters are numbered from `$first`.
    fn check(self, first: usize) -> Option<String> {
        let what = match self {
            Write::Insert => return None,
            Write::Supersede => first + 3,
            Write::Delete => first + 2,
        };
        Some(format!(
            "CASE WHEN NOT EXISTS (SELECT FROM changed) THEN vellum.expect_changed(0, ${what}) END"
        ))
    }

    /// The statement on its own, after the stamp: `$1` is the unit of work's id.
    fn sql(self, table: &str, uow_table: &str) -> String {
        let commit =
            format!("(SELECT uow_id, committed_at FROM {uow_table} WHERE uow_id = $1) AS u");
        let body = self.body(table, &commit, 2);
        match self.check(2) {
            Some(check) => format!("WITH changed AS ({body}) SELECT {check}"),
            None => body,
        }
    }

    /// The statements of a staged write (see [`Write::of`]) as CTEs of the stamp statement
    /// ([`checked_stamp_sql`]): `u` is the stamp's own row, and the parameters of each
    /// statement follow the stamp's and the previous statement's. The `UPDATE` (`changed`) is
    /// read by the stamp's query for its check, so it runs after the stamp and the checks; the
    /// `INSERT` is read by nothing, so PostgreSQL runs it after that query, and after an update's
    /// supersede, which it joins (an update whose supersede changed nothing inserts nothing and
    /// fails on its check).
    fn stamped(writes: &[Write], table: &str) -> StampedWrite {
        let mut first = STAMP_PARAMS + 1;
        let mut ctes = Vec::with_capacity(writes.len());
        let mut check = None;
        for write in writes {
            let (name, commit) = match write {
                Write::Insert if check.is_some() => ("inserted", "stamped AS u, changed"),
                Write::Insert => ("inserted", "stamped AS u"),
                Write::Supersede | Write::Delete => ("changed", "stamped AS u"),
            };
            ctes.push(format!("{name} AS ({})", write.body(table, commit, first)));
            check = check.or(write.check(first));
            first += write.params();
        }
        StampedWrite {
            cte: ctes.join(", "),
            check,
        }
    }
}

/// A statement of a commit whose text depends on an entity type (see [`CommitSql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Text {
    /// The stamp statement with a write of this kind to the type in it.
    Stamped(OpKind),
    /// This write of the type on its own.
    Alone(Write),
    /// The check of a reference to an entity of the type.
    Reference,
}

/// The SQL texts of one service's commits, built the first time each is needed rather than at
/// every commit. Shared by the clones of a [`crate::Service`]; bounded by its entity types.
#[derive(Debug, Default)]
pub(crate) struct CommitSql {
    texts: RwLock<HashMap<SchemaId, HashMap<Text, Arc<str>>>>,
    /// The stamp statement of a unit of work without writes (events only).
    stamp_alone: OnceLock<Arc<str>>,
    outbox: OnceLock<Arc<str>>,
}

impl CommitSql {
    fn text(&self, idents: &sql::ServiceIdents, schema_id: &SchemaId, text: Text) -> Arc<str> {
        let texts = self.texts.read().unwrap_or_else(|e| e.into_inner());
        if let Some(sql) = texts.get(schema_id).and_then(|texts| texts.get(&text)) {
            return sql.clone();
        }
        drop(texts);
        let table = idents.entity_table(schema_id);
        let sql: Arc<str> = match text {
            Text::Stamped(kind) => {
                checked_stamp_sql(idents, Some(Write::stamped(Write::of(kind), &table)))
            }
            Text::Alone(write) => write.sql(&table, &idents.fixed("units_of_work")),
            Text::Reference => format!(
                "SELECT vellum.expect_reference(count(*), $2)
                 FROM (SELECT 1 FROM {table} e
                       WHERE e.is_active AND {active} = $1 AND e.deleted_at IS NULL
                       FOR SHARE) AS live",
                active = sql::active_entity("e"),
            ),
        }
        .into();
        self.texts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(schema_id.clone())
            .or_default()
            .insert(text, sql.clone());
        sql
    }

    /// The stamp statement with no write in it.
    fn stamp_alone(&self, idents: &sql::ServiceIdents) -> Arc<str> {
        self.stamp_alone
            .get_or_init(|| checked_stamp_sql(idents, None).into())
            .clone()
    }

    /// The outbox insert of a commit: every event of the unit of work, and the entity change
    /// events only when the service's setting is on; wakes the relay's listeners.
    fn outbox(&self, idents: &sql::ServiceIdents) -> Arc<str> {
        self.outbox
            .get_or_init(|| {
                format!(
                    "WITH written AS (
                         INSERT INTO {outbox} (event_id, uow_id, aggregate_type, aggregate_id,
                                               aggregate_version, event_type, payload, created_at)
                         SELECT e.event_id, u.uow_id, e.aggregate_type, e.aggregate_id,
                                e.aggregate_version, e.event_type, e.payload, u.committed_at
                         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                     $7::jsonb[], $8::bool[])
                              WITH ORDINALITY AS e(event_id, aggregate_type, aggregate_id,
                                  aggregate_version, event_type, payload, is_change, ord)
                         JOIN {uow_table} u ON u.uow_id = $1
                         WHERE NOT e.is_change OR (SELECT s.change_events FROM {settings} s)
                         ORDER BY e.ord
                         RETURNING position, event_id),
                     -- Delivered to listeners only if the transaction commits.
                     woken AS (SELECT pg_notify($9, $10) WHERE EXISTS (SELECT FROM written))
                     SELECT w.position, w.event_id
                     FROM written w LEFT JOIN woken ON true ORDER BY w.position",
                    outbox = idents.fixed("outbox"),
                    uow_table = idents.fixed("units_of_work"),
                    settings = idents.fixed("event_settings"),
                )
                .into()
            })
            .clone()
    }
}

/// What a pipeline stage belongs to, to name the cause of a failure.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// BEGIN, COMMIT.
    Control,
    /// The commit stamp and the checks of what the process cached, with the statements of the
    /// write at this index when there is one.
    Stamp(Option<usize>),
    /// The statements of one staged write.
    Op(usize),
    /// The check of one reference of a staged write: the write, the reference.
    Reference(usize, usize),
    /// The outbox insert.
    Outbox,
}

/// The outbox rows a commit may write, as parallel arrays for one `unnest` insert: every
/// emitted event, and an entity change event per write (kept only when the service's
/// `change_events` setting is on, which the insert itself reads).
#[derive(Default)]
struct OutboxRows {
    event_id: Vec<Uuid>,
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    aggregate_version: Vec<Option<String>>,
    event_type: Vec<String>,
    data: Vec<Value>,
    is_change: Vec<bool>,
}

impl OutboxRows {
    fn len(&self) -> usize {
        self.event_id.len()
    }
}

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

impl UnitOfWork {
    /// Flushes every staged write, records the unit of work, and commits, in one pipelined
    /// round trip. All or nothing: on any error nothing is written.
    #[instrument(skip_all, fields(uow_id = %self.uow_id, service = %self.service.name, actor = %self.options.actor, writes = self.ops.len(), events = self.events.len()))]
    pub async fn commit(self) -> Result<Committed> {
        let counters = self.service.store.clone();
        let result = self.flush().await;
        match &result {
            Ok(committed) => counters.counters().committed(committed.events.len()),
            Err(err) => counters.counters().failed(err),
        }
        result
    }

    async fn flush(mut self) -> Result<Committed> {
        self.usable()?;
        // Entity change events are left out when this process has seen the setting off; the
        // commit checks it. A unit of work that had not begun its transaction before the
        // commit holds all it writes in memory and can send it again.
        let can_resend = !self.in_transaction;
        let mut change_rows = !self.events.is_empty()
            || self.service.store.cached_change_events(&self.service.name) != Some(false);
        loop {
            self.state = State::Committing;
            match self.flush_once(change_rows).await? {
                Some(committed) => return Ok(committed),
                None if can_resend && !change_rows => change_rows = true,
                None => {
                    return Err(Error::NotAllowed(format!(
                        "entity change events were turned on for service {} while this unit of \
                         work committed; it was rolled back, retry it",
                        self.service.name
                    )));
                }
            }
        }
    }

    /// Sends the commit pipeline once, with the entity change events or without them.
    /// `Ok(None)`: they were left out and the service's setting is on; nothing was written.
    async fn flush_once(&mut self, change_rows: bool) -> Result<Option<Committed>> {
        let client = self
            .client
            .as_ref()
            .expect("a unit of work holds its connection until it ends");
        let idents = &self.service.idents;
        let texts = &self.service.commit_sql;
        // The first write runs in the stamp statement; every other one on its own, in order.
        let stamp = match self.ops.first() {
            Some(op) => texts.text(idents, &op.schema_id, Text::Stamped(op.kind)),
            None => texts.stamp_alone(idents),
        };
        let stamp = client.prepare_cached(&stamp).await?;
        let mut statements = Vec::with_capacity(self.ops.len());
        for (index, op) in self.ops.iter().enumerate() {
            let mut writes = Vec::with_capacity(2);
            for write in Write::of(op.kind).iter().filter(|_| index > 0) {
                let sql = texts.text(idents, &op.schema_id, Text::Alone(*write));
                writes.push((*write, client.prepare_cached(&sql).await?));
            }
            let mut checks = Vec::with_capacity(op.references.len());
            for reference in &op.references {
                let sql = texts.text(idents, &reference.target, Text::Reference);
                checks.push(
                    client
                        .prepare_cached(&sql)
                        .await
                        .map_err(|err| self.commit_error(Some((op, Some(reference))), err))?,
                );
            }
            statements.push((writes, checks));
        }

        let mut unconfirmed_ids = Vec::with_capacity(self.unconfirmed_active.len());
        let mut unconfirmed_versions = Vec::with_capacity(self.unconfirmed_active.len());
        let mut unconfirmed_generations = Vec::with_capacity(self.unconfirmed_active.len());
        for (schema_id, generation) in &self.unconfirmed_active {
            unconfirmed_ids.push(schema_id.to_string());
            unconfirmed_versions.push(self.active_schemas[schema_id].to_string());
            unconfirmed_generations.push(*generation);
        }
        let outbox = self.outbox_rows(change_rows);
        let outbox_stmt = if outbox.len() > 0 {
            Some(client.prepare_cached(&texts.outbox(idents)).await?)
        } else {
            None
        };
        // Parameters must outlive the pipelined futures.
        let texts: Vec<[String; 6]> = self
            .ops
            .iter()
            .map(|op| {
                let previous = op.previous.map_or(0, |p| p.revision);
                let what = format!("{}/{} revision {previous}", op.schema_id, op.entity_id);
                let (previous_version, previous_schema) =
                    op.previous.map_or_else(Default::default, |p| {
                        (p.entity_version.to_string(), p.schema_version.to_string())
                    });
                [
                    op.entity_version.to_string(),
                    op.schema_version.to_string(),
                    what,
                    op.schema_id.to_string(),
                    previous_version,
                    previous_schema,
                ]
            })
            .collect();
        // The version each write follows, and whether it is the deleted one (an undelete).
        let revisions: Vec<(i64, bool)> = self
            .ops
            .iter()
            .map(|op| {
                let previous = op.previous.map_or(0, |p| p.revision);
                (previous, op.kind == OpKind::Undelete)
            })
            .collect();

        let reference_texts: Vec<Vec<String>> = self
            .ops
            .iter()
            .map(|op| {
                op.references
                    .iter()
                    .map(|r| {
                        format!(
                            "{}/{} {} -> {}/{}",
                            op.schema_id, op.entity_id, r.pointer, r.target, r.target_id
                        )
                    })
                    .collect()
            })
            .collect();
        // Every statement is sent before any answer is read; a failing statement aborts the
        // transaction, and the trailing COMMIT then rolls it back.
        let run = |stmt, params| pipelined(client, stmt, params);
        let service_name = self.service.name.as_str();
        let mut pipeline: Vec<(Stage, Pipelined<'_>)> = Vec::new();
        if !self.in_transaction {
            pipeline.push((
                Stage::Control,
                client
                    .batch_execute(self.begin_sql())
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
            &change_rows,
            &unconfirmed_ids,
            &unconfirmed_versions,
            &unconfirmed_generations,
        ];
        // The parameters of one write statement after the unit of work's id (see [`Write`]).
        let write_params = |index: usize, write: Write| -> Vec<&(dyn ToSql + Sync)> {
            let op = &self.ops[index];
            let [
                entity_version,
                schema_version,
                what,
                schema_id,
                previous_version,
                previous_schema,
            ] = &texts[index];
            let (revision, deleted) = &revisions[index];
            match write {
                Write::Insert => vec![
                    &op.entity_id,
                    &op.revision,
                    entity_version,
                    schema_id,
                    schema_version,
                    &*op.payload,
                ],
                Write::Supersede => vec![
                    &op.entity_id,
                    revision,
                    deleted,
                    what,
                    previous_version,
                    previous_schema,
                ],
                Write::Delete => vec![&op.entity_id, revision, what],
            }
        };
        let mut stamp_params = stamp_params;
        if let Some(first) = self.ops.first() {
            for write in Write::of(first.kind) {
                stamp_params.extend(write_params(0, *write));
            }
        }
        let first = (!self.ops.is_empty()).then_some(0);
        pipeline.push((Stage::Stamp(first), run(&stamp, stamp_params)));
        for (index, (op, (writes, checks))) in self.ops.iter().zip(&statements).enumerate() {
            for (write, stmt) in writes {
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.uow_id];
                params.extend(write_params(index, *write));
                pipeline.push((Stage::Op(index), run(stmt, params)));
            }
            for (i, (reference, check)) in op.references.iter().zip(checks).enumerate() {
                let params: Vec<&(dyn ToSql + Sync)> =
                    vec![&reference.target_id, &reference_texts[index][i]];
                pipeline.push((Stage::Reference(index, i), run(check, params)));
            }
        }
        if let Some(stmt) = &outbox_stmt {
            let params: Vec<&(dyn ToSql + Sync)> = vec![
                &self.uow_id,
                &outbox.event_id,
                &outbox.aggregate_type,
                &outbox.aggregate_id,
                &outbox.aggregate_version,
                &outbox.event_type,
                &outbox.data,
                &outbox.is_change,
                &NOTIFY_CHANNEL,
                &service_name,
            ];
            pipeline.push((Stage::Outbox, run(stmt, params)));
        }
        pipeline.push((
            Stage::Control,
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
            let code = sql::db_error(&err).map(|(code, _)| code);
            if matches!(owners[failed], Stage::Stamp(_))
                && code == Some(sql::state::CHANGE_EVENTS_ON)
            {
                let name = self.service.name.clone();
                self.service.store.cache_change_events(name, true);
                return Ok(None);
            }
            return Err(match owners[failed] {
                Stage::Op(index) => self.commit_error(Some((&self.ops[index], None)), err),
                Stage::Reference(index, i) => {
                    let op = &self.ops[index];
                    self.commit_error(Some((op, Some(&op.references[i]))), err)
                }
                Stage::Outbox => self.outbox_error(err),
                // The stamp's checks raise their own SQLSTATE; anything else in the stamp
                // statement came from the write in it.
                Stage::Stamp(Some(index)) if code != Some(sql::state::SCHEMA_CHANGED) => {
                    self.commit_error(Some((&self.ops[index], None)), err)
                }
                Stage::Stamp(_) => self.stamp_error(err),
                Stage::Control => self.commit_error(None, err),
            });
        }
        self.state = State::Done;
        if self.enter_session && !self.ran_raw {
            let sessions = self.service.store.sessions();
            sessions.entered(client, self.service.session());
        }
        let stamp_row = owners
            .iter()
            .position(|o| matches!(o, Stage::Stamp(_)))
            .and_then(|index| results[index].as_ref().ok())
            .and_then(|rows| rows.first())
            .ok_or_else(|| Error::Corrupt("commit stamp missing".into()))?;
        let committed_at: DateTime<Utc> = stamp_row.try_get(0)?;
        self.refresh_cached(stamp_row);
        debug!(%committed_at, "unit of work committed");
        let entities = self.committed_entities(committed_at);
        let events = match owners.iter().position(|o| matches!(o, Stage::Outbox)) {
            Some(index) => {
                let rows = results[index].as_ref().map_err(|_| {
                    Error::Corrupt("outbox result missing after a successful commit".into())
                })?;
                self.committed_events(&outbox, rows, committed_at)?
            }
            None => Vec::new(),
        };
        Ok(Some(Committed {
            uow_id: self.uow_id,
            committed_at,
            entities,
            events,
        }))
    }

    /// After a commit: what the stamp's checks found (the `change_events` setting, the active
    /// version of each type checked, at the registry generation read with them) is what this
    /// process caches. The unit of work has committed by then, so nothing here can fail it.
    fn refresh_cached(&self, stamp_row: &Row) {
        let store = &self.service.store;
        if let Ok(on) = stamp_row.try_get::<_, bool>(1)
            && store.cached_change_events(&self.service.name) != Some(on)
        {
            store.cache_change_events(self.service.name.clone(), on);
        }
        let (Ok(active), Ok(generation)) = (
            stamp_row.try_get::<_, Vec<&str>>(2),
            stamp_row.try_get::<_, i64>(3),
        ) else {
            return;
        };
        for ((schema_id, seen_at), active) in self.unconfirmed_active.iter().zip(active) {
            if let Ok(version) = crate::entity::parse_stored(active)
                && (version, generation) != (self.active_schemas[schema_id], *seen_at)
            {
                let key = (self.service.name.clone(), schema_id.clone());
                store.cache_active(
                    key,
                    SeenActive {
                        version,
                        generation,
                    },
                );
            }
        }
    }

    /// The stamp failed. A write validated against a cached active version that may no longer
    /// be written: the cache is dropped, so the next unit of work reads the active versions
    /// again.
    fn stamp_error(&self, err: tokio_postgres::Error) -> Error {
        match err.as_db_error() {
            Some(db) if db.code().code() == sql::state::SCHEMA_CHANGED => {
                self.service.store.forget_active(&self.service.name);
                Error::NotAllowed(format!(
                    "{}; the unit of work was rolled back, retry it",
                    db.message()
                ))
            }
            _ => err.into(),
        }
    }

    /// Every event the commit may write: one change event per staged write (with `change_rows`),
    /// then the emitted events, in order.
    fn outbox_rows(&self, change_rows: bool) -> OutboxRows {
        let mut rows = OutboxRows::default();
        for op in self.ops.iter().filter(|_| change_rows) {
            let event_type = match op.kind {
                OpKind::Create => "entity.created",
                OpKind::Update => "entity.updated",
                OpKind::Undelete => "entity.undeleted",
                OpKind::Delete => "entity.deleted",
            };
            rows.event_id.push(Uuid::now_v7());
            rows.aggregate_type.push(op.schema_id.to_string());
            rows.aggregate_id.push(op.entity_id.to_string());
            rows.aggregate_version
                .push(Some(op.entity_version.to_string()));
            rows.event_type.push(event_type.to_string());
            rows.data.push(json!({
                "schema_id": op.schema_id,
                "entity_id": op.entity_id,
                "entity_version": op.entity_version,
                "revision": op.revision,
                "schema_version": op.schema_version,
                "payload": &*op.payload,
            }));
            rows.is_change.push(true);
        }
        for event in &self.events {
            rows.event_id.push(event.event_id);
            rows.aggregate_type.push(event.aggregate_type.clone());
            rows.aggregate_id.push(event.aggregate_id.clone());
            rows.aggregate_version.push(event.aggregate_version.clone());
            rows.event_type.push(event.event_type.clone());
            rows.data.push(event.data.clone());
            rows.is_change.push(false);
        }
        rows
    }

    /// The events the outbox insert kept, with the positions it returned, in position order.
    fn committed_events(
        &self,
        rows: &OutboxRows,
        written: &[Row],
        committed_at: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>> {
        let index: HashMap<Uuid, usize> = rows
            .event_id
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        written
            .iter()
            .map(|row| {
                let event_id: Uuid = row.try_get(1)?;
                let i = *index
                    .get(&event_id)
                    .ok_or_else(|| Error::Corrupt(format!("outbox returned event {event_id}")))?;
                Ok(OutboxEvent {
                    position: row.try_get(0)?,
                    event_id,
                    uow_id: self.uow_id,
                    event_type: rows.event_type[i].clone(),
                    aggregate_type: rows.aggregate_type[i].clone(),
                    aggregate_id: rows.aggregate_id[i].clone(),
                    aggregate_version: rows.aggregate_version[i].clone(),
                    data: rows.data[i].clone(),
                    created_at: committed_at,
                })
            })
            .collect()
    }

    /// An event id already in the outbox (an idempotent producer sending an event again) is
    /// [`Error::AlreadyExists`]; the whole unit of work was rolled back.
    fn outbox_error(&self, err: tokio_postgres::Error) -> Error {
        match sql::db_error(&err) {
            Some(("23505", Some("outbox_event_id_key"))) => Error::AlreadyExists {
                what: "an event with one of these event ids".into(),
            },
            _ => err.into(),
        }
    }

    fn commit_error(
        &self,
        owner: Option<(&Op, Option<&ReferenceCheck>)>,
        err: tokio_postgres::Error,
    ) -> Error {
        let Some((op, reference)) = owner else {
            return err.into();
        };
        if let Some(reference) = reference {
            return match sql::db_error(&err) {
                // The referenced type has no table: nothing of it was ever registered.
                Some((sql::state::INVALID_REFERENCE | "42P01", _)) => Error::InvalidReference {
                    schema_id: op.schema_id.to_string(),
                    entity_id: op.entity_id,
                    pointer: reference.pointer.clone(),
                    target: reference.target.to_string(),
                    target_id: reference.target_id,
                },
                _ => err.into(),
            };
        }
        let conflict = || {
            let found = if op.unread {
                // Staged from what this process knew: forget it, so a retry reads the entity.
                let key = EntityKey::new(&self.service.name, &op.schema_id, op.entity_id);
                self.service.store.known_versions().set(key, None);
                "another version, or the entity deleted: the expected version is no longer the \
                 latest"
            } else {
                "a version written concurrently by another unit of work"
            };
            Error::VersionConflict {
                schema_id: op.schema_id.to_string(),
                entity_id: op.entity_id,
                expected: op.expected.map_or_else(
                    || format!("revision {}", op.revision - 1),
                    |v| v.to_string(),
                ),
                found: found.into(),
            }
        };
        match sql::db_error(&err) {
            Some((sql::state::CONFLICT, _)) => conflict(),
            Some(("23505", Some(index))) if index.starts_with(sql::PATH_INDEX_PREFIX) => {
                self.unique_violation(op, index)
            }
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

    /// Names the property behind a unique path index from the annotations of the schema
    /// version the write was validated against.
    fn unique_violation(&self, op: &Op, index: &str) -> Error {
        let compiled = self.schemas.get(&(op.schema_id.clone(), op.schema_version));
        Error::UniqueViolation {
            schema_id: op.schema_id.to_string(),
            pointer: unique_pointer(&op.schema_id, compiled.map(AsRef::as_ref), index),
            entity_id: Some(op.entity_id),
        }
    }

    /// The versions written, in the order staged, which become what this process knows of
    /// each entity's latest version. Takes the staged writes: the unit of work has committed,
    /// and the payloads move to the caller rather than being copied.
    fn committed_entities(&mut self, committed_at: DateTime<Utc>) -> Vec<Entity> {
        self.current.clear();
        let known = self.service.store.known_versions();
        for op in &self.ops {
            let key = EntityKey::new(&self.service.name, &op.schema_id, op.entity_id);
            let version = (op.kind != OpKind::Delete).then_some(KnownVersion {
                entity_version: op.entity_version,
                revision: op.revision,
                schema_version: op.schema_version,
            });
            known.set(key, version);
        }
        std::mem::take(&mut self.ops)
            .into_iter()
            .map(|op| Entity {
                entity_id: op.entity_id,
                entity_version: op.entity_version,
                revision: op.revision,
                schema_id: op.schema_id,
                schema_version: op.schema_version,
                payload: Arc::unwrap_or_clone(op.payload),
                created_at: committed_at,
                updated_at: committed_at,
                deleted_at: (op.kind == OpKind::Delete).then_some(committed_at),
                is_active: true,
                uow_id: self.uow_id,
            })
            .collect()
    }
}
