//! `/v1/{service}/events`: the gap-safe outbox feed, its server-sent-events stream, and the
//! service's event settings.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::HeaderMap,
    response::sse::{self, KeepAlive, Sse},
};
use futures_util::{Stream, stream};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vellum::{CloudEvent, FEED_MAX_LIMIT, FeedCursor, Scope, ServiceName};

use super::responses::{ReadErrors, WriteErrors};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    extract::{JsonBody, ValidPath, ValidQuery},
};

/// Events per feed page when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedQuery {
    /// Resume after the event with this position (the `position` of the last event processed;
    /// 0 or absent: from the first event).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Most events to return (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeedPage {
    /// Committed events in feed order, as CloudEvents.
    events: Vec<CloudEvent>,
    /// The `after` to ask for the next page with: the position of the last event here, or the
    /// `after` of this request when there was none.
    next_after: i64,
}

/// Committed events after a position, in position order, which is commit order: resuming after
/// the last position seen never skips an event, since no later position commits before an
/// earlier one.
#[utoipa::path(
    get, path = "/v1/{service}/events", tag = "events", operation_id = "read_events",
    params(("service" = ServiceName, Path), FeedQuery),
    responses((status = 200, description = "A page of the feed", body = FeedPage), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
    ValidQuery(query): ValidQuery<FeedQuery>,
) -> Result<axum::Json<FeedPage>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=FEED_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {FEED_MAX_LIMIT}"
        )));
    }
    let cursor = cursor_at(query.after)?;
    let handle = state.service(&service).await?;
    let events = handle.events_after(cursor, limit).await?;
    Ok(axum::Json(FeedPage {
        next_after: events.last().map_or(cursor.position(), |e| e.position),
        events: events.iter().map(|e| e.cloud_event(&service)).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// Start after the event with this position; `Last-Event-ID` takes precedence.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// The feed as server-sent events: each event's `id:` is its position and its `data:` the
/// CloudEvent JSON. Reconnecting with `Last-Event-ID` resumes after that event. Woken by commits
/// (LISTEN/NOTIFY), with comments as keep-alive.
#[utoipa::path(
    get, path = "/v1/{service}/events/stream", tag = "events", operation_id = "stream_events",
    params(("service" = ServiceName, Path), StreamQuery,
           ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position")),
    responses((status = 200, description = "An endless text/event-stream", content_type = "text/event-stream", body = String),
              ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
    ValidQuery(query): ValidQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let after = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event position"))?,
        ),
        None => query.after,
    };
    let cursor = cursor_at(after)?;
    let handle = state.service(&service).await?;
    let subscription = handle.subscribe(cursor);
    let events = stream::unfold(subscription, move |mut subscription| {
        let service = service.clone();
        async move {
            match subscription.next().await {
                Ok(event) => {
                    let item = sse::Event::default()
                        .id(event.position.to_string())
                        .json_data(event.cloud_event(&service))
                        .expect("a CloudEvent serializes");
                    Some((Ok(item), subscription))
                }
                Err(err) => {
                    tracing::warn!(%service, %err, "event stream ended");
                    None
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn cursor_at(after: Option<i64>) -> Result<FeedCursor, ApiError> {
    FeedCursor::after(after.unwrap_or(0)).map_err(|err| ApiError::bad_request(err.to_string()))
}

/// A service's event settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventSettings {
    /// Whether every entity write also emits `entity.created`, `entity.updated`,
    /// `entity.undeleted` or `entity.deleted` with the new entity version.
    change_events: bool,
}

/// The service's event settings.
#[utoipa::path(
    get, path = "/v1/{service}/events/settings", tag = "events", operation_id = "get_event_settings",
    params(("service" = ServiceName, Path)),
    responses((status = 200, description = "The settings", body = EventSettings), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
) -> Result<axum::Json<EventSettings>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    Ok(axum::Json(EventSettings {
        change_events: handle.change_events().await?,
    }))
}

/// Change the service's event settings (admin scope).
#[utoipa::path(
    put, path = "/v1/{service}/events/settings", tag = "events", operation_id = "set_event_settings",
    params(("service" = ServiceName, Path)),
    request_body(content = EventSettings, content_type = "application/json"),
    responses((status = 200, description = "The new settings", body = EventSettings), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
    JsonBody(settings): JsonBody<EventSettings>,
) -> Result<axum::Json<EventSettings>, ApiError> {
    caller.require(&service, Scope::Admin)?;
    let handle = state.service(&service).await?;
    handle.set_change_events(settings.change_events).await?;
    Ok(axum::Json(settings))
}
