//! Events: emitted in a unit of work, committed to the service's outbox with its writes, read
//! back as a feed in commit order, and published by the outbox relay (see `docs/events.md`).

mod cloud_event;
mod feed;
mod notify;
mod relay;
mod settings;
mod subscription;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use vellum_core::ServiceName;

pub use cloud_event::CloudEvent;
pub use feed::{FEED_MAX_LIMIT, FeedCursor};
pub(crate) use notify::{CHANNEL as NOTIFY_CHANNEL, Notifier};
pub use relay::{OutboxRelay, RelayOptions, RelayStatus};
pub use subscription::EventSubscription;

use crate::{Error, Result};

/// Longest aggregate id, in bytes.
const MAX_AGGREGATE_ID: usize = 256;
/// Longest aggregate type, event type or aggregate version, in bytes.
const MAX_NAME: usize = 128;

/// An event to emit in a unit of work ([`UnitOfWork::emit`](crate::UnitOfWork::emit)): a fact
/// about one aggregate, committed with the unit of work's writes or not at all.
///
/// ```
/// use serde_json::json;
/// use vellum::Event;
///
/// let event = Event::new("TransferCompleted", "wallet", "w-17", json!({"amount": 5}))
///     .aggregate_version("1.0.3");
/// assert_eq!(event.event_type(), "TransferCompleted");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: String,
    pub(crate) aggregate_version: Option<String>,
    pub(crate) data: Value,
}

impl Event {
    /// An event of `event_type` about the aggregate `aggregate_type`/`aggregate_id`, with a fresh
    /// UUIDv7 as its id.
    ///
    /// The aggregate type is one NATS subject token (`[A-Za-z0-9_-]`, at most 128 bytes); the
    /// event type is one or more such tokens joined by dots (`entity.created`); the aggregate id
    /// is any text of 1 to 256 bytes without U+0000. They are checked when the event is emitted.
    pub fn new(
        event_type: impl Into<String>,
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            aggregate_version: None,
            data,
        }
    }

    /// The version of the aggregate this event brings it to (an entity version, a counter).
    pub fn aggregate_version(mut self, version: impl Into<String>) -> Self {
        self.aggregate_version = Some(version.into());
        self
    }

    /// Uses `event_id` instead of a fresh id (for idempotent producers).
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    /// The event id (`id` of the CloudEvent, `Nats-Msg-Id` on NATS).
    pub fn id(&self) -> Uuid {
        self.event_id
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// Checks the names against the subject grammar, so no event can break a NATS subject.
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidEvent(reason));
        if !is_token(&self.aggregate_type) {
            return bad(format!(
                "aggregate type {:?} must be 1 to {MAX_NAME} bytes of [A-Za-z0-9_-]",
                self.aggregate_type
            ));
        }
        if self.event_type.len() > MAX_NAME || !self.event_type.split('.').all(is_token) {
            return bad(format!(
                "event type {:?} must be dot-separated tokens of [A-Za-z0-9_-], at most {MAX_NAME} bytes",
                self.event_type
            ));
        }
        if self.aggregate_id.is_empty()
            || self.aggregate_id.len() > MAX_AGGREGATE_ID
            || self.aggregate_id.contains('\0')
        {
            return bad(format!(
                "aggregate id must be 1 to {MAX_AGGREGATE_ID} bytes without U+0000"
            ));
        }
        if let Some(version) = &self.aggregate_version
            && (version.is_empty() || version.len() > MAX_NAME || version.contains('\0'))
        {
            return bad(format!(
                "aggregate version must be 1 to {MAX_NAME} bytes without U+0000"
            ));
        }
        Ok(())
    }
}

/// One NATS subject token: `[A-Za-z0-9_-]{1,128}` (no `.`, `*`, `>` or whitespace).
fn is_token(text: &str) -> bool {
    (1..=MAX_NAME).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An event as committed to the outbox: what the feed, subscriptions and the relay deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEvent {
    /// The event's place in the outbox: positions increase in commit order (with gaps where
    /// a unit of work rolled back), and identify events.
    pub position: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The unit of work that committed it.
    pub uow_id: Uuid,
    /// The event type, e.g. `TransferCompleted` or `entity.updated`.
    pub event_type: String,
    /// The aggregate type (for entity change events, the schema id).
    pub aggregate_type: String,
    /// The aggregate (for entity change events, the entity id).
    pub aggregate_id: String,
    /// The aggregate's version after the event, if the producer gave one.
    pub aggregate_version: Option<String>,
    /// The event's data.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    /// The commit time of its unit of work.
    pub created_at: DateTime<Utc>,
}

impl OutboxEvent {
    /// The feed cursor just after this event.
    pub fn cursor(&self) -> FeedCursor {
        FeedCursor {
            position: self.position,
        }
    }

    /// The NATS subject it is published on: `vellum.<service>.<aggregate_type>.<event_type>`.
    pub fn subject(&self, service: &ServiceName) -> String {
        format!(
            "vellum.{service}.{}.{}",
            self.aggregate_type, self.event_type
        )
    }

    /// The event as a CloudEvents 1.0 envelope.
    pub fn cloud_event(&self, service: &ServiceName) -> CloudEvent {
        CloudEvent::new(service, self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(event_type: &str, aggregate_type: &str, aggregate_id: &str) -> bool {
        Event::new(event_type, aggregate_type, aggregate_id, json!({}))
            .check()
            .is_ok()
    }

    #[test]
    fn names_that_would_break_a_subject_are_refused() {
        assert!(check(
            "TransferCompleted",
            "wallet",
            "any id: with spaces.and.dots"
        ));
        assert!(check("entity.created", "sales_order", "x"));
        for event_type in [
            "",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a*",
            "a.>",
            "ä",
            &"x".repeat(129),
        ] {
            assert!(!check(event_type, "wallet", "x"), "{event_type:?} accepted");
        }
        for aggregate_type in ["", "a.b", "*", ">", "a b", "\t"] {
            assert!(
                !check("e", aggregate_type, "x"),
                "{aggregate_type:?} accepted"
            );
        }
        assert!(!check("e", "wallet", ""));
        assert!(!check("e", "wallet", "a\0b"));
        assert!(!check("e", "wallet", &"x".repeat(257)));
    }
}
