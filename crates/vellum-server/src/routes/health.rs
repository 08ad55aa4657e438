//! Probes and metrics: no token needed.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, error::ApiError, metrics};

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Health),
              (status = 503, description = "The database is not reachable", body = crate::error::Problem,
               content_type = "application/problem+json")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // A probe must answer quickly even when every pooled connection is busy.
    match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => Ok(Json(Health { status: "ready" })),
        Ok(Err(_)) | Err(_) => Err(ApiError::unavailable("the database is not reachable")),
    }
}

/// Prometheus metrics (OpenMetrics text): requests and latencies by route and status, pool use,
/// unit-of-work commits, conflicts and validation failures, outbox relay lag and publishing.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text exposition", body = String,
               content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.store().pool_status();
    let sample = metrics::PoolSample {
        max_size: pool.max_size,
        size: pool.size,
        available: pool.available,
        waiting: pool.waiting,
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state
            .metrics()
            .render_all(sample, state.store().uow_stats(), &state.relay_statuses()),
    )
        .into_response()
}
