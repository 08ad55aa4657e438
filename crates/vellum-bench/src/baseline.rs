//! The raw-SQL baseline: what a careful hand-written service would do with tokio-postgres to
//! store and read the same rows, in the same tables (so the same indexes, constraints and
//! triggers), with prepared statements from a pool like vellum's.
//!
//! It writes as the connecting user, without `SET ROLE`, the per-service advisory lock or
//! schema validation: those are what vellum adds, and what the ratios measure.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, QueueMode, RecyclingMethod, Runtime,
};
use rand::rngs::StdRng;
use serde_json::Value;
use tokio_postgres::{Config, NoTls, Row, binary_copy::BinaryCopyInWriter, types::Type};
use uuid::Uuid;
use vellum::{ServiceName, Version};

use crate::{
    Error, Result,
    document::{Documents, SCHEMA_ID, SCHEMA_VERSION},
    driver::Client,
    fixture::{PageEnd, QUERY_PAGE, Read, ReadSet, check_page, pick},
};

/// Who the baseline records as the actor of its units of work.
const ACTOR: &str = "bench-baseline";

/// The columns vellum reads back, in the same order.
const COLUMNS: &str = "e.entity_id, e.entity_version, e.revision, e.schema_id, \
     e.schema_version, e.payload, e.created_at, e.updated_at, e.deleted_at, e.is_active, e.uow_id";

/// The key of the entity table's index for reads of an active version by id (see the table's
/// DDL in the vellum crate); the index is partial on `is_active`.
const ACTIVE_ENTITY: &str = "(CASE WHEN e.is_active THEN e.entity_id END)";

/// The baseline's pool and SQL.
#[derive(Clone)]
pub(crate) struct Raw {
    pool: Pool,
    sql: Arc<Statements>,
}

/// The statements, as text; each connection prepares them once (`prepare_cached`).
struct Statements {
    insert_uow: String,
    insert_version: String,
    supersede: String,
    latest: String,
    by_version: String,
    as_of: String,
    many: String,
    query: String,
    query_next: String,
    copy: String,
    load_history: String,
    analyze: String,
}

impl Raw {
    pub(crate) fn new(config: &Config, service: &ServiceName, pool_size: usize) -> Result<Self> {
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Taken last in, first out, like the store's pool: neither side cycles through cold
        // connections at low concurrency.
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Options(format!("baseline pool: {e}")))?;
        // Service names are validated as [a-z][a-z0-9_]*, so quoting is all they need.
        let schema = format!("\"{}\"", service.as_str());
        let table = format!("{schema}.\"{SCHEMA_ID}\"");
        let uow = format!("{schema}.units_of_work");
        Ok(Self {
            pool,
            sql: Arc::new(Statements {
                insert_uow: format!(
                    "INSERT INTO {uow} (uow_id, actor, committed_at) VALUES ($1, $2, now())"
                ),
                insert_version: format!(
                    "INSERT INTO {table} (entity_id, revision, entity_version, schema_id,
                                          schema_version, payload, created_at, updated_at, uow_id)
                     VALUES ($1, $2, $3, $4, $5, $6, now(), now(), $7)"
                ),
                supersede: format!(
                    "UPDATE {table} SET is_active = false, updated_at = now()
                     WHERE entity_id = $1 AND revision = $2 AND is_active"
                ),
                // The active version by id through the table's index for it, named by its key
                // as any hand-written query on that table would.
                latest: format!(
                    "SELECT {COLUMNS} FROM {table} e
                     WHERE e.is_active AND {ACTIVE_ENTITY} = $1 AND e.deleted_at IS NULL"
                ),
                by_version: format!(
                    "SELECT {COLUMNS} FROM {table} e WHERE e.entity_id = $1 AND e.entity_version = $2"
                ),
                as_of: format!(
                    "SELECT {COLUMNS} FROM {table} e WHERE e.entity_id = $1 AND e.created_at <= $2
                     ORDER BY e.created_at DESC, e.revision DESC LIMIT 1"
                ),
                many: format!(
                    "SELECT {COLUMNS} FROM {table} e
                     WHERE e.is_active AND {ACTIVE_ENTITY} = ANY($1) AND e.deleted_at IS NULL"
                ),
                // What a hand-written service would send for the `query` workload: the path as
                // a literal, on the index vellum built for `x-vellum-index`.
                query: format!(
                    "SELECT {COLUMNS} FROM {table} e
                     WHERE e.is_active AND e.deleted_at IS NULL
                       AND (e.payload #> '{{totals,gross}}') >= $1
                     ORDER BY (e.payload #> '{{totals,gross}}'), e.entity_id LIMIT {QUERY_PAGE}"
                ),
                // And for `query_next`: the same range after the last row of the page before,
                // by its value and id, which the index reads from that row on.
                query_next: format!(
                    "SELECT {COLUMNS} FROM {table} e
                     WHERE e.is_active AND e.deleted_at IS NULL
                       AND (e.payload #> '{{totals,gross}}') >= $1
                       AND ((e.payload #> '{{totals,gross}}'), e.entity_id) > ($2, $3)
                     ORDER BY (e.payload #> '{{totals,gross}}'), e.entity_id LIMIT {QUERY_PAGE}"
                ),
                copy: format!(
                    "COPY {table} (entity_id, revision, entity_version, schema_id, schema_version,
                                   payload, created_at, updated_at, uow_id) FROM STDIN BINARY"
                ),
                // One statement writes a whole history: `depth` units of work 1 ms apart, and
                // one version per unit of work, each superseded by the next.
                load_history: format!(
                    "WITH u AS (
                         INSERT INTO {uow} (uow_id, actor, committed_at)
                         SELECT gen_random_uuid(), 'bench-loader', $2::timestamptz + g * interval '1 millisecond'
                         FROM generate_series(1, $3::int) g
                         RETURNING uow_id, committed_at
                     ), v AS (
                         SELECT uow_id, committed_at, row_number() OVER (ORDER BY committed_at) AS revision
                         FROM u
                     )
                     INSERT INTO {table} (entity_id, revision, entity_version, schema_id, schema_version,
                                          payload, created_at, updated_at, is_active, uow_id)
                     SELECT $1, revision, '1.0.' || (revision - 1), '{SCHEMA_ID}', '{SCHEMA_VERSION}',
                            jsonb_set($4::jsonb, '{{notes}}', to_jsonb('revision ' || revision)),
                            committed_at,
                            committed_at + CASE WHEN revision = $3 THEN interval '0' ELSE interval '1 millisecond' END,
                            revision = $3, uow_id
                     FROM v"
                ),
                analyze: format!("ANALYZE {table}"),
            }),
        })
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// The process id of the server process behind one of the pool's connections.
    pub(crate) async fn backend_pid(&self) -> Result<i32> {
        let row = self
            .client()
            .await?
            .query_one("SELECT pg_backend_pid()", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Refreshes the planner's statistics of the entity table after a load, as autovacuum
    /// would in time: reads are then planned as on a table in service, and not differently once
    /// autovacuum gets to the table in the middle of a run.
    pub(crate) async fn analyze(&self) -> Result<()> {
        self.client()
            .await?
            .batch_execute(&self.sql.analyze)
            .await?;
        Ok(())
    }

    /// Writes an entity with `depth` versions, the last one 10 s ago; returns its read set.
    pub(crate) async fn load_history(&self, payload: &Value, depth: u32) -> Result<ReadSet> {
        let client = self.client().await?;
        let entity_id = Uuid::now_v7();
        let start = Utc::now()
            - chrono::Duration::milliseconds(i64::from(depth))
            - chrono::Duration::seconds(10);
        let stmt = client.prepare_cached(&self.sql.load_history).await?;
        let depth_param = i32::try_from(depth)
            .map_err(|_| Error::Options(format!("a history of {depth} versions is too deep")))?;
        let written = client
            .execute(&stmt, &[&entity_id, &start, &depth_param, payload])
            .await?;
        if written != u64::from(depth) {
            return Err(Error::Check(format!(
                "history load wrote {written} versions, not {depth}"
            )));
        }
        let millis = |n: u32| chrono::Duration::milliseconds(i64::from(n));
        Ok(ReadSet::new(
            vec![entity_id],
            depth,
            start + millis(1),
            start + millis(depth),
        ))
    }

    /// Where `query_next` starts from each of `thresholds`: its first page's last row.
    pub(crate) async fn query_starts(&self, thresholds: &[f64]) -> Result<Vec<PageEnd>> {
        let mut starts = Vec::with_capacity(thresholds.len());
        for &threshold in thresholds {
            let page = self.query_page(threshold, None).await?;
            let last = page.last().map(|e| (&e.payload, e.entity_id));
            starts.push(PageEnd::of(threshold, page.len(), last)?);
        }
        Ok(starts)
    }

    /// A page of the range on `/totals/gross` from `threshold`: the first, or the one after
    /// `after`.
    async fn query_page(&self, threshold: f64, after: Option<&PageEnd>) -> Result<Vec<RawEntity>> {
        let client = self.client().await?;
        let threshold = Value::from(threshold);
        let rows = match after {
            None => {
                let stmt = client.prepare_cached(&self.sql.query).await?;
                client.query(&stmt, &[&threshold]).await?
            }
            Some(after) => {
                let stmt = client.prepare_cached(&self.sql.query_next).await?;
                let gross = Value::from(after.gross);
                client
                    .query(&stmt, &[&threshold, &gross, &after.id])
                    .await?
            }
        };
        rows.iter().map(RawEntity::from_row).collect()
    }

    /// Writes `documents` as new entities in one transaction: the unit-of-work row, then every
    /// version row with binary `COPY`.
    async fn import(&self, documents: &[Value]) -> Result<()> {
        let client = self.client().await?;
        let insert_uow = client.prepare_cached(&self.sql.insert_uow).await?;
        let uow_id = Uuid::now_v7();
        client.batch_execute("BEGIN").await?;
        client.execute(&insert_uow, &[&uow_id, &ACTOR]).await?;
        let now = Utc::now();
        let sink = client.copy_in(&self.sql.copy).await?;
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(
            sink,
            &[
                Type::UUID,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::JSONB,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::UUID,
            ],
        ));
        let initial = Version::INITIAL.to_string();
        for document in documents {
            writer
                .as_mut()
                .write(&[
                    &Uuid::now_v7(),
                    &1i64,
                    &initial,
                    &SCHEMA_ID,
                    &SCHEMA_VERSION,
                    document,
                    &now,
                    &now,
                    &uow_id,
                ])
                .await?;
        }
        let written = writer.finish().await?;
        client.batch_execute("COMMIT").await?;
        if written != documents.len() as u64 {
            return Err(Error::Check(format!(
                "COPY wrote {written} rows, not {}",
                documents.len()
            )));
        }
        Ok(())
    }

    /// Writes one version and its unit of work in one pipelined transaction: `BEGIN`, the
    /// unit-of-work row, the previous version made inactive (for an update), the new version,
    /// `COMMIT`, all sent before any answer is read. The active-row unique index refuses the new
    /// version if the previous one was not the active one, which is the optimistic lock.
    async fn write(&self, entity_id: Uuid, previous: Option<i64>, payload: &Value) -> Result<()> {
        let client = self.client().await?;
        let insert_uow = client.prepare_cached(&self.sql.insert_uow).await?;
        let insert_version = client.prepare_cached(&self.sql.insert_version).await?;
        let uow_id = Uuid::now_v7();
        let revision = previous.unwrap_or(0) + 1;
        let entity_version = Version::new(1, 0, (revision - 1) as u32).to_string();
        let version_params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
            &entity_id,
            &revision,
            &entity_version,
            &SCHEMA_ID,
            &SCHEMA_VERSION,
            payload,
            &uow_id,
        ];
        let uow_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&uow_id, &ACTOR];
        match previous {
            None => {
                let (begun, uow, version, committed) = tokio::join!(
                    client.batch_execute("BEGIN"),
                    client.execute(&insert_uow, &uow_params),
                    client.execute(&insert_version, &version_params),
                    client.batch_execute("COMMIT"),
                );
                begun?;
                uow?;
                version?;
                committed?;
            }
            Some(previous) => {
                let supersede = client.prepare_cached(&self.sql.supersede).await?;
                let supersede_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                    [&entity_id, &previous];
                let (begun, uow, superseded, version, committed) = tokio::join!(
                    client.batch_execute("BEGIN"),
                    client.execute(&insert_uow, &uow_params),
                    client.execute(&supersede, &supersede_params),
                    client.execute(&insert_version, &version_params),
                    client.batch_execute("COMMIT"),
                );
                begun?;
                uow?;
                if superseded? != 1 {
                    return Err(Error::Check(format!(
                        "revision {previous} of {entity_id} was not the active one"
                    )));
                }
                version?;
                committed?;
            }
        }
        Ok(())
    }

    /// One read of the kind the workload does, decoded into the same columns vellum decodes.
    async fn read(&self, set: &ReadSet, read: Read, rng: &mut StdRng) -> Result<()> {
        let client = self.client().await?;
        let rows = match read {
            Read::Latest => {
                let stmt = client.prepare_cached(&self.sql.latest).await?;
                client.query(&stmt, &[&set.pick(rng)]).await?
            }
            Read::Version => {
                let stmt = client.prepare_cached(&self.sql.by_version).await?;
                let (id, version) = (set.pick(rng), set.pick_version(rng).to_string());
                client.query(&stmt, &[&id, &version]).await?
            }
            Read::AsOf => {
                let stmt = client.prepare_cached(&self.sql.as_of).await?;
                let (id, as_of) = (set.pick(rng), set.pick_time(rng));
                client.query(&stmt, &[&id, &as_of]).await?
            }
            Read::Many => {
                let stmt = client.prepare_cached(&self.sql.many).await?;
                client.query(&stmt, &[&set.pick_many(rng)]).await?
            }
        };
        let found = rows
            .iter()
            .map(RawEntity::from_row)
            .collect::<Result<Vec<_>>>()?;
        read.check(found.len())
    }
}

/// The baseline of `bulk_import`: batches of documents with binary `COPY`.
pub(crate) struct RawImport {
    pub(crate) raw: Raw,
    pub(crate) batch: Arc<Vec<Value>>,
}

impl Client for RawImport {
    async fn op(&mut self) -> Result<()> {
        self.raw.import(&self.batch).await
    }
}

/// The baseline of `query`: one page of the range on `/totals/gross` from a threshold.
pub(crate) struct RawQuery {
    pub(crate) raw: Raw,
    pub(crate) thresholds: Arc<Vec<f64>>,
    pub(crate) rng: StdRng,
}

impl Client for RawQuery {
    async fn op(&mut self) -> Result<()> {
        let threshold = *pick(&self.thresholds, &mut self.rng);
        let page = self.raw.query_page(threshold, None).await?;
        check_page(page.len())
    }
}

/// The baseline of `query_next`: the second page of the range from a threshold.
pub(crate) struct RawQueryNext {
    pub(crate) raw: Raw,
    pub(crate) starts: Arc<Vec<PageEnd>>,
    pub(crate) rng: StdRng,
}

impl Client for RawQueryNext {
    async fn op(&mut self) -> Result<()> {
        let start = pick(&self.starts, &mut self.rng);
        let page = self.raw.query_page(start.threshold, Some(start)).await?;
        start.check_next(page.len(), page.first().map(|e| (&e.payload, e.entity_id)))
    }
}

/// An entity version as the baseline decodes it: the same columns as `vellum::Entity`, in
/// plain types.
#[allow(
    dead_code,
    reason = "decoded to cost what vellum's decoding costs, not read"
)]
struct RawEntity {
    entity_id: Uuid,
    entity_version: String,
    revision: i64,
    schema_id: String,
    schema_version: String,
    payload: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    is_active: bool,
    uow_id: Uuid,
}

impl RawEntity {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(Self {
            entity_id: row.try_get(0)?,
            entity_version: row.try_get(1)?,
            revision: row.try_get(2)?,
            schema_id: row.try_get(3)?,
            schema_version: row.try_get(4)?,
            payload: row.try_get(5)?,
            created_at: row.try_get(6)?,
            updated_at: row.try_get(7)?,
            deleted_at: row.try_get(8)?,
            is_active: row.try_get(9)?,
            uow_id: row.try_get(10)?,
        })
    }
}

/// The baseline of `create`: a new entity per operation.
pub(crate) struct RawCreate {
    pub(crate) raw: Raw,
    pub(crate) documents: Arc<Documents>,
    pub(crate) next: usize,
}

impl Client for RawCreate {
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let payload = self.documents.value(self.next).clone();
        self.raw.write(Uuid::now_v7(), None, &payload).await
    }
}

/// The baseline of `update`: the client's own entities in turn, each at the revision it last
/// wrote.
pub(crate) struct RawUpdate {
    pub(crate) raw: Raw,
    pub(crate) documents: Arc<Documents>,
    /// Entity and its current revision.
    pub(crate) entities: Vec<(Uuid, i64)>,
    pub(crate) next: usize,
}

impl Client for RawUpdate {
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let at = self.next % self.entities.len();
        let (entity_id, revision) = self.entities[at];
        let payload = self.documents.value(self.next).clone();
        self.raw.write(entity_id, Some(revision), &payload).await?;
        self.entities[at].1 = revision + 1;
        Ok(())
    }
}

/// The baseline of the read workloads.
pub(crate) struct RawRead {
    pub(crate) raw: Raw,
    pub(crate) set: Arc<ReadSet>,
    pub(crate) read: Read,
    pub(crate) rng: StdRng,
}

impl Client for RawRead {
    async fn op(&mut self) -> Result<()> {
        self.raw.read(&self.set, self.read, &mut self.rng).await
    }
}
