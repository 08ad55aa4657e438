//! `vellum migrate run`: the eager migration job with a progress bar on a terminal.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use vellum::{MigrationJobOptions, MigrationReport, SchemaId, Service, Version};

/// Runs the migration, showing entities done out of those pending at the start, with rate and
/// ETA, when standard error is a terminal.
pub(crate) async fn run(
    service: &Service,
    schema_id: &SchemaId,
    to: Version,
    options: MigrationJobOptions,
) -> anyhow::Result<MigrationReport> {
    let registry = service.schemas();
    let pending = registry.pending_migration(schema_id, to).await?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(pending).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} entities {per_sec} ETA {eta} {msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let dry_run = options.dry_run;
    let report = registry
        .migrate_entities(schema_id, to, options, |progress| {
            bar.set_position(progress.migrated + progress.failed);
            if progress.failed > 0 {
                bar.set_message(format!("{} failed", progress.failed));
            }
        })
        .await;
    match &report {
        Ok(report) => bar.finish_with_message(format!(
            "{} {}, {} failed",
            report.migrated,
            if dry_run {
                "would be migrated"
            } else {
                "migrated"
            },
            report.failed
        )),
        Err(_) => bar.abandon_with_message("stopped: run it again to resume"),
    }
    Ok(report?)
}
