//! Logs and traces: log lines on stderr, and OpenTelemetry traces over OTLP (HTTP/protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Spans leave the process in batches from a thread of
//! their own: tracing never takes part in a transaction, nor waits for the collector.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::args::{self, LogFormat};

/// Flushes the traces still buffered when it is dropped (at the end of `main`).
pub(crate) struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("exporting the last traces: {err}");
        }
    }
}

/// Logs to stderr, filtered by `VELLUM_LOG` (default: info for `serve` and `relay`, warn
/// otherwise); with `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://127.0.0.1:4318`), also exports
/// the spans (every unit of work's `commit` span with its `uow_id`, service and actor; every
/// request) as OpenTelemetry traces of service `vellum` (or `OTEL_SERVICE_NAME`).
pub(crate) fn init(cli: &args::Cli) -> Telemetry {
    // tokio_postgres logs server NOTICEs at info: keep them out unless asked for.
    let default = if matches!(
        cli.command,
        args::Command::Serve(_) | args::Command::Relay(_)
    ) {
        "info,tokio_postgres=warn"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("VELLUM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let lines = match cli.log_format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    let traces = otlp_traces();
    let export = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("vellum"))
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(export)
        .init();
    Telemetry { traces }
}

fn otlp_traces() -> Option<SdkTracerProvider> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.is_empty())?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT is set, but traces cannot be exported: {err}");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "vellum".into());
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build(),
    )
}
