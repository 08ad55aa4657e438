//! Running clients concurrently for a while, and comparing the two sides of a workload.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::{
    Error, Options, Result,
    fixture::Fixture,
    process,
    stats::{self, Samples},
};

/// One client of a workload: a tokio task calls [`op`](Self::op) in a loop. It owns whatever
/// state it keeps between operations (its random generator, the versions it last wrote).
pub(crate) trait Client: Send + 'static {
    /// One operation; an error stops the run.
    fn op(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// Both sides of one cell, measured.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) vellum: Samples,
    pub(crate) baseline: Samples,
    /// CPU time of this process during vellum's measured rounds.
    pub(crate) vellum_cpu: Duration,
    /// The time the store's units of work spent validating documents in those rounds (wall
    /// time around each check, as `UowStats::validation_time` counts it).
    pub(crate) vellum_validation: Duration,
    /// CPU time of the PostgreSQL server's processes during vellum's measured rounds, when
    /// it runs on this machine.
    pub(crate) vellum_server_cpu: Option<Duration>,
    /// vellum's throughput over the baseline's in each round (the two runs of one round, side
    /// by side), for the spread of the ratio; rounds where the baseline did nothing are left
    /// out.
    pub(crate) round_ratios: Vec<f64>,
}

/// Warms both sides up, then runs `options.rounds` measured rounds of each, alternating which
/// goes first so neither always runs on a cache or a checkpoint the other left behind. The
/// store's validation time and the server's CPU time are read around vellum's rounds.
pub(crate) async fn compare<V: Client, B: Client>(
    mut vellum: Vec<V>,
    mut baseline: Vec<B>,
    fixture: &Fixture,
    options: &Options,
) -> Result<Comparison> {
    let mut comparison = Comparison::default();
    (vellum, _) = run_for(vellum, options.warmup).await?;
    (baseline, _) = run_for(baseline, options.warmup).await?;
    for round in 0..options.rounds {
        let (vellum_round, baseline_round);
        if round % 2 == 0 {
            (vellum, vellum_round) = run_vellum(vellum, fixture, options, &mut comparison).await?;
            (baseline, baseline_round) = run_for(baseline, options.round).await?;
        } else {
            (baseline, baseline_round) = run_for(baseline, options.round).await?;
            (vellum, vellum_round) = run_vellum(vellum, fixture, options, &mut comparison).await?;
        }
        comparison.round_ratios.extend(stats::ratio(
            vellum_round.ops_per_second(),
            baseline_round.ops_per_second(),
        ));
        comparison.vellum.merge(vellum_round);
        comparison.baseline.merge(baseline_round);
    }
    Ok(comparison)
}

/// One measured round of vellum's side, adding the process's CPU time, the store's validation
/// time and the server's CPU time over it to `comparison`.
async fn run_vellum<V: Client>(
    vellum: Vec<V>,
    fixture: &Fixture,
    options: &Options,
    comparison: &mut Comparison,
) -> Result<(Vec<V>, Samples)> {
    // Read first and last, so that reading it is not in the process's CPU time of the round.
    let server_before = fixture.server.map(|server| server.cpu_times());
    let cpu_before = process::cpu_time()?;
    let validation_before = fixture.store.uow_stats().validation_time;
    let (vellum, samples) = run_for(vellum, options.round).await?;
    comparison.vellum_cpu += process::cpu_time()?.saturating_sub(cpu_before);
    comparison.vellum_validation += fixture
        .store
        .uow_stats()
        .validation_time
        .saturating_sub(validation_before);
    if let (Some(server), Some(before)) = (fixture.server, server_before) {
        let spent = server.cpu_times().since(&before);
        *comparison.vellum_server_cpu.get_or_insert_default() += spent;
    }
    Ok((vellum, samples))
}

/// Runs every client in its own task until `duration` has passed; each finishes the operation
/// it is in. Returns the clients, for the next run, and what they did.
async fn run_for<C: Client>(clients: Vec<C>, duration: Duration) -> Result<(Vec<C>, Samples)> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let start = Instant::now();
                    if start >= deadline {
                        break;
                    }
                    client.op().await?;
                    latencies.push(start.elapsed());
                }
                Ok::<_, Error>((client, latencies))
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(tasks.len());
    let mut latencies = Vec::new();
    for task in tasks {
        let (client, done) = task
            .await
            .map_err(|e| Error::Check(format!("a client task failed: {e}")))??;
        clients.push(client);
        latencies.extend(done);
    }
    Ok((clients, Samples::new(latencies, started.elapsed())))
}
