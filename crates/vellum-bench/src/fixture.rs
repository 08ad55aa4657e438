//! What the workloads run on: the store, the service and its schema, the baseline's pool, the
//! entities the reads read, and the in-process HTTP server.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use rand::{Rng, rngs::StdRng, seq::index};
use serde_json::Value;
use uuid::Uuid;
use vellum::{SchemaId, Service, Store, StoreOptions, Version, WriteOptions};

use crate::{
    Error, Options, Result, Workload,
    baseline::Raw,
    database::BenchDatabase,
    document::{self, Documents, SCHEMA_ID},
    http::{HttpServer, HttpTarget},
    options::GET_MANY,
    process::Server,
};

/// Versions of each entity of the read set.
const READ_VERSIONS: u32 = 3;

/// Writes per unit of work while loading.
const LOAD_BATCH: usize = 100;

/// Entities each client of `update` cycles through, so clients never contend for a row.
const UPDATE_ENTITIES_PER_CLIENT: usize = 8;

/// The actor of the units of work that load data.
const LOADER: &str = "bench-loader";

/// The page size of the `query` workload.
pub(crate) const QUERY_PAGE: usize = 50;

/// The thresholds `query` (`pages` 1) and `query_next` (`pages` 2) draw from: the lowest
/// `1 / (2 * pages)` of the documents' distinct `/totals/gross`, so that `pages` full pages match
/// whatever the draw. The read set's documents cycle through the 64 of the pool, each taking a
/// value 2 to 4 times in a read set of 200: at least 140 of them are at or above any of the
/// lowest quarter of values, at least 76 at or above any of the lowest half.
pub(crate) fn query_thresholds(documents: &Documents, pages: usize) -> Vec<f64> {
    let grosses = documents.grosses();
    grosses[..grosses.len() / (2 * pages)].to_vec()
}

/// One of `items`, drawn the same way on both sides.
pub(crate) fn pick<'a, T>(items: &'a [T], rng: &mut StdRng) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Where a page of `query_next` starts: the threshold of its range, and the last row of the
/// range's first page by its `/totals/gross` and id.
#[derive(Debug, Clone)]
pub(crate) struct PageEnd {
    pub(crate) threshold: f64,
    pub(crate) gross: f64,
    pub(crate) id: Uuid,
}

impl PageEnd {
    /// The end of a first page from `threshold` of `found` rows, the last of them `last` (its
    /// document and id); fails unless the page is full.
    pub(crate) fn of(threshold: f64, found: usize, last: Option<(&Value, Uuid)>) -> Result<Self> {
        check_page(found)?;
        let (payload, id) = last.ok_or_else(|| Error::Check("an empty page".into()))?;
        Ok(PageEnd {
            threshold,
            gross: gross(payload)?,
            id,
        })
    }

    /// Fails unless a page of `found` rows begins after this row in the range's order (a
    /// greater `/totals/gross`, or the same and a greater id): the next page, not this one
    /// again.
    pub(crate) fn check_next(&self, found: usize, first: Option<(&Value, Uuid)>) -> Result<()> {
        check_page(found)?;
        let (payload, id) = first.ok_or_else(|| Error::Check("an empty page".into()))?;
        let gross = gross(payload)?;
        if (gross, id) <= (self.gross, self.id) {
            return Err(Error::Check(format!(
                "the page after ({}, {}) begins at ({gross}, {id})",
                self.gross, self.id
            )));
        }
        Ok(())
    }
}

/// A document's `/totals/gross`.
fn gross(payload: &Value) -> Result<f64> {
    payload["totals"]["gross"]
        .as_f64()
        .ok_or_else(|| Error::Check(format!("a document without /totals/gross: {payload}")))
}

/// Fails unless a query returned a full page.
pub(crate) fn check_page(found: usize) -> Result<()> {
    if found != QUERY_PAGE {
        return Err(Error::Check(format!(
            "a query page held {found} entities, not {QUERY_PAGE}"
        )));
    }
    Ok(())
}

/// Which read a read workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    Latest,
    Version,
    AsOf,
    Many,
}

impl Read {
    /// Fails unless a read found what the read set holds, so neither side gets away with less.
    pub(crate) fn check(self, found: usize) -> Result<()> {
        let expected = match self {
            Read::Many => GET_MANY,
            _ => 1,
        };
        if found != expected {
            return Err(Error::Check(format!(
                "a {self:?} read found {found} entities, not {expected}"
            )));
        }
        Ok(())
    }
}

/// Entities with `versions` versions each, all of which exist from `from` on and were last
/// written at `to`, and the random choices of the reads on them. Both sides seed their generators alike, so they make
/// the same choices in the same order.
#[derive(Debug)]
pub(crate) struct ReadSet {
    ids: Vec<Uuid>,
    versions: u32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl ReadSet {
    pub(crate) fn new(
        ids: Vec<Uuid>,
        versions: u32,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Self {
        Self {
            ids,
            versions,
            from,
            to,
        }
    }

    pub(crate) fn pick(&self, rng: &mut StdRng) -> Uuid {
        self.ids[rng.random_range(0..self.ids.len())]
    }

    /// The version every entity of the set is at: the last one written.
    pub(crate) fn latest_version(&self) -> Version {
        Version::new(1, 0, self.versions.saturating_sub(1))
    }

    /// One of the versions every entity of the set has: `1.0.0`, `1.0.1`, ...
    pub(crate) fn pick_version(&self, rng: &mut StdRng) -> Version {
        Version::new(1, 0, rng.random_range(0..self.versions))
    }

    /// A time between `from` and `to`, to the microsecond.
    pub(crate) fn pick_time(&self, rng: &mut StdRng) -> DateTime<Utc> {
        let span = (self.to - self.from).num_microseconds().unwrap_or(0).max(0);
        self.from + chrono::Duration::microseconds(rng.random_range(0..=span))
    }

    /// [`GET_MANY`] distinct ids.
    pub(crate) fn pick_many(&self, rng: &mut StdRng) -> Vec<Uuid> {
        index::sample(rng, self.ids.len(), GET_MANY)
            .into_iter()
            .map(|i| self.ids[i])
            .collect()
    }
}

/// Everything the workloads share.
pub(crate) struct Fixture {
    /// The store vellum's side (and the HTTP server) works through.
    pub(crate) store: Store,
    pub(crate) service: Service,
    pub(crate) schema_id: SchemaId,
    pub(crate) raw: Raw,
    pub(crate) documents: Arc<Documents>,
    read_set: Option<Arc<ReadSet>>,
    /// The deep histories, by number of versions: `as_of_depth_N` and `latest_depth_N` read
    /// the same entity.
    histories: HashMap<u32, Arc<ReadSet>>,
    http: Option<HttpServer>,
    /// The PostgreSQL server's processes, when it runs on this machine: their CPU time is
    /// read around vellum's rounds (the validation line uses that of `create`'s).
    pub(crate) server: Option<Server>,
}

impl Fixture {
    /// Provisions the service and its schema, then loads what the selected workloads read.
    pub(crate) async fn load(database: &BenchDatabase, options: &Options) -> Result<Fixture> {
        let mut store_options = StoreOptions::default();
        store_options.pool_size = options.pool_size();
        let store = Store::connect(database.config.clone(), store_options).await?;
        store.create_service(&database.service).await?;
        let service = store.service(&database.service).await?;
        let schema_id = SchemaId::new(SCHEMA_ID).map_err(vellum::Error::from)?;
        service
            .schemas()
            .register(&schema_id, Version::INITIAL, document::schema(), false)
            .await?;
        let raw = Raw::new(&database.config, &database.service, options.pool_size())?;
        let server = Server::of_backend(raw.backend_pid().await?);
        let documents = Documents::new();

        // The soak reads the read set and drives the HTTP server.
        let wants = |any: &[Workload]| {
            options.soak.is_some() || options.workloads.iter().any(|w| any.contains(w))
        };
        let read_set = if wants(&[
            Workload::GetLatest,
            Workload::GetVersion,
            Workload::GetAsOf,
            Workload::GetMany,
            Workload::Query,
            Workload::QueryNext,
            Workload::HttpGet,
        ]) {
            eprintln!(
                "loading {} entities with {READ_VERSIONS} versions each",
                options.read_set
            );
            Some(Arc::new(
                load_read_set(&service, &schema_id, &documents, options.read_set).await?,
            ))
        } else {
            None
        };
        let mut histories = HashMap::new();
        for depth in options.workloads.iter().filter_map(|w| w.depth()) {
            if let Entry::Vacant(slot) = histories.entry(depth) {
                eprintln!("loading an entity with {depth} versions");
                let history = raw.load_history(documents.value(0), depth).await?;
                slot.insert(Arc::new(history));
            }
        }
        if read_set.is_some() || !histories.is_empty() {
            raw.analyze().await?;
        }
        let http = if wants(&[Workload::HttpGet, Workload::HttpCreate]) {
            Some(HttpServer::start(store.clone(), &database.service, &schema_id).await?)
        } else {
            None
        };
        Ok(Fixture {
            store,
            service,
            schema_id,
            raw,
            documents,
            read_set,
            histories,
            http,
            server,
        })
    }

    /// The entities `read` workloads read: the read set, or a deep history.
    pub(crate) fn reads(&self, workload: Workload) -> Result<Arc<ReadSet>> {
        let set = match workload.depth() {
            Some(depth) => self.histories.get(&depth).cloned(),
            None => self.read_set.clone(),
        };
        set.ok_or_else(|| Error::Check(format!("nothing was loaded for {workload}")))
    }

    /// A handle on the in-process HTTP server, when the workloads asked for it.
    pub(crate) fn http_target(&self) -> Result<HttpTarget> {
        self.http
            .as_ref()
            .map(HttpServer::target)
            .ok_or_else(|| Error::Check("the HTTP server was not started".into()))
    }

    /// `clients` × a few fresh entities for `update`, with their version; a fresh set per
    /// side and cell keeps histories short and the two sides apart.
    pub(crate) async fn update_set(&self, clients: usize) -> Result<Vec<Vec<(Uuid, Version)>>> {
        let mut uow = self.service.begin(LOADER).await?;
        let mut sets = Vec::with_capacity(clients);
        for client in 0..clients {
            let mut set = Vec::with_capacity(UPDATE_ENTITIES_PER_CLIENT);
            for n in 0..UPDATE_ENTITIES_PER_CLIENT {
                let document = self.documents.value(client + n).clone();
                let staged = uow
                    .create(&self.schema_id, document, WriteOptions::default())
                    .await?;
                set.push((staged.entity_id, staged.entity_version));
            }
            sets.push(set);
        }
        uow.commit().await?;
        Ok(sets)
    }

    /// Stops the HTTP server; the pools close when the fixture drops.
    pub(crate) async fn close(self) {
        if let Some(http) = self.http {
            http.stop().await;
        }
    }
}

/// Creates `size` entities through vellum, then writes `READ_VERSIONS - 1` more versions of
/// each, in units of work of [`LOAD_BATCH`] writes.
async fn load_read_set(
    service: &Service,
    schema_id: &SchemaId,
    documents: &Documents,
    size: usize,
) -> Result<ReadSet> {
    let mut ids = Vec::with_capacity(size);
    let mut first = None;
    for start in (0..size).step_by(LOAD_BATCH) {
        let mut uow = service.begin(LOADER).await?;
        for n in start..(start + LOAD_BATCH).min(size) {
            let document = documents.value(n).clone();
            let staged = uow
                .create(schema_id, document, WriteOptions::default())
                .await?;
            ids.push(staged.entity_id);
        }
        // As-of reads start once every entity exists.
        first = Some(uow.commit().await?.committed_at);
    }
    let mut last = first;
    for revision in 1..READ_VERSIONS {
        for (batch, chunk) in ids.chunks(LOAD_BATCH).enumerate() {
            let mut uow = service.begin(LOADER).await?;
            for (n, id) in chunk.iter().enumerate() {
                let document = documents.value(batch + n + revision as usize).clone();
                let expected = Version::new(1, 0, revision - 1);
                uow.update(schema_id, *id, document, WriteOptions::expect(expected))
                    .await?;
            }
            last = Some(uow.commit().await?.committed_at);
        }
    }
    match (first, last) {
        (Some(from), Some(to)) => Ok(ReadSet::new(ids, READ_VERSIONS, from, to)),
        _ => Err(Error::Options("the read set is empty".into())),
    }
}
