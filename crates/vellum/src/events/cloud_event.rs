//! The CloudEvents 1.0 JSON envelope of an outbox event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use vellum_core::ServiceName;

use super::OutboxEvent;

/// An outbox event in the CloudEvents 1.0 JSON format, with vellum's extension attributes
/// (`aggregatetype`, `aggregateversion`, `uowid`, `position`). This is the body of every NATS
/// message and every item of the HTTP feed and stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// The event id.
    pub id: Uuid,
    /// `vellum/<service>`.
    pub source: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate id.
    pub subject: String,
    /// The commit time of the unit of work.
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The event's data.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    /// The aggregate type.
    pub aggregatetype: String,
    /// The aggregate version after the event, when the producer gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregateversion: Option<String>,
    /// The unit of work that committed the event.
    pub uowid: Uuid,
    /// The event's outbox position (its feed cursor: `after=<position>`, `Last-Event-ID`).
    pub position: i64,
}

impl CloudEvent {
    pub(super) fn new(service: &ServiceName, event: &OutboxEvent) -> Self {
        Self {
            specversion: "1.0".into(),
            id: event.event_id,
            source: format!("vellum/{service}"),
            event_type: event.event_type.clone(),
            subject: event.aggregate_id.clone(),
            time: event.created_at,
            datacontenttype: "application/json".into(),
            data: event.data.clone(),
            aggregatetype: event.aggregate_type.clone(),
            aggregateversion: event.aggregate_version.clone(),
            uowid: event.uow_id,
            position: event.position,
        }
    }
}
