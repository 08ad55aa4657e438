//! `vellum`, the command line of the vellum document store.

mod args;
mod bench;
mod commands;
mod relay;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;
use vellum::Error;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let telemetry = telemetry::init(&cli);
    let code = match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            exit_code(&err)
        }
    };
    drop(telemetry);
    code
}

/// Prints an error to stderr: the message with its causes, every violation of an invalid
/// document on its own line, and every change of an incompatible schema version.
fn report(err: &anyhow::Error) {
    match err.downcast_ref::<Error>() {
        Some(Error::Validation {
            schema_id,
            schema_version,
            violations,
        }) => {
            eprintln!("error: document does not match schema {schema_id} {schema_version}:");
            for violation in violations {
                let pointer = if violation.pointer.is_empty() {
                    "/"
                } else {
                    &violation.pointer
                };
                eprintln!("  {pointer}: {} ({})", violation.message, violation.keyword);
            }
        }
        Some(Error::IncompatibleSchema {
            schema_id,
            version,
            against,
            mode,
            reason,
            changes,
            ..
        }) => {
            eprintln!(
                "error: schema {schema_id} version {version} is incompatible with {against} \
                 (compatibility mode {mode}): {reason}:"
            );
            for change in changes {
                eprintln!("  {change}");
            }
        }
        _ => eprintln!("error: {err:#}"),
    }
}

fn exit_code(err: &anyhow::Error) -> ExitCode {
    let code = match err.downcast_ref::<Error>() {
        Some(Error::NotFound { .. }) => 3,
        Some(
            Error::VersionConflict { .. }
            | Error::AlreadyExists { .. }
            | Error::NotAllowed(_)
            | Error::UnitOfWorkFailed { .. }
            | Error::Immutable(_)
            | Error::IncompatibleSchema { .. },
        ) => 4,
        Some(Error::Validation { .. } | Error::InvalidInput(_) | Error::InvalidSchema(_)) => 5,
        _ if err.downcast_ref::<serde_json::Error>().is_some() => 5,
        _ => 1,
    };
    ExitCode::from(code)
}
