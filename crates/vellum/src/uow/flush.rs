//! Commit: every staged write flushed in one pipelined round trip.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use futures_util::{
    TryFutureExt, TryStreamExt,
    future::{BoxFuture, FutureExt, join_all},
};
use tokio_postgres::{Row, Statement, types::ToSql};
use tracing::{debug, instrument};

use super::{Committed, Op, OpKind, ReferenceCheck, State, UnitOfWork};
use crate::{
    Entity, Error, Result,
    indexes::unique_pointer,
    service::{STAMP_LOCK_CLASS, STAMP_SLOTS},
    sql,
};

/// Takes a unit of work's commit stamp: every stamp-lock slot of the service shared (see
/// [`STAMP_SLOTS`]), then the `units_of_work` row with `clock_timestamp()` as the commit time,
/// which it returns. Parameters: `$1` uow id, `$2` actor, `$3` correlation id, `$4` metadata,
/// `$5` [`STAMP_LOCK_CLASS`], `$6` the service's lock key, `$7` [`STAMP_SLOTS`].
pub(crate) fn stamp_sql(uow_table: &str) -> String {
    format!(
        "WITH stamp_lock AS MATERIALIZED (
             SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared($5 + slot, $6)
                                   FROM generate_series(0, $7 - 1) AS slot) AS slots)
         INSERT INTO {uow_table} (uow_id, actor, correlation_id, committed_at, metadata)
         SELECT $1, $2, $3, clock_timestamp(), $4 FROM stamp_lock
         RETURNING committed_at"
    )
}

/// The staged write (index in `ops`), and the reference of it (index in its `references`), a
/// pipeline stage belongs to, to name it when it fails.
type Owner = (usize, Option<usize>);

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
        let stamp = client.prepare_cached(&stamp_sql(&uow_table)).await?;
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
            let mut checks = Vec::with_capacity(op.references.len());
            for reference in &op.references {
                checks.push(
                    client
                        .prepare_cached(&format!(
                            "SELECT vellum.expect_reference(count(*), $2)
                             FROM (SELECT 1 FROM {} e
                                   WHERE e.entity_id = $1 AND e.is_active AND e.deleted_at IS NULL
                                   FOR SHARE) AS live",
                            idents.entity_table(&reference.target)
                        ))
                        .await
                        .map_err(|err| self.commit_error(Some((op, Some(reference))), err))?,
                );
            }
            statements.push((supersede, client.prepare_cached(&write).await?, checks));
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
        let mut pipeline: Vec<(Option<Owner>, Pipelined<'_>)> = Vec::new();
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
            &STAMP_SLOTS,
        ];
        pipeline.push((None, run(&stamp, stamp_params)));
        for (index, (op, (supersede, write, checks))) in
            self.ops.iter().zip(&statements).enumerate()
        {
            let [entity_version, schema_version, what, schema_id] = &texts[index];
            let (revision, deleted) = &revisions[index];
            if let Some(supersede) = supersede {
                let params: Vec<&(dyn ToSql + Sync)> =
                    vec![&self.uow_id, &op.entity_id, revision, deleted, what];
                pipeline.push((Some((index, None)), run(supersede, params)));
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
            pipeline.push((Some((index, None)), run(write, params)));
            for (i, (reference, check)) in op.references.iter().zip(checks).enumerate() {
                let params: Vec<&(dyn ToSql + Sync)> =
                    vec![&reference.target_id, &reference_texts[index][i]];
                pipeline.push((Some((index, Some(i))), run(check, params)));
            }
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
            let owner = owners[failed].map(|(op, reference)| {
                let op = &self.ops[op];
                (op, reference.map(|r| &op.references[r]))
            });
            return Err(self.commit_error(owner, err));
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
