//! `vellum serve`: the HTTP API until SIGINT or SIGTERM.

use std::path::Path;

use anyhow::Context;
use vellum::Store;
use vellum_server::{AdminTokenSource, AppState, Limits};

use crate::args::ServeArgs;

pub(crate) async fn serve(store: Store, data_dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let admin = vellum_server::admin_token(std::env::var("VELLUM_ADMIN_TOKEN").ok(), data_dir)
        .with_context(|| format!("setting up the admin token in {}", data_dir.display()))?;
    match &admin {
        AdminTokenSource::Configured(_) => eprintln!("admin token: from VELLUM_ADMIN_TOKEN"),
        AdminTokenSource::File(_, path) => eprintln!("admin token: in {}", path.display()),
        AdminTokenSource::Generated(_, path) => eprintln!(
            "admin token: generated, written to {} (mode 0600)",
            path.display()
        ),
    }
    let mut limits = Limits::default();
    limits.max_body_bytes = args.max_body_bytes;
    limits.max_json_depth = usize::from(args.max_json_depth);
    limits.request_timeout = std::time::Duration::from_secs(args.request_timeout);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "vellum listening on http://{} (docs at /docs)",
        listener.local_addr()?
    );
    vellum_server::serve(
        listener,
        AppState::new(store, admin.token(), limits),
        shutdown_signal(),
    )
    .await?;
    eprintln!("vellum stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
