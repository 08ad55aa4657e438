//! `vellum serve`: the HTTP API until SIGINT or SIGTERM.

use std::path::Path;

use anyhow::Context;
use tokio::sync::watch;
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
    let state = AppState::new(store.clone(), admin.token(), limits);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let relays = match (&args.nats_url, args.no_relay) {
        (Some(url), false) => {
            let (url, stopped, state) = (url.clone(), stopped.clone(), state.clone());
            eprintln!("outbox relay: publishing to NATS at {url}");
            Some(tokio::spawn(async move {
                crate::relay::run(store, &url, Vec::new(), stopped, None, |service, status| {
                    state.track_relay(service.clone(), status)
                })
                .await
            }))
        }
        (None, false) => {
            eprintln!(
                "outbox relay: off (no --nats-url / VELLUM_NATS_URL); the event feed and stream work without it"
            );
            None
        }
        (_, true) => {
            eprintln!("outbox relay: off (--no-relay)");
            None
        }
    };
    eprintln!(
        "vellum listening on http://{} (docs at /docs)",
        listener.local_addr()?
    );
    eprintln!(
        "worker threads: {} (--workers, VELLUM_WORKERS)",
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    let mut server_stop = stopped;
    vellum_server::serve(listener, state, async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    })
    .await?;
    if let Some(relays) = relays {
        relays.await??;
    }
    eprintln!("vellum stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
