//! The memory soak: the in-process HTTP server under a steady mixed load for a while, with the
//! resident memory of the process sampled as it runs.
//!
//! The clients keep no record per operation (only a shared counter), so the load generator's
//! own memory does not grow with the length of the run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::task::JoinHandle;

use crate::{
    Error, Result, Workload,
    document::SEED,
    driver::Client,
    fixture::{Fixture, query_thresholds},
    http::{HttpCreate, HttpGet, HttpQuery, HttpUpdate},
    memory::{RssSample, SoakResult, sample_interval},
    process,
};

/// The mix, in percent of operations: reads by id dominate, as for most services; the writes
/// commit (so PostgreSQL's fsync sets their pace) and the queries answer 50 documents each.
const GET_PERCENT: u32 = 80;
const CREATE_PERCENT: u32 = 10;
const UPDATE_PERCENT: u32 = 8;

/// Seeds the soak's random generators apart from the workloads'.
const SOAK_STREAM: u64 = 0x50a6 << 48;

/// One client of the soak: an HTTP client of each kind, and the draw that picks between them.
struct SoakClient {
    get: HttpGet,
    create: HttpCreate,
    update: HttpUpdate,
    query: HttpQuery,
    mix: StdRng,
}

impl Client for SoakClient {
    async fn op(&mut self) -> Result<()> {
        let draw = self.mix.random_range(0..100);
        if draw < GET_PERCENT {
            self.get.op().await
        } else if draw < GET_PERCENT + CREATE_PERCENT {
            self.create.op().await
        } else if draw < GET_PERCENT + CREATE_PERCENT + UPDATE_PERCENT {
            self.update.op().await
        } else {
            self.query.op().await
        }
    }
}

/// Runs the soak for `duration` with `clients` clients and judges its memory. Any failed or
/// unexpected answer stops it with that error.
pub(crate) async fn run(
    fixture: &Fixture,
    duration: Duration,
    clients: usize,
) -> Result<SoakResult> {
    let target = fixture.http_target()?;
    let set = fixture.reads(Workload::HttpGet)?;
    let thresholds = Arc::new(query_thresholds(&fixture.documents, 1));
    let rng = |i: usize, stream: u64| StdRng::seed_from_u64(SEED ^ SOAK_STREAM ^ stream ^ i as u64);
    let soak_clients: Vec<SoakClient> = fixture
        .update_set(clients)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, entities)| SoakClient {
            get: HttpGet {
                target: target.clone(),
                set: set.clone(),
                rng: rng(i, 1 << 32),
            },
            create: HttpCreate {
                target: target.clone(),
                documents: fixture.documents.clone(),
                next: i * 7,
            },
            update: HttpUpdate {
                target: target.clone(),
                documents: fixture.documents.clone(),
                entities,
                next: i * 7,
            },
            query: HttpQuery {
                target: target.clone(),
                thresholds: thresholds.clone(),
                rng: rng(i, 2 << 32),
            },
            mix: rng(i, 3 << 32),
        })
        .collect();

    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<JoinHandle<Result<()>>> = soak_clients
        .into_iter()
        .map(|mut client| {
            let (ops, stop) = (ops.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    client.op().await?;
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();

    let sampled = sample(started, deadline, sample_interval(duration), &ops, &tasks).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = None;
    for task in tasks {
        let outcome = match task.await {
            Ok(done) => done,
            Err(err) => Err(Error::Check(format!("a soak client task failed: {err}"))),
        };
        if let Err(err) = outcome {
            failed.get_or_insert(err);
        }
    }
    let elapsed = started.elapsed();
    let samples = sampled?;
    if let Some(err) = failed {
        return Err(err);
    }
    SoakResult::new(
        duration.as_secs_f64(),
        clients,
        ops.load(Ordering::Relaxed),
        elapsed,
        samples,
    )
}

/// Samples RSS and the operation count at the start, every `interval` and at `deadline`;
/// stops early when a client stops, which before the deadline means it failed.
async fn sample(
    started: Instant,
    deadline: Instant,
    interval: Duration,
    ops: &AtomicU64,
    tasks: &[JoinHandle<Result<()>>],
) -> Result<Vec<RssSample>> {
    let mut samples = Vec::new();
    let mut next = started;
    loop {
        tokio::time::sleep_until(next.into()).await;
        // At the deadline clients stop on their own.
        if next < deadline && tasks.iter().any(JoinHandle::is_finished) {
            break;
        }
        let rss = process::rss_mib().ok_or_else(|| {
            Error::Check("the soak needs /proc/self/status to read resident memory".into())
        })?;
        let sample = RssSample::new(started.elapsed(), rss, ops.load(Ordering::Relaxed));
        if samples.len() % 12 == 0 {
            eprintln!(
                "soak: {:.0} s, RSS {} MiB, {} operations",
                sample.t_s, sample.rss_mib, sample.ops
            );
        }
        samples.push(sample);
        if next >= deadline {
            break;
        }
        // A sampler that fell behind (a busy machine) waits a whole interval, not a burst.
        next = (next + interval).max(Instant::now()).min(deadline);
    }
    Ok(samples)
}
