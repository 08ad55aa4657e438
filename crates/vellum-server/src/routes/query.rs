//! `POST /v1/{service}/entities/{schema_id}/query`: the DataStore DSL over HTTP (SPEC §8).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use vellum::{Page, SchemaId, Scope, ServiceName, query::Query};

use super::responses::QueryErrors;
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    extract::{JsonBody, ValidPath},
};

/// A query over one entity type. Every field is optional; `{}` lists the first 50 entities in
/// `entity_id` order.
///
/// **filter** is a tree of conditions on JSON Pointer paths of the payload:
/// `{"and": [f, ...]}`, `{"or": [f, ...]}`, `{"not": f}`,
/// `{"path": "/total", "op": "gt", "value": 100}` with `op` one of `eq ne lt lte gt gte in contains
/// starts_with exists` (`in` takes an array, `exists` no value). Paths must be declared by the
/// active schema unless it allows additional properties there; comparisons are typed by the
/// schema (numbers as numbers, `format: date-time` strings as timestamps, strings as text). A
/// condition on a path a document lacks is false; `not` of it is true. See docs/query.md.
///
/// **order** lists `{"path": "/total", "direction": "desc"}` or `{"field": "created_at"}`
/// (`created_at`, `updated_at`, `entity_id`, `entity_version`); `entity_id` breaks ties.
#[derive(ToSchema)]
#[schema(as = Query)]
#[allow(
    dead_code,
    reason = "documentation only: the handler reads vellum::query::Query"
)]
pub(crate) struct QueryBody {
    /// The filter tree (see above).
    #[schema(value_type = Object)]
    filter: Option<Value>,
    /// Sort keys, most significant first.
    #[schema(value_type = Vec<Object>)]
    order: Option<Vec<Value>>,
    /// Page size: 1 to 1000, default 50.
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page of the same query.
    cursor: Option<String>,
    /// Query the type as it was at this time.
    as_of: Option<DateTime<Utc>>,
    /// Only these entities (at most 1000).
    #[schema(max_items = 1000)]
    ids: Option<Vec<Uuid>>,
    /// Include soft-deleted entities.
    include_deleted: Option<bool>,
}

/// Query the entities of one type: filter, order, keyset pagination, bulk fetch by id, and
/// time travel (`as_of`).
#[utoipa::path(
    post, path = "/v1/{service}/entities/{schema_id}/query", tag = "entities", operation_id = "query_entities",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    request_body = QueryBody,
    responses((status = 200, description = "One page of results", body = Page), QueryErrors),
    security(("bearer" = []))
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
    JsonBody(query): JsonBody<Query>,
) -> Result<axum::Json<Page>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    Ok(axum::Json(handle.query(&schema_id, &query).await?))
}
