//! The router: every operation of the v1 API, documented as it is registered.

mod entities;
mod events;
mod health;
mod query;
mod responses;
mod schemas;
mod services;
mod transactions;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    LatencyUnit,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, docs, error::ApiError, metrics, openapi::ApiDoc};

/// The HTTP API over `state`: the v1 routes, `/openapi.json`, `/docs`, probes and metrics.
///
/// Every v1 route is registered through `utoipa-axum`, so it cannot exist undocumented.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(services::provision))
        .routes(routes!(services::issue_token))
        .routes(routes!(schemas::list))
        .routes(routes!(schemas::register))
        .routes(routes!(schemas::check))
        .routes(routes!(schemas::compatibility, schemas::set_compatibility))
        .routes(routes!(schemas::versions))
        .routes(routes!(schemas::show, schemas::delete))
        .routes(routes!(schemas::activate))
        .routes(routes!(entities::create))
        .routes(routes!(
            entities::get,
            entities::replace,
            entities::patch,
            entities::delete
        ))
        .routes(routes!(entities::history))
        .routes(routes!(query::query))
        .routes(routes!(transactions::commit))
        .routes(routes!(events::feed))
        .routes(routes!(events::stream))
        .routes(routes!(events::settings, events::set_settings))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .split_for_parts();
    let openapi = Arc::new(openapi);
    let limits = state.limits().clone();
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .merge(docs::routes())
        .fallback(|| async { ApiError::not_found("no such route; see /docs") })
        .layer(middleware::from_fn_with_state(limits.request_timeout, time_limit))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.metrics().clone(), metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id =
                        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Answers 503 (problem+json) when a request takes longer than the limit; the database side is
/// bounded by the statement timeout, and dropping the handler rolls its unit of work back.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(format!(
            "the request took longer than {} ms",
            limit.as_millis()
        ))
        .into_response(),
    }
}
