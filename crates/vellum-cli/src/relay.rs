//! `vellum relay`, and the relays `vellum serve` runs: one `OutboxRelay` per service.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use tokio::{sync::watch, task::JoinSet};
use vellum::{OutboxRelay, RelayOptions, RelayStatus, ServiceName, Store, async_nats};

use crate::args::RelayArgs;

/// How often the set of services is looked at again, for new ones.
const RESCAN: Duration = Duration::from_secs(10);

/// `vellum relay`: relays until SIGINT or SIGTERM, logging each service's status.
pub(crate) async fn relay(store: Store, args: RelayArgs) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let interval = Duration::from_secs(args.status_interval);
    run(
        store,
        &args.nats_url,
        args.services,
        stopped,
        Some(interval),
        |_, _| {},
    )
    .await
}

/// Runs a relay for every service (or only `only`), picking up new services, until `stopped`
/// turns true; `track` is told of each relay's status as it starts. With `log_every`, logs each
/// service's lag that often.
pub(crate) async fn run(
    store: Store,
    nats_url: &str,
    only: Vec<ServiceName>,
    stopped: watch::Receiver<bool>,
    log_every: Option<Duration>,
    track: impl Fn(&ServiceName, watch::Receiver<RelayStatus>),
) -> anyhow::Result<()> {
    let nats = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    tracing::info!(nats_url, "outbox relay started");
    let mut relays: HashMap<ServiceName, watch::Receiver<RelayStatus>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut log_tick = tokio::time::interval(log_every.unwrap_or(Duration::from_secs(3600)));
    let mut rescan = tokio::time::interval(RESCAN);
    let mut stopping = stopped.clone();
    loop {
        tokio::select! {
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => break,
            _ = rescan.tick() => {
                let services = match store.services().await {
                    Ok(services) => services,
                    Err(err) => {
                        tracing::warn!(%err, "listing services for the relay");
                        continue;
                    }
                };
                for info in services {
                    if relays.contains_key(&info.name) || (!only.is_empty() && !only.contains(&info.name)) {
                        continue;
                    }
                    let service = store.service(&info.name).await?;
                    let relay = OutboxRelay::new(service, nats.clone(), RelayOptions::default());
                    let status = relay.status();
                    track(&info.name, status.clone());
                    relays.insert(info.name.clone(), status);
                    let mut stop = stopped.clone();
                    tasks.spawn(async move {
                        relay.run(async move { let _ = stop.wait_for(|s| *s).await; }).await
                    });
                    tracing::info!(service = %info.name, "relay started");
                }
            }
            _ = log_tick.tick(), if log_every.is_some() => {
                for (service, status) in &relays {
                    let s = status.borrow();
                    tracing::info!(
                        %service,
                        leader = s.leader,
                        checkpoint = s.checkpoint.unwrap_or(0),
                        published = s.published,
                        duplicates = s.duplicates,
                        lag_events = s.lag_events,
                        lag_seconds = s.lag_seconds,
                        last_error = s.last_error.as_deref().unwrap_or(""),
                        "relay status"
                    );
                }
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    tracing::info!("outbox relay stopped");
    Ok(())
}
