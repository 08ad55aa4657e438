//! `POST /v1/{service}/transactions`: several writes and events in one unit of work, all or
//! nothing.

use axum::{extract::State, http::HeaderMap};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use vellum::{Committed, Event, SchemaId, Scope, ServiceName, Version, WriteOptions};

use super::{entities::uow_options, responses::WriteErrors};
use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, Culprit},
    extract::{JsonBody, ValidPath},
    merge_patch::merge_patch,
};

/// The most operations plus events one transaction may carry.
const MAX_ITEMS: usize = 1000;

/// A UUID in its hyphenated form only, so the body accepts exactly what its schema documents
/// (the pattern on each UUID field).
fn hyphenated<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = String::deserialize(deserializer)?;
    let valid = text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "{text:?} is not a hyphenated UUID"
        )));
    }
    Uuid::parse_str(&text).map_err(serde::de::Error::custom)
}

fn hyphenated_opt<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Uuid>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "hyphenated")] Uuid);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(id)| id))
}

/// Writes and events to commit together.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransactionRequest {
    /// The writes, applied in order; a later one sees what an earlier one staged.
    #[serde(default)]
    operations: Vec<Operation>,
    /// The events to emit, written to the outbox after the writes' own change events.
    #[serde(default)]
    events: Vec<EventRequest>,
}

/// What an operation of a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OpKind {
    /// Create an entity (`payload`; `entity_id` optional).
    Create,
    /// Replace an entity's document (`entity_id`, `payload`).
    Update,
    /// Apply a JSON Merge Patch (RFC 7396) to the entity's latest document (`entity_id`, `patch`).
    Patch,
    /// Soft-delete an entity (`entity_id`).
    Delete,
}

/// One write of a transaction. `create` needs `payload`; `update` needs `entity_id` and
/// `payload`; `patch` needs `entity_id` and `patch`; `delete` needs `entity_id`. A missing or
/// extra one is 422 naming the operation. `expected_version` makes the write conditional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TransactionOperation)]
pub(crate) struct Operation {
    /// What the operation does.
    op: OpKind,
    /// The entity type.
    schema_id: SchemaId,
    /// The entity (for `create`, the id to give it instead of a fresh UUIDv7).
    #[serde(default, deserialize_with = "hyphenated_opt")]
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    entity_id: Option<Uuid>,
    /// The entity version the write expects to be current (not for `create`).
    expected_version: Option<Version>,
    /// The whole document (`create`, `update`).
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// A JSON Merge Patch (`patch`).
    #[schema(value_type = Option<Object>)]
    patch: Option<Value>,
}

/// An operation with the fields its kind needs.
enum Write<'a> {
    Create(Option<Uuid>, &'a Value),
    Update(Uuid, &'a Value),
    Patch(Uuid, &'a Value),
    Delete(Uuid),
}

impl Operation {
    fn write(&self) -> Result<Write<'_>, String> {
        let needs = |what: &str| format!("{} needs {what}", self.op_name());
        let refuses = |what: &str| format!("{} takes no {what}", self.op_name());
        let id = || self.entity_id.ok_or_else(|| needs("entity_id"));
        match self.op {
            OpKind::Create if self.expected_version.is_some() => Err(refuses("expected_version")),
            OpKind::Create | OpKind::Update | OpKind::Delete if self.patch.is_some() => {
                Err(refuses("patch"))
            }
            OpKind::Patch | OpKind::Delete if self.payload.is_some() => Err(refuses("payload")),
            OpKind::Create => Ok(Write::Create(
                self.entity_id,
                self.payload.as_ref().ok_or_else(|| needs("payload"))?,
            )),
            OpKind::Update => Ok(Write::Update(
                id()?,
                self.payload.as_ref().ok_or_else(|| needs("payload"))?,
            )),
            OpKind::Patch => Ok(Write::Patch(
                id()?,
                self.patch.as_ref().ok_or_else(|| needs("patch"))?,
            )),
            OpKind::Delete => Ok(Write::Delete(id()?)),
        }
    }

    fn op_name(&self) -> &'static str {
        match self.op {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Patch => "patch",
            OpKind::Delete => "delete",
        }
    }
}

/// One event of a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventRequest {
    /// The event type: dot-separated tokens of `[A-Za-z0-9_-]`.
    #[serde(rename = "type")]
    event_type: String,
    /// The aggregate type: one token of `[A-Za-z0-9_-]`.
    aggregate_type: String,
    /// The aggregate id.
    aggregate_id: String,
    /// The aggregate's version after the event.
    aggregate_version: Option<String>,
    /// The event id to use (for idempotent producers); a fresh UUIDv7 otherwise.
    #[serde(default, deserialize_with = "hyphenated_opt")]
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    id: Option<Uuid>,
    /// The event's data.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: Value,
}

/// Commit writes and events atomically. Answers the resulting entities, one per operation in
/// order, and the committed events with their outbox positions. Nothing is written unless
/// everything is: a conflict is 409 and an invalid document or event 422, each naming the
/// failing `operation` or `event` by index. A transaction with no operation and no event, or
/// more than 1000 of them, is 422.
#[utoipa::path(
    post, path = "/v1/{service}/transactions", tag = "events", operation_id = "commit_transaction",
    params(("service" = ServiceName, Path), super::entities::WriteHeaders),
    request_body(content = TransactionRequest, content_type = "application/json"),
    responses((status = 200, description = "Committed", body = Committed), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TransactionRequest>,
) -> Result<axum::Json<Committed>, ApiError> {
    caller.require(&service, Scope::Write)?;
    if request.operations.is_empty() && request.events.is_empty() {
        return Err(ApiError::invalid_transaction(
            "a transaction needs at least one operation or event",
        ));
    }
    if request.operations.len() + request.events.len() > MAX_ITEMS {
        return Err(ApiError::invalid_transaction(format!(
            "a transaction carries at most {MAX_ITEMS} operations and events"
        )));
    }
    let handle = state.service(&service).await?;
    let mut uow = handle.begin_with(uow_options(&caller, &headers)?).await?;
    for (index, operation) in request.operations.iter().enumerate() {
        let culprit = Culprit::Operation(index);
        let write = operation
            .write()
            .map_err(|reason| ApiError::invalid_transaction(reason).at(culprit))?;
        let schema_id = &operation.schema_id;
        let mut options = WriteOptions::default();
        options.expected_version = operation.expected_version;
        let staged = match write {
            Write::Create(entity_id, payload) => {
                options.entity_id = entity_id;
                uow.create(schema_id, payload.clone(), options).await
            }
            Write::Update(entity_id, payload) => {
                uow.update(schema_id, entity_id, payload.clone(), options)
                    .await
            }
            Write::Patch(entity_id, patch) => {
                uow.update_with(schema_id, entity_id, options, |document| {
                    merge_patch(document, patch)
                })
                .await
            }
            Write::Delete(entity_id) => {
                uow.delete(schema_id, entity_id, operation.expected_version)
                    .await
            }
        };
        staged.map_err(|err| ApiError::from(err).at(culprit))?;
    }
    for (index, event) in request.events.into_iter().enumerate() {
        let mut emitted = Event::new(
            event.event_type,
            event.aggregate_type,
            event.aggregate_id,
            event.data,
        );
        if let Some(version) = event.aggregate_version {
            emitted = emitted.aggregate_version(version);
        }
        if let Some(id) = event.id {
            emitted = emitted.with_id(id);
        }
        uow.emit(emitted)
            .map_err(|err| ApiError::from(err).at(Culprit::Event(index)))?;
    }
    let committed = uow
        .commit()
        .await
        .map_err(|err| commit_error(err, &request.operations))?;
    tracing::info!(
        uow_id = %committed.uow_id,
        %service,
        writes = committed.entities.len(),
        events = committed.events.len(),
        "transaction committed"
    );
    Ok(axum::Json(committed))
}

/// A failure found at commit, named by the operation on the entity it is about.
fn commit_error(err: vellum::Error, operations: &[Operation]) -> ApiError {
    let about = |schema: &str, entity: Uuid| {
        operations
            .iter()
            .position(|op| op.schema_id.as_str() == schema && op.entity_id == Some(entity))
    };
    let culprit = match &err {
        vellum::Error::VersionConflict {
            schema_id,
            entity_id,
            ..
        } => about(schema_id, *entity_id),
        vellum::Error::AlreadyExists { what } => operations.iter().position(|op| {
            op.op == OpKind::Create
                && op
                    .entity_id
                    .is_some_and(|id| *what == format!("entity {}/{id}", op.schema_id))
        }),
        _ => None,
    };
    match culprit {
        Some(index) => ApiError::from(err).at(Culprit::Operation(index)),
        None => err.into(),
    }
}
