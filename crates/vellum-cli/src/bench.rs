//! `vellum bench`: the harness of `vellum-bench` on the embedded cluster or `DATABASE_URL`.

use std::{path::Path, time::Duration};

use anyhow::Context;
use vellum::EmbeddedCluster;
use vellum_bench::Options;

use crate::args::BenchArgs;

/// Runs the benchmark suite (or the `--soak` alone) and prints the table, or the JSON report
/// with `--json`.
pub(crate) async fn bench(
    database_url: Option<&str>,
    data_dir: &Path,
    args: BenchArgs,
) -> anyhow::Result<()> {
    let mut options = if args.quick {
        Options::quick()
    } else {
        Options::default()
    };
    if let Some(seconds) = args.soak {
        options.soak = Some(Duration::from_secs(seconds));
        // `--soak` without `--workload` runs the soak alone, not the whole suite as well.
        options.workloads.clear();
    }
    if !args.workloads.is_empty() {
        options.workloads = args.workloads;
    }
    options.clients = args.clients.into_iter().map(usize::from).collect();
    if let Some(rounds) = args.rounds {
        options.rounds = usize::from(rounds);
    }
    if let Some(ms) = args.round_ms {
        options.round = Duration::from_millis(ms);
    }

    // The harness creates (and drops) a database of its own next to the one configured; an
    // embedded cluster this command starts stops when `cluster` drops, after the report.
    let (admin, cluster) = match database_url {
        Some(url) => {
            let config = url
                .parse()
                .context("--database-url / DATABASE_URL is not a valid PostgreSQL URL")?;
            (config, None)
        }
        None => {
            let running = EmbeddedCluster::new(data_dir).start().await?;
            (running.config(), Some(running))
        }
    };
    let report = vellum_bench::run(admin, &options).await?;
    drop(cluster);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
