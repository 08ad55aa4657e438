//! Wake-ups for outbox readers: one `LISTEN` connection per store, fanned out per service.
//!
//! A committing unit of work that writes events sends `NOTIFY vellum_outbox, '<service>'` in its
//! commit pipeline; PostgreSQL delivers it only if the transaction commits. Readers also poll,
//! so a lost connection or notification delays delivery but never loses an event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{StreamExt, stream};
use tokio::{sync::watch, task::JoinHandle};
use tokio_postgres::{AsyncMessage, Config, NoTls};
use tracing::{debug, warn};

/// The channel every commit with events notifies, with the service name as payload.
pub(crate) const CHANNEL: &str = "vellum_outbox";

type Watchers = Arc<Mutex<HashMap<String, watch::Sender<u64>>>>;

/// The store's listener: started on first use, stopped when the store is dropped.
pub(crate) struct Notifier {
    watchers: Watchers,
    task: JoinHandle<()>,
}

impl Notifier {
    pub(crate) fn start(config: Config) -> Self {
        let watchers = Watchers::default();
        let task = tokio::spawn(listen(config, watchers.clone()));
        Self { watchers, task }
    }

    /// A receiver that changes whenever events of `service` may have been committed.
    pub(crate) fn watch(&self, service: &str) -> watch::Receiver<u64> {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(service.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn wake(watchers: &Watchers, service: Option<&str>) {
    let watchers = watchers.lock().unwrap_or_else(|e| e.into_inner());
    let bump = |tx: &watch::Sender<u64>| tx.send_modify(|n| *n = n.wrapping_add(1));
    match service {
        Some(service) => watchers.get(service).into_iter().for_each(bump),
        None => watchers.values().for_each(bump),
    }
}

/// Listens until the store goes away, reconnecting after a pause when the connection fails.
/// Every (re)connection wakes every reader, since notifications may have been missed.
async fn listen(config: Config, watchers: Watchers) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
                let listen = format!("LISTEN {CHANNEL}");
                let ok = {
                    let listening = client.batch_execute(&listen);
                    let mut listening = std::pin::pin!(listening);
                    // The connection must be polled for the LISTEN to complete.
                    loop {
                        tokio::select! {
                            done = &mut listening => break done.is_ok(),
                            message = messages.next() => if message.is_none_or(|m| m.is_err()) { break false },
                        }
                    }
                };
                if ok {
                    debug!("listening for outbox notifications");
                    wake(&watchers, None);
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message
                            && n.channel() == CHANNEL
                        {
                            wake(&watchers, Some(n.payload()));
                        }
                    }
                }
                drop(client);
                warn!("outbox notification connection lost; readers poll until it is back");
            }
            Err(err) => warn!(%err, "cannot open the outbox notification connection"),
        }
        wake(&watchers, None);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
