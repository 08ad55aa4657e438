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
    let json = args.json;
    let options = options(args);

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
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// What the command line asks the harness to run.
fn options(args: BenchArgs) -> Options {
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
    options
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn parsed(args: &[&str]) -> Result<Options, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Bench(args) = cli.command else {
            panic!("parsed as bench")
        };
        Ok(options(args))
    }

    #[test]
    fn rounds_and_their_length_come_from_the_command_line_or_the_suite() {
        let full = parsed(&["vellum", "bench"]).unwrap();
        let suite = Options::default();
        assert_eq!((full.rounds, full.round), (suite.rounds, suite.round));

        let quick = parsed(&["vellum", "bench", "--quick", "--rounds", "6"]).unwrap();
        assert_eq!(quick.rounds, 6);
        assert_eq!(quick.round, Options::quick().round);
        assert_eq!(quick.warmup, Options::quick().warmup);

        let long = parsed(&["vellum", "bench", "--round-ms", "2000", "--clients", "2"]).unwrap();
        assert_eq!(long.round, Duration::from_secs(2));
        assert_eq!(long.rounds, suite.rounds);
        assert_eq!(long.clients, [2]);

        for args in [
            &["vellum", "bench", "--rounds", "0"][..],
            &["vellum", "bench", "--round-ms", "50"],
        ] {
            let err = parsed(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
    }
}
