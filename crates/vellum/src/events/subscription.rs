//! In-process subscribers: a reader of the feed that waits for new events.

use std::{collections::VecDeque, time::Duration};

use tokio::sync::watch;

use super::{FeedCursor, OutboxEvent};
use crate::{Result, Service};

/// How long an idle subscription waits for a notification before it reads the feed anyway.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Events read per feed query.
const BATCH: usize = 256;

/// A subscription to a service's committed events, from a cursor on: every event is delivered
/// once per subscription, in feed order, at least once across restarts when the subscriber
/// stores [`OutboxEvent::cursor`] (or the position) of what it has processed.
///
/// Made by [`Service::subscribe`]. Woken by the commit notifications of the store's
/// `LISTEN` connection, with a polling fallback, so it neither spins nor misses events.
pub struct EventSubscription {
    service: Service,
    cursor: FeedCursor,
    buffer: VecDeque<OutboxEvent>,
    wakeups: watch::Receiver<u64>,
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription")
            .field("service", &self.service.name)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Subscribes to the committed events after `after` ([`FeedCursor::START`] for all of them).
    ///
    /// Call it on a Tokio runtime: the first subscription of a store starts its `LISTEN`
    /// connection there.
    pub fn subscribe(&self, after: FeedCursor) -> EventSubscription {
        let mut wakeups = self.store.notifier().watch(self.name.as_str());
        wakeups.mark_changed();
        EventSubscription {
            service: self.clone(),
            cursor: after,
            buffer: VecDeque::new(),
            wakeups,
        }
    }
}

impl EventSubscription {
    /// The next event, waiting as long as it takes. Cancel-safe: an event is consumed only when
    /// it is returned.
    pub async fn next(&mut self) -> Result<OutboxEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.cursor = event.cursor();
                return Ok(event);
            }
            self.fill().await?;
        }
    }

    /// The cursor after the last event returned.
    pub fn cursor(&self) -> FeedCursor {
        self.cursor
    }

    /// Waits for a reason to read, then reads one batch into the buffer (possibly none).
    async fn fill(&mut self) -> Result<()> {
        if !self.wakeups.has_changed().unwrap_or(false) {
            let _ = tokio::time::timeout(IDLE_POLL, self.wakeups.changed()).await;
        }
        self.wakeups.borrow_and_update();
        let events = self.service.events_after(self.cursor, BATCH).await?;
        if events.len() == BATCH {
            self.wakeups.mark_changed();
        }
        self.buffer.extend(events);
        Ok(())
    }
}
