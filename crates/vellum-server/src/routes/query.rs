//! `POST /v1/{service}/entities/{schema_id}/query`: the DataStore DSL over HTTP (SPEC §8).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use utoipa::{
    ToSchema,
    openapi::{RefOr, schema::Schema},
};
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
/// (`created_at`, `updated_at`, `entity_id`, `entity_version`); `entity_id` breaks ties, in the
/// direction of the last key.
#[derive(ToSchema)]
#[schema(as = Query)]
#[allow(
    dead_code,
    reason = "documentation only: the handler reads vellum::query::Query"
)]
pub(crate) struct QueryBody {
    /// The filter tree (see above).
    filter: Option<FilterDoc>,
    /// Sort keys, most significant first (at most 16).
    #[schema(max_items = 16, required = false)]
    order: Vec<OrderKeyDoc>,
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
    #[schema(required = false, default = false)]
    include_deleted: bool,
}

/// The JSON Schema of the filter grammar, as `#/components/schemas/Filter` (it refers to itself).
/// Documentation only: the handler parses `vellum::query::Filter`, which also enforces what a
/// schema cannot say (nesting and size limits, NUL characters, paths and types checked against
/// the entity type's schema).
pub(crate) struct FilterDoc;

/// A JSON Pointer with at least one segment (RFC 6901).
const POINTER: &str = "^(/([^~/]|~[01])*)+$";

impl utoipa::PartialSchema for FilterDoc {
    fn schema() -> RefOr<Schema> {
        let filter = json!({"$ref": "#/components/schemas/Filter"});
        let path = json!({"type": "string", "pattern": POINTER});
        let condition = |ops: Value, value: Option<Value>| {
            let mut properties = json!({"path": path, "op": {"type": "string", "enum": ops}});
            let mut required = vec!["path", "op"];
            if let Some(value) = value {
                properties["value"] = value;
                required.push("value");
            }
            json!({"type": "object", "properties": properties, "required": required,
                   "additionalProperties": false})
        };
        let one = |key: &str, schema: Value| {
            json!({"type": "object", "properties": {key: schema}, "required": [key],
                   "additionalProperties": false})
        };
        let list = json!({"type": "array", "items": filter});
        let any =
            json!({"type": ["string", "number", "integer", "boolean", "array", "object", "null"]});
        schema(json!({
            "description": "A filter: and, or, not, or one condition on a JSON Pointer path.",
            "oneOf": [
                one("and", list.clone()),
                one("or", list),
                one("not", filter),
                condition(json!(["eq", "ne", "lt", "lte", "gt", "gte", "contains"]), Some(any)),
                condition(json!(["in"]), Some(json!({"type": "array", "maxItems": 1000}))),
                condition(json!(["starts_with"]), Some(json!({"type": "string"}))),
                condition(json!(["exists"]), None),
            ]
        }))
    }
}

impl ToSchema for FilterDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "Filter".into()
    }
}

/// The JSON Schema of one order key.
pub(crate) struct OrderKeyDoc;

impl utoipa::PartialSchema for OrderKeyDoc {
    fn schema() -> RefOr<Schema> {
        let direction = json!({"type": "string", "enum": ["asc", "desc"], "default": "asc"});
        let key = |name: &str, schema: Value| {
            json!({"type": "object", "properties": {name: schema, "direction": direction},
                   "required": [name], "additionalProperties": false})
        };
        schema(json!({
            "description": "A sort key: a payload path or a metadata field.",
            "oneOf": [
                key("path", json!({"type": "string", "pattern": POINTER})),
                key(
                    "field",
                    json!({"type": "string",
                           "enum": ["created_at", "updated_at", "entity_id", "entity_version"]}),
                ),
            ]
        }))
    }
}

impl ToSchema for OrderKeyDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "OrderKey".into()
    }
}

fn schema(value: Value) -> RefOr<Schema> {
    RefOr::T(serde_json::from_value(value).expect("the grammar's schema is a valid Schema object"))
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
