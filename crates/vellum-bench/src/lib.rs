//! # vellum-bench
//!
//! The benchmark harness behind `vellum bench`: each workload runs twice in one process against
//! the same PostgreSQL, through vellum and through a hand-written SQL baseline (tokio-postgres,
//! prepared statements) that does the same durable work, and the result is the ratio of the two.
//! Absolute numbers depend on the machine; the ratios are what the targets of issue 7 are about.
//!
//! [`run`] creates a fresh database (or, without the right to create one, a service with a
//! unique name), loads it, runs the memory soak if [`Options::soak`] asks for one, runs the
//! selected [`Workload`]s at each client count (and, when both `as_of_depth_10` and
//! `as_of_depth_10000` are selected, the two depths against each other in the same rounds; the
//! same for `latest_depth_10` and `latest_depth_10000`), drops the database and returns a
//! [`Report`]:
//!
//! ```no_run
//! # async fn bench(admin: tokio_postgres::Config) -> vellum_bench::Result<()> {
//! let mut options = vellum_bench::Options::quick();
//! options.workloads = vec![vellum_bench::Workload::GetLatest];
//! let report = vellum_bench::run(admin, &options).await?;
//! println!("{}", report.table());
//! # Ok(())
//! # }
//! ```
//!
//! The method, the baselines and the last results are in `docs/BENCHMARKS.md`.

mod baseline;
mod database;
mod document;
mod driver;
mod error;
mod fixture;
mod http;
mod memory;
mod options;
mod process;
mod report;
mod soak;
mod stats;
mod workloads;

use std::time::{Duration, Instant};

pub use error::{Error, Result};
pub use memory::{RssSample, SoakResult};
pub use options::{IMPORT_BATCH, Options, Workload};
pub use report::{DepthCost, Report, Status, Target, ValidationCost, WorkloadResult};

/// Runs the soak, if asked for, and the selected workloads at each client count, and reports
/// vellum against the baseline.
///
/// `admin` is a PostgreSQL the harness may create a database on (the embedded cluster, or
/// `DATABASE_URL`); the database is dropped at the end, whether the run succeeded or not.
/// Progress goes to stderr.
pub async fn run(admin: tokio_postgres::Config, options: &Options) -> Result<Report> {
    options.check()?;
    let database = database::BenchDatabase::open(&admin).await?;
    let outcome = suite(&database, options).await;
    let closed = database.close().await;
    let report = outcome?;
    closed?;
    Ok(report)
}

async fn suite(database: &database::BenchDatabase, options: &Options) -> Result<Report> {
    let started = Instant::now();
    let fixture = fixture::Fixture::load(database, options).await?;
    // The soak runs first, on a process the workloads have not churned yet.
    let soak = match options.soak {
        Some(duration) => {
            let clients = options.max_clients();
            eprintln!(
                "soak: {:.0} s with {clients} HTTP client{}",
                duration.as_secs_f64(),
                if clients == 1 { "" } else { "s" },
            );
            Some(soak::run(&fixture, duration, clients).await?)
        }
        None => None,
    };
    let cells = options.workloads.len() * options.clients.len();
    let mut results = Vec::with_capacity(cells);
    let mut create_cost = stats::WriteCost::default();
    let mut written = false;
    for workload in &options.workloads {
        // Reads are planned on statistics that know the rows the cells before them wrote, as
        // autovacuum's would a minute later; a short suite runs its reads before autovacuum
        // gets there, and on statistics of a table a tenth of its size both sides read pages
        // of 50 by sorting every matching row.
        if written && !workload.writes() {
            eprintln!("analyzing the entity table after the writes");
            fixture.raw.analyze().await?;
            written = false;
        }
        written |= workload.writes();
        for &clients in &options.clients {
            eprintln!(
                "[{}/{cells}] {} with {clients} client{} ({:.0} s elapsed)",
                results.len() + 1,
                workload.name(),
                if clients == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64(),
            );
            let comparison = workloads::run(*workload, clients, &fixture, options).await?;
            if *workload == Workload::Create {
                create_cost.add(
                    comparison.vellum_cpu,
                    comparison.vellum_validation,
                    comparison.vellum_server_cpu,
                    comparison.vellum.ops(),
                );
            }
            results.push(WorkloadResult::new(*workload, clients, &comparison));
        }
    }
    let as_of_depth = depth_cost(
        &fixture,
        "as-of",
        (Workload::AsOfDepth10000, Workload::AsOfDepth10),
        options,
    )
    .await?;
    let latest_depth = depth_cost(
        &fixture,
        "latest",
        (Workload::LatestDepth10000, Workload::LatestDepth10),
        options,
    )
    .await?;
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    let validation = create_cost.per_op().map(|cost| ValidationCost {
        validate_us: micros(cost.validation),
        write_cpu_us: micros(cost.cpu),
        server_cpu_us: cost.server_cpu.map(micros),
    });
    fixture.close().await;
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(Report {
        workloads: results,
        peak_rss_mib: process::peak_rss_mib(),
        validation,
        as_of_depth,
        latest_depth,
        soak,
    })
}

/// Vellum's `read` reads of the `deep` workload's history against those of the `shallow`
/// one's, round by round at the smallest client count, when both workloads were selected.
async fn depth_cost(
    fixture: &fixture::Fixture,
    read: &str,
    (deep, shallow): (Workload, Workload),
    options: &Options,
) -> Result<Option<DepthCost>> {
    if !(options.workloads.contains(&deep) && options.workloads.contains(&shallow)) {
        return Ok(None);
    }
    let clients = options.min_clients();
    eprintln!(
        "[depth] {read} reads on {deep} against {shallow}, round by round, with {clients} client{}",
        if clients == 1 { "" } else { "s" },
    );
    let comparison = workloads::depth(fixture, deep, shallow, clients, options).await?;
    Ok(DepthCost::new(clients, &comparison))
}
