//! What to run: the workloads, the client counts and how long.

use std::{fmt, str::FromStr, time::Duration};

use crate::{Error, Result};

/// One measured path, run through vellum and through its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Workload {
    /// A unit of work that creates one validated ~1 KiB document; baseline: the version row and
    /// the unit-of-work row inserted in one pipelined transaction.
    Create,
    /// A unit of work that replaces a document with an expected version; baseline: the previous
    /// row made inactive, the new row and the unit-of-work row in one pipelined transaction.
    Update,
    /// `Service::get`; baseline: the same `SELECT` of the active row.
    GetLatest,
    /// `Service::get_version`; baseline: the same `SELECT` by entity version.
    GetVersion,
    /// `Service::get_as_of` at a random time of the entity's history; baseline: the same
    /// `SELECT ... ORDER BY revision DESC LIMIT 1`.
    GetAsOf,
    /// `Service::get_many` of 100 ids; baseline: one `SELECT ... = ANY($1)`.
    GetMany,
    /// `GET /v1/{service}/entities/{schema}/{id}` on the in-process server over loopback;
    /// baseline: the library's own `Service::get` in the same run.
    HttpGet,
    /// `POST /v1/{service}/entities/{schema}` on the in-process server over loopback; baseline:
    /// the library's own create unit of work in the same run.
    HttpCreate,
    /// `Service::query`: a range on the indexed path `/totals/gross`, ordered by it, one page of
    /// 50; baseline: the same `SELECT` written by hand with the path as a literal, on the same
    /// index.
    Query,
    /// `Service::query` for the second page of the same range, from the first page's cursor;
    /// baseline: the same `SELECT` continuing after the first page's last row, `(path,
    /// entity_id) > ($2, $3)`, on the same index.
    QueryNext,
    /// `Service::import` of a batch of [`IMPORT_BATCH`] validated documents (one unit of work,
    /// binary `COPY`); baseline: the unit-of-work row and the same rows with binary `COPY`, in
    /// one transaction.
    BulkImport,
    /// `get_as_of` on an entity with 10 versions; baseline as for [`Workload::GetAsOf`].
    AsOfDepth10,
    /// `get_as_of` on an entity with 1,000 versions.
    AsOfDepth1000,
    /// `get_as_of` on an entity with 10,000 versions.
    AsOfDepth10000,
    /// `Service::get` on an entity with 10 versions; baseline as for [`Workload::GetLatest`].
    LatestDepth10,
    /// `Service::get` on an entity with 1,000 versions.
    LatestDepth1000,
    /// `Service::get` on an entity with 10,000 versions.
    LatestDepth10000,
}

/// Documents per operation of [`Workload::BulkImport`].
pub const IMPORT_BATCH: usize = 1_000;

impl Workload {
    /// Every built workload, in the order the suite runs them.
    pub const ALL: [Workload; 17] = [
        Workload::Create,
        Workload::Update,
        Workload::GetLatest,
        Workload::GetVersion,
        Workload::GetAsOf,
        Workload::GetMany,
        Workload::Query,
        Workload::QueryNext,
        Workload::BulkImport,
        Workload::HttpGet,
        Workload::HttpCreate,
        Workload::AsOfDepth10,
        Workload::AsOfDepth1000,
        Workload::AsOfDepth10000,
        Workload::LatestDepth10,
        Workload::LatestDepth1000,
        Workload::LatestDepth10000,
    ];

    /// The name in the output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Update => "update",
            Workload::GetLatest => "get_latest",
            Workload::GetVersion => "get_version",
            Workload::GetAsOf => "get_as_of",
            Workload::GetMany => "get_many",
            Workload::Query => "query",
            Workload::QueryNext => "query_next",
            Workload::BulkImport => "bulk_import",
            Workload::HttpGet => "http_get",
            Workload::HttpCreate => "http_create",
            Workload::AsOfDepth10 => "as_of_depth_10",
            Workload::AsOfDepth1000 => "as_of_depth_1000",
            Workload::AsOfDepth10000 => "as_of_depth_10000",
            Workload::LatestDepth10 => "latest_depth_10",
            Workload::LatestDepth1000 => "latest_depth_1000",
            Workload::LatestDepth10000 => "latest_depth_10000",
        }
    }

    /// Whether the workload writes: adds rows the planner's statistics of the entity table do
    /// not know of until it is analyzed again.
    pub(crate) fn writes(self) -> bool {
        matches!(
            self,
            Workload::Create | Workload::Update | Workload::BulkImport | Workload::HttpCreate
        )
    }

    /// The number of versions of the entity an `as_of_depth_N` or `latest_depth_N` workload
    /// reads.
    pub(crate) fn depth(self) -> Option<u32> {
        match self {
            Workload::AsOfDepth10 | Workload::LatestDepth10 => Some(10),
            Workload::AsOfDepth1000 | Workload::LatestDepth1000 => Some(1_000),
            Workload::AsOfDepth10000 | Workload::LatestDepth10000 => Some(10_000),
            _ => None,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        if let Some(workload) = Workload::ALL.into_iter().find(|w| w.name() == name) {
            return Ok(workload);
        }
        let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
        Err(Error::Options(format!(
            "no workload {name}; the workloads are {}",
            names.join(", ")
        )))
    }
}

/// What [`crate::run`] measures, and for how long.
///
/// Each (workload, client count) cell warms both sides up, then runs `rounds` rounds of
/// `round` on each side, alternating which side goes first, so drift in the machine's state
/// (cache, checkpoints, autovacuum) falls on both. Many short rounds share it out more evenly
/// than a few long ones: on a virtual disk whose flush latency moves from one second to the
/// next, four runs of nine rounds of 0.5 s spread the write ratios half as wide as four runs
/// of three rounds of 1.5 s (docs/BENCHMARKS.md).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The workloads, in order (default: all of [`Workload::ALL`]).
    pub workloads: Vec<Workload>,
    /// Concurrent clients (tokio tasks) per side; each workload runs at each count (default 1
    /// and 8).
    pub clients: Vec<usize>,
    /// Unmeasured run of each side before the rounds.
    pub warmup: Duration,
    /// Length of one measured run of one side.
    pub round: Duration,
    /// Measured runs per side.
    pub rounds: usize,
    /// Entities of the read workloads (`get_*`, `http_get`, `query*`), each with three versions;
    /// at least 100 for `get_many`, 200 for the queries' pages to be full.
    pub read_set: usize,
    /// A memory soak of this length before the workloads (default none): the in-process HTTP
    /// server under a mixed load from the largest client count, with the process's resident
    /// memory sampled as it runs. With a soak, `workloads` may be empty.
    pub soak: Option<Duration>,
}

impl Default for Options {
    /// The full suite: a few minutes.
    fn default() -> Self {
        Self {
            workloads: Workload::ALL.to_vec(),
            clients: vec![1, 8],
            warmup: Duration::from_millis(500),
            round: Duration::from_millis(500),
            rounds: 9,
            read_set: 1_000,
            soak: None,
        }
    }
}

impl Options {
    /// The suite in under a minute: shorter rounds, a smaller read set.
    pub fn quick() -> Self {
        Self {
            warmup: Duration::from_millis(100),
            round: Duration::from_millis(120),
            rounds: 4,
            read_set: 200,
            ..Self::default()
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::Options(why.to_string()));
        if (self.workloads.is_empty() && self.soak.is_none()) || self.clients.is_empty() {
            return bad("at least one workload (or a soak) and one client count are needed");
        }
        if self.soak.is_some_and(|soak| soak < MIN_SOAK) {
            return bad("a soak lasts at least a second");
        }
        if self.clients.iter().any(|&c| c == 0 || c > MAX_CLIENTS) {
            return bad(&format!("client counts go from 1 to {MAX_CLIENTS}"));
        }
        if self.rounds == 0 || self.round.is_zero() {
            return bad("at least one round of some length is needed");
        }
        if self.read_set < GET_MANY {
            return bad(&format!("the read set needs at least {GET_MANY} entities"));
        }
        let queries = [Workload::Query, Workload::QueryNext];
        if self.read_set < QUERY_READ_SET && self.workloads.iter().any(|w| queries.contains(w)) {
            return bad(&format!(
                "the queries need a read set of at least {QUERY_READ_SET} entities"
            ));
        }
        Ok(())
    }

    /// Connections of each side's pool: one per client and a few spare, so no client waits
    /// for a connection.
    pub(crate) fn pool_size(&self) -> usize {
        self.max_clients() + 2
    }

    /// The largest client count: the clients of the soak.
    pub(crate) fn max_clients(&self) -> usize {
        self.clients.iter().copied().max().unwrap_or(1)
    }

    /// The smallest client count: the clients of the depth comparisons.
    pub(crate) fn min_clients(&self) -> usize {
        self.clients.iter().copied().min().unwrap_or(1)
    }
}

/// The shortest soak: a twentieth of it is the sample interval.
const MIN_SOAK: Duration = Duration::from_secs(1);

/// Most clients per side: each side has a pool of that many connections, and PostgreSQL's
/// default `max_connections` is 100.
pub(crate) const MAX_CLIENTS: usize = 32;

/// Ids per `get_many` call.
pub(crate) const GET_MANY: usize = 100;

/// The smallest read set on which every draw of `query` and `query_next` finds full pages
/// (see [`crate::fixture::query_thresholds`]).
const QUERY_READ_SET: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_missing_workloads_say_why() {
        for workload in Workload::ALL {
            assert_eq!(workload.name().parse::<Workload>().unwrap(), workload);
        }
        let err = "nope".parse::<Workload>().unwrap_err().to_string();
        assert!(err.contains("get_latest"), "{err}");
    }

    #[test]
    fn quick_and_default_options_are_valid() {
        Options::default().check().unwrap();
        Options::quick().check().unwrap();
        let mut options = Options::quick();
        options.clients = vec![0];
        assert!(options.check().is_err());
    }

    #[test]
    fn the_queries_need_a_read_set_that_fills_their_pages() {
        let mut options = Options::quick();
        options.read_set = GET_MANY;
        options.workloads = vec![Workload::GetMany];
        options.check().unwrap();
        options.workloads.push(Workload::QueryNext);
        let err = options.check().unwrap_err().to_string();
        assert!(err.contains("at least 200"), "{err}");
    }

    #[test]
    fn a_soak_may_run_alone_but_not_for_less_than_a_second() {
        let mut options = Options::quick();
        options.workloads.clear();
        assert!(options.check().is_err());
        options.soak = Some(Duration::from_secs(2));
        options.check().unwrap();
        options.soak = Some(Duration::from_millis(500));
        assert!(options.check().is_err());
    }
}
