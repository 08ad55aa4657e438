//! The outbox relay: publishes a service's committed events to NATS JetStream, in feed order,
//! at least once, advancing its checkpoint only after JetStream acknowledged them.
//!
//! One relay per service leads at a time: the leader holds a session-level advisory lock on a
//! connection of its own, so a relay that crashes (or loses its connection) gives leadership
//! up with it, and a standby takes over from the last checkpoint. The checkpoint is the
//! `(txid, position)` of the last acknowledged event, written on the leader's connection, so
//! only the lock holder can move it.

use std::{future::Future, time::Duration};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use tokio::{sync::watch, time::Instant};
use tokio_postgres::{Client, NoTls};
use tracing::{debug, info, warn};

use super::{FeedCursor, OutboxEvent};
use crate::{Error, Result, Service};

/// First key of the relay leader lock ('VREL'); the second is the service's lock key.
const RELAY_LOCK_CLASS: i32 = 0x5652_454c;

/// Settings of an [`OutboxRelay`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayOptions {
    /// Most events published per batch (default 256).
    pub batch_size: usize,
    /// How long the leader waits for a commit notification before reading the outbox anyway
    /// (default 5 s).
    pub poll_interval: Duration,
    /// How often a standby relay tries to become the leader, on the connection it keeps for that
    /// (default 1 s).
    pub standby_interval: Duration,
    /// The pause after a failure (database or NATS) before the relay tries again (default 1 s).
    pub retry_interval: Duration,
    /// The JetStream de-duplication window of the service's stream (default 2 min): a message
    /// id published again within it is stored once.
    pub duplicate_window: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_secs(5),
            standby_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(1),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// What a relay has done, as its [`OutboxRelay::status`] reports it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RelayStatus {
    /// Whether this relay holds the service's leader lock.
    pub leader: bool,
    /// The position of the last event JetStream acknowledged (the checkpoint), if any.
    pub checkpoint: Option<i64>,
    /// Events this relay published and JetStream acknowledged.
    pub published: u64,
    /// Of those, how many JetStream reported as duplicates (already stored under that id).
    pub duplicates: u64,
    /// Committed events after the checkpoint, as of the last look.
    pub lag_events: i64,
    /// Age of the oldest of them, in seconds (0 when there are none).
    pub lag_seconds: f64,
    /// How long the last batch took from first publish to last acknowledgement, in seconds.
    pub last_batch_seconds: f64,
    /// The last failure, until the next success.
    pub last_error: Option<String>,
}

/// Publishes one service's outbox to NATS JetStream: stream `VELLUM_<SERVICE>`, subjects
/// `vellum.<service>.<aggregate_type>.<event_type>`, the event id as `Nats-Msg-Id`, the
/// [`CloudEvent`](super::CloudEvent) JSON as body.
///
/// ```no_run
/// # async fn relay(service: vellum::Service) -> vellum::Result<()> {
/// let nats = async_nats::connect("127.0.0.1:4222").await.expect("NATS");
/// let relay = vellum::OutboxRelay::new(service, nats, vellum::RelayOptions::default());
/// relay.run(tokio::signal::ctrl_c()).await
/// # }
/// ```
pub struct OutboxRelay {
    service: Service,
    jetstream: jetstream::Context,
    options: RelayOptions,
    status: watch::Sender<RelayStatus>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("service", &self.service.name)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay for `service` publishing through `nats`.
    pub fn new(service: Service, nats: async_nats::Client, options: RelayOptions) -> Self {
        Self {
            service,
            jetstream: jetstream::new(nats),
            options,
            status: watch::channel(RelayStatus::default()).0,
        }
    }

    /// The JetStream stream of a service: `VELLUM_<SERVICE>`.
    pub fn stream_name(service: &vellum_core::ServiceName) -> String {
        format!("VELLUM_{}", service.as_str().to_ascii_uppercase())
    }

    /// Follows the relay's progress.
    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes: leads when it can, stands by otherwise, and retries
    /// after failures. Cancel-safe: stopping mid-batch loses nothing, since the checkpoint moves
    /// only after the acknowledgements, and what is published again is de-duplicated by id.
    pub async fn run(&self, shutdown: impl Future) -> Result<()> {
        tokio::select! {
            _ = shutdown => {}
            () = self.run_forever() => {}
        }
        self.status.send_modify(|s| s.leader = false);
        Ok(())
    }

    async fn run_forever(&self) {
        loop {
            if let Err(err) = self.lead().await {
                warn!(service = %self.service.name, %err, "outbox relay failed; retrying");
                self.status.send_modify(|s| {
                    s.leader = false;
                    s.last_error = Some(err.to_string());
                });
            }
            tokio::time::sleep(self.options.retry_interval).await;
        }
    }

    /// Stands by until it gets the lock, then leads while the lock and the connections hold.
    /// Returns only on failure; the connection (and with it the lock) is closed then.
    async fn lead(&self) -> Result<()> {
        let (client, connection) = self.service.store.config().connect(NoTls).await?;
        let connection = AbortOnDrop(tokio::spawn(connection));
        loop {
            let locked: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&RELAY_LOCK_CLASS, &self.service.lock_key],
                )
                .await?
                .get(0);
            if locked {
                break;
            }
            self.status.send_modify(|s| s.leader = false);
            tokio::time::sleep(self.options.standby_interval).await;
        }
        info!(service = %self.service.name, "outbox relay leads");
        self.status.send_modify(|s| s.leader = true);
        self.ensure_stream().await?;
        let mut cursor = self.load_checkpoint(&client).await?;
        let mut wakeups = self
            .service
            .store
            .notifier()
            .watch(self.service.name.as_str());
        loop {
            if connection.0.is_finished() {
                return Err(Error::Relay("the leader connection was lost".into()));
            }
            wakeups.borrow_and_update();
            let events = self
                .service
                .events_after(cursor, self.options.batch_size)
                .await?;
            if let Some(last) = events.last().map(OutboxEvent::cursor) {
                self.publish(&events).await?;
                self.save_checkpoint(&client, last, events.len()).await?;
                cursor = last;
            }
            self.update_lag(&client, cursor).await?;
            if events.len() < self.options.batch_size {
                let _ = tokio::time::timeout(self.options.poll_interval, wakeups.changed()).await;
            }
        }
    }

    async fn ensure_stream(&self) -> Result<()> {
        let name = Self::stream_name(&self.service.name);
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("vellum.{}.>", self.service.name)],
                duplicate_window: self.options.duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Relay(format!("creating JetStream stream {name}: {e}")))?;
        Ok(())
    }

    /// Publishes a batch in order, then waits for every acknowledgement.
    ///
    /// Each message after the first names its predecessor as the stream's expected last
    /// message id, so if one is lost on the way (the connection drops mid-batch), JetStream
    /// refuses the ones after it instead of storing them out of order; the batch is then
    /// published again from the checkpoint, and what was stored already is acknowledged as a
    /// duplicate (JetStream checks duplicates before expectations).
    async fn publish(&self, events: &[OutboxEvent]) -> Result<()> {
        let started = Instant::now();
        let mut acks = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let body = serde_json::to_vec(&event.cloud_event(&self.service.name))
                .map_err(|e| Error::Relay(format!("encoding event {}: {e}", event.event_id)))?;
            let mut message = PublishMessage::build()
                .payload(body.into())
                .message_id(event.event_id.to_string());
            if let Some(previous) = index.checked_sub(1).map(|i| &events[i]) {
                message = message.expected_last_message_id(previous.event_id.to_string());
            }
            let ack = self
                .jetstream
                .send_publish(event.subject(&self.service.name), message)
                .await
                .map_err(publish_error)?;
            acks.push(ack);
        }
        let mut duplicates = 0;
        for ack in acks {
            if ack.await.map_err(publish_error)?.duplicate {
                duplicates += 1;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        debug!(service = %self.service.name, events = events.len(), duplicates, seconds, "published");
        self.status.send_modify(|s| {
            s.published += events.len() as u64;
            s.duplicates += duplicates;
            s.last_batch_seconds = seconds;
            s.last_error = None;
        });
        Ok(())
    }

    async fn load_checkpoint(&self, client: &Client) -> Result<FeedCursor> {
        let row = client
            .query_opt(
                "SELECT position FROM vellum.relay_checkpoints WHERE service = $1",
                &[&self.service.name.as_str()],
            )
            .await?;
        let cursor = match row {
            Some(row) => FeedCursor::after(row.get(0))?,
            None => FeedCursor::START,
        };
        self.status
            .send_modify(|s| s.checkpoint = (cursor.position > 0).then_some(cursor.position));
        Ok(cursor)
    }

    /// Moves the checkpoint, on the leader's own connection: if the lock was lost with that
    /// connection, the write fails and the batch is published again by the next leader.
    async fn save_checkpoint(&self, client: &Client, to: FeedCursor, events: usize) -> Result<()> {
        client
            .execute(
                "INSERT INTO vellum.relay_checkpoints (service, position, published)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (service) DO UPDATE SET position = EXCLUDED.position,
                     published = vellum.relay_checkpoints.published + EXCLUDED.published,
                     updated_at = clock_timestamp()",
                &[&self.service.name.as_str(), &to.position, &(events as i64)],
            )
            .await?;
        self.status
            .send_modify(|s| s.checkpoint = Some(to.position));
        Ok(())
    }

    async fn update_lag(&self, client: &Client, cursor: FeedCursor) -> Result<()> {
        let sql = format!(
            "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(o.created_at)), 0)::float8
             FROM {} o WHERE o.position > $1",
            self.service.idents.fixed("outbox")
        );
        let row = client.query_one(&sql, &[&cursor.position]).await?;
        let (events, seconds): (i64, f64) = (row.get(0), row.get(1));
        self.status.send_modify(|s| {
            s.lag_events = events;
            s.lag_seconds = seconds.max(0.0);
        });
        Ok(())
    }
}

fn publish_error(err: async_nats::jetstream::context::PublishError) -> Error {
    match err.kind() {
        PublishErrorKind::TimedOut => Error::Relay("JetStream did not acknowledge in time".into()),
        _ => Error::Relay(format!("publishing to JetStream: {err}")),
    }
}

/// Aborts the connection task of the leader's connection when leadership ends.
struct AbortOnDrop(tokio::task::JoinHandle<std::result::Result<(), tokio_postgres::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
