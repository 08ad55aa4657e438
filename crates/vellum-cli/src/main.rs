//! `vellum`, the command line of the vellum document store.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use vellum::Error;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VELLUM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = args::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            exit_code(&err)
        }
    }
}

/// Prints an error to stderr: the message with its causes, and every violation of an invalid
/// document on its own line.
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
            | Error::Immutable(_),
        ) => 4,
        Some(Error::Validation { .. } | Error::InvalidInput(_) | Error::InvalidSchema(_)) => 5,
        _ if err.downcast_ref::<serde_json::Error>().is_some() => 5,
        _ => 1,
    };
    ExitCode::from(code)
}
