//! `vellum`, the command line of the vellum document store.

mod args;
mod bench;
mod commands;
mod import;
mod migrate;
mod relay;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;
use vellum::Error;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = cli.workers {
        runtime.worker_threads(usize::from(workers));
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: args::Cli) -> ExitCode {
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
    let (prefix, found) = match err.downcast_ref::<Error>() {
        Some(Error::ImportRefused { document, reason }) => (
            format!("document {document} of the import: "),
            Some(reason.as_ref()),
        ),
        other => (String::new(), other),
    };
    match found {
        Some(Error::Validation {
            schema_id,
            schema_version,
            violations,
        }) => {
            eprintln!(
                "error: {prefix}document does not match schema {schema_id} {schema_version}:"
            );
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
        Some(Error::InvalidMigration {
            schema_id,
            version,
            reason,
            samples,
            ..
        }) => {
            eprintln!(
                "error: {prefix}schema {schema_id} version {version}: migration refused: {reason}"
            );
            for sample in samples {
                for violation in &sample.violations {
                    let pointer = if violation.pointer.is_empty() {
                        "/"
                    } else {
                        &violation.pointer
                    };
                    eprintln!(
                        "  entity {} {}: {pointer}: {} ({})",
                        sample.entity_id,
                        sample.entity_version,
                        violation.message,
                        violation.keyword
                    );
                }
            }
        }
        Some(reason) if !prefix.is_empty() => eprintln!("error: {prefix}{reason}"),
        _ => eprintln!("error: {err:#}"),
    }
}

/// `vellum schema check` or `vellum schema plan` found that the candidate would not go through.
#[derive(Debug)]
pub(crate) enum CheckRefused {
    /// Registration would refuse it (exit code 4, like a refused registration).
    Registration(Vec<String>),
    /// It would refuse current documents (exit code 5, like an invalid document).
    Documents(u64),
    /// The plan has drift or a version registration would refuse (exit code 4).
    Plan,
    /// A migration run left entities it could not migrate (exit code 5).
    Migration(u64),
}

impl CheckRefused {
    pub(crate) fn from_report(report: &vellum::CheckReport) -> Option<Self> {
        if !report.registration_problems.is_empty() {
            Some(Self::Registration(report.registration_problems.clone()))
        } else if report.documents_failing > 0 {
            Some(Self::Documents(report.documents_failing))
        } else {
            None
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Self::Registration(_) | Self::Plan => 4,
            Self::Documents(_) | Self::Migration(_) => 5,
        }
    }
}

impl std::fmt::Display for CheckRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registration(problems) => {
                write!(f, "registration would refuse it: {}", problems.join("; "))
            }
            Self::Documents(failing) => write!(
                f,
                "{failing} current document(s) do not match it (see the samples in the report)"
            ),
            Self::Migration(failed) => write!(
                f,
                "{failed} entities could not be migrated and were left untouched (see the samples \
                 in the report)"
            ),
            Self::Plan => write!(
                f,
                "the plan cannot be applied: see its drift and the problems of its new versions"
            ),
        }
    }
}

impl std::error::Error for CheckRefused {}

fn exit_code(err: &anyhow::Error) -> ExitCode {
    if let Some(refused) = err.downcast_ref::<CheckRefused>() {
        return ExitCode::from(refused.exit_code());
    }
    let code = match err.downcast_ref::<Error>() {
        Some(Error::NotFound { .. }) => 3,
        Some(
            Error::VersionConflict { .. }
            | Error::AlreadyExists { .. }
            | Error::NotAllowed(_)
            | Error::UnitOfWorkFailed { .. }
            | Error::Immutable(_)
            | Error::IncompatibleSchema { .. }
            | Error::UniqueViolation { .. }
            | Error::NotConvertible { .. },
        ) => 4,
        Some(
            Error::Validation { .. }
            | Error::InvalidInput(_)
            | Error::InvalidSchema(_)
            | Error::InvalidReference { .. }
            | Error::InvalidQuery { .. }
            | Error::InvalidMigration { .. }
            | Error::ImportRefused { .. },
        ) => 5,
        _ if err.downcast_ref::<serde_json::Error>().is_some() => 5,
        _ => 1,
    };
    ExitCode::from(code)
}
