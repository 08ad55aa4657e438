//! Each workload's two sides, and vellum's side of each.

use std::sync::Arc;

use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;
use uuid::Uuid;
use vellum::{
    SchemaId, Service, UowOptions, Version, WriteOptions,
    query::{Filter, OrderBy, OrderKey, Query},
};

use crate::{
    Error, IMPORT_BATCH, Options, Result, Workload,
    baseline::{RawCreate, RawImport, RawQuery, RawQueryNext, RawRead, RawUpdate},
    document::{Documents, SEED},
    driver::{Client, Comparison, compare},
    fixture::{Fixture, PageEnd, QUERY_PAGE, Read, ReadSet, check_page, pick, query_thresholds},
    http::{HttpCreate, HttpGet},
};

/// The actor of vellum's units of work.
const ACTOR: &str = "bench-vellum";

/// Runs one cell: `workload` with `clients` concurrent clients on each side.
pub(crate) async fn run(
    workload: Workload,
    clients: usize,
    fixture: &Fixture,
    options: &Options,
) -> Result<Comparison> {
    let rng = |i: usize| client_rng(workload, i);
    let documents = || fixture.documents.clone();
    let creates = |i: usize| VellumCreate {
        service: fixture.service.clone(),
        schema_id: fixture.schema_id.clone(),
        documents: documents(),
        next: i * 7,
    };
    let reads = |read: Read, set: &Arc<ReadSet>, i: usize| vellum_read(fixture, read, set, rng(i));
    match workload {
        Workload::Create => {
            let baseline = (0..clients).map(|i| RawCreate {
                raw: fixture.raw.clone(),
                documents: documents(),
                next: i * 7,
            });
            compare(
                (0..clients).map(creates).collect(),
                baseline.collect(),
                fixture,
                options,
            )
            .await
        }
        Workload::Update => {
            let vellum = fixture.update_set(clients).await?.into_iter().enumerate();
            let vellum = vellum.map(|(i, entities)| VellumUpdate {
                service: fixture.service.clone(),
                schema_id: fixture.schema_id.clone(),
                documents: documents(),
                entities,
                next: i * 7,
            });
            let baseline = fixture.update_set(clients).await?.into_iter().enumerate();
            let baseline = baseline.map(|(i, entities)| RawUpdate {
                raw: fixture.raw.clone(),
                documents: documents(),
                entities: entities.into_iter().map(|(id, _)| (id, 1)).collect(),
                next: i * 7,
            });
            compare(vellum.collect(), baseline.collect(), fixture, options).await
        }
        Workload::HttpGet => {
            let target = fixture.http_target()?;
            let set = fixture.reads(workload)?;
            let http = (0..clients).map(|i| HttpGet {
                target: target.clone(),
                set: set.clone(),
                rng: rng(i),
            });
            let library = (0..clients).map(|i| reads(Read::Latest, &set, i));
            compare(http.collect(), library.collect(), fixture, options).await
        }
        Workload::Query => {
            let thresholds = Arc::new(query_thresholds(&fixture.documents, 1));
            let vellum = (0..clients).map(|i| VellumQuery {
                service: fixture.service.clone(),
                schema_id: fixture.schema_id.clone(),
                thresholds: thresholds.clone(),
                rng: rng(i),
            });
            let baseline = (0..clients).map(|i| RawQuery {
                raw: fixture.raw.clone(),
                thresholds: thresholds.clone(),
                rng: rng(i),
            });
            compare(vellum.collect(), baseline.collect(), fixture, options).await
        }
        Workload::QueryNext => {
            // Each side starts from its own first pages, read before the rounds.
            let thresholds = query_thresholds(&fixture.documents, 2);
            let starts = Arc::new(query_starts(fixture, &thresholds).await?);
            let raw_starts = Arc::new(fixture.raw.query_starts(&thresholds).await?);
            let vellum = (0..clients).map(|i| VellumQueryNext {
                service: fixture.service.clone(),
                schema_id: fixture.schema_id.clone(),
                starts: starts.clone(),
                rng: rng(i),
            });
            let baseline = (0..clients).map(|i| RawQueryNext {
                raw: fixture.raw.clone(),
                starts: raw_starts.clone(),
                rng: rng(i),
            });
            compare(vellum.collect(), baseline.collect(), fixture, options).await
        }
        Workload::BulkImport => {
            let batch: Arc<Vec<Value>> = Arc::new(
                (0..IMPORT_BATCH)
                    .map(|n| fixture.documents.value(n).clone())
                    .collect(),
            );
            let vellum = (0..clients).map(|_| VellumImport {
                service: fixture.service.clone(),
                schema_id: fixture.schema_id.clone(),
                batch: batch.clone(),
            });
            let baseline = (0..clients).map(|_| RawImport {
                raw: fixture.raw.clone(),
                batch: batch.clone(),
            });
            compare(vellum.collect(), baseline.collect(), fixture, options).await
        }
        Workload::HttpCreate => {
            let target = fixture.http_target()?;
            let http = (0..clients).map(|i| HttpCreate {
                target: target.clone(),
                documents: documents(),
                next: i * 7,
            });
            compare(
                http.collect(),
                (0..clients).map(creates).collect(),
                fixture,
                options,
            )
            .await
        }
        Workload::GetLatest
        | Workload::GetVersion
        | Workload::GetAsOf
        | Workload::GetMany
        | Workload::AsOfDepth10
        | Workload::AsOfDepth1000
        | Workload::AsOfDepth10000
        | Workload::LatestDepth10
        | Workload::LatestDepth1000
        | Workload::LatestDepth10000 => {
            let read = read_of(workload);
            let set = fixture.reads(workload)?;
            let baseline = (0..clients).map(|i| RawRead {
                raw: fixture.raw.clone(),
                set: set.clone(),
                read,
                rng: rng(i),
            });
            let vellum = (0..clients).map(|i| reads(read, &set, i));
            compare(vellum.collect(), baseline.collect(), fixture, options).await
        }
    }
}

/// The read a read workload does.
fn read_of(workload: Workload) -> Read {
    match workload {
        Workload::GetLatest
        | Workload::LatestDepth10
        | Workload::LatestDepth1000
        | Workload::LatestDepth10000 => Read::Latest,
        Workload::GetVersion => Read::Version,
        Workload::GetMany => Read::Many,
        _ => Read::AsOf,
    }
}

/// Vellum's reads of the `deep` workload's history against the same reads of the `shallow`
/// one's (say `as_of_depth_10000` and `as_of_depth_10`), with `clients` clients each, round by
/// round in the same cell (the deep side where [`Comparison::vellum`] is, the shallow one as its
/// baseline). Two cells run seconds apart would compare the machine's passing states as much
/// as the depths.
pub(crate) async fn depth(
    fixture: &Fixture,
    deep: Workload,
    shallow: Workload,
    clients: usize,
    options: &Options,
) -> Result<Comparison> {
    // Each side draws the same choices as its workload's own cell.
    let side = |workload: Workload| -> Result<Vec<VellumRead>> {
        let set = fixture.reads(workload)?;
        Ok((0..clients)
            .map(|i| vellum_read(fixture, read_of(workload), &set, client_rng(workload, i)))
            .collect())
    };
    compare(side(deep)?, side(shallow)?, fixture, options).await
}

/// The random generator of client `i` of `workload`: client `i` of either side draws the same
/// random choices in the same order.
fn client_rng(workload: Workload, i: usize) -> StdRng {
    StdRng::seed_from_u64(SEED ^ ((workload as u64) << 32) ^ i as u64)
}

/// A vellum client doing `read` on `set`.
fn vellum_read(fixture: &Fixture, read: Read, set: &Arc<ReadSet>, rng: StdRng) -> VellumRead {
    VellumRead {
        service: fixture.service.clone(),
        schema_id: fixture.schema_id.clone(),
        set: set.clone(),
        read,
        rng,
    }
}

/// `create` through vellum: a unit of work that creates one entity, validated.
struct VellumCreate {
    service: Service,
    schema_id: SchemaId,
    documents: Arc<Documents>,
    next: usize,
}

impl Client for VellumCreate {
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let document = self.documents.value(self.next).clone();
        let mut uow = self.service.begin(ACTOR).await?;
        uow.create(&self.schema_id, document, WriteOptions::default())
            .await?;
        uow.commit().await?;
        Ok(())
    }
}

/// `update` through vellum: the client's own entities in turn, each with the version it last
/// wrote as the expected version (optimistic locking, as an HTTP `If-Match` does).
struct VellumUpdate {
    service: Service,
    schema_id: SchemaId,
    documents: Arc<Documents>,
    entities: Vec<(Uuid, Version)>,
    next: usize,
}

impl Client for VellumUpdate {
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let at = self.next % self.entities.len();
        let (entity_id, expected) = self.entities[at];
        let document = self.documents.value(self.next).clone();
        let mut uow = self.service.begin(ACTOR).await?;
        let staged = uow
            .update(
                &self.schema_id,
                entity_id,
                document,
                WriteOptions::expect(expected),
            )
            .await?;
        uow.commit().await?;
        self.entities[at].1 = staged.entity_version;
        Ok(())
    }
}

/// `bulk_import` through vellum: one import of the batch, validated, as one unit of work.
struct VellumImport {
    service: Service,
    schema_id: SchemaId,
    batch: Arc<Vec<Value>>,
}

impl Client for VellumImport {
    async fn op(&mut self) -> Result<()> {
        let documents = self.batch.iter().cloned().map(Ok);
        let imported = self
            .service
            .import(&self.schema_id, UowOptions::new(ACTOR), documents, |_| {})
            .await?;
        if imported.count != self.batch.len() as u64 {
            return Err(Error::Check(format!(
                "an import stored {} documents, not {}",
                imported.count,
                self.batch.len()
            )));
        }
        Ok(())
    }
}

/// The range of `query` and `query_next` in the query language: `/totals/gross` from
/// `threshold` on, ordered by it, a page of [`QUERY_PAGE`].
fn range(threshold: f64) -> Result<Query> {
    Ok(Query {
        filter: Some(Filter::gte("/totals/gross", threshold).map_err(vellum::Error::from)?),
        order: vec![OrderKey::asc(
            OrderBy::path("/totals/gross").map_err(vellum::Error::from)?,
        )],
        limit: Some(QUERY_PAGE as u32),
        ..Query::default()
    })
}

/// `query` through vellum: the same range and page as the baseline, in the query language.
struct VellumQuery {
    service: Service,
    schema_id: SchemaId,
    thresholds: Arc<Vec<f64>>,
    rng: StdRng,
}

impl Client for VellumQuery {
    async fn op(&mut self) -> Result<()> {
        let threshold = *pick(&self.thresholds, &mut self.rng);
        let page = self
            .service
            .query(&self.schema_id, &range(threshold)?)
            .await?;
        check_page(page.items.len())
    }
}

/// Where `query_next` starts through vellum from each of `thresholds`: its first page's last
/// row, and its cursor.
async fn query_starts(fixture: &Fixture, thresholds: &[f64]) -> Result<Vec<(PageEnd, String)>> {
    let mut starts = Vec::with_capacity(thresholds.len());
    for &threshold in thresholds {
        let page = fixture
            .service
            .query(&fixture.schema_id, &range(threshold)?)
            .await?;
        let last = page.items.last().map(|e| (&e.payload, e.entity_id));
        let end = PageEnd::of(threshold, page.items.len(), last)?;
        let cursor = page
            .next_cursor
            .ok_or_else(|| Error::Check(format!("no page follows the first from {threshold}")))?;
        starts.push((end, cursor));
    }
    Ok(starts)
}

/// `query_next` through vellum: the second page of the range, from the first page's cursor.
struct VellumQueryNext {
    service: Service,
    schema_id: SchemaId,
    starts: Arc<Vec<(PageEnd, String)>>,
    rng: StdRng,
}

impl Client for VellumQueryNext {
    async fn op(&mut self) -> Result<()> {
        let (start, cursor) = pick(&self.starts, &mut self.rng);
        let query = Query {
            cursor: Some(cursor.clone()),
            ..range(start.threshold)?
        };
        let page = self.service.query(&self.schema_id, &query).await?;
        let first = page.items.first().map(|e| (&e.payload, e.entity_id));
        start.check_next(page.items.len(), first)
    }
}

/// The read workloads through vellum.
struct VellumRead {
    service: Service,
    schema_id: SchemaId,
    set: Arc<ReadSet>,
    read: Read,
    rng: StdRng,
}

impl Client for VellumRead {
    async fn op(&mut self) -> Result<()> {
        let (service, schema_id, set, rng) =
            (&self.service, &self.schema_id, &self.set, &mut self.rng);
        let found = match self.read {
            Read::Latest => service.get(schema_id, set.pick(rng)).await.map(|_| 1)?,
            Read::Version => {
                let (id, version) = (set.pick(rng), set.pick_version(rng));
                service
                    .get_version(schema_id, id, &version)
                    .await
                    .map(|_| 1)?
            }
            Read::AsOf => {
                let (id, as_of) = (set.pick(rng), set.pick_time(rng));
                service.get_as_of(schema_id, id, as_of).await.map(|_| 1)?
            }
            Read::Many => service
                .get_many(schema_id, &set.pick_many(rng))
                .await?
                .len(),
        };
        self.read.check(found)
    }
}
