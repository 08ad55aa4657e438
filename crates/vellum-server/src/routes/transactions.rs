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

/// One write of a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Operation {
    /// Create an entity (with this id, if given).
    Create {
        schema_id: SchemaId,
        #[serde(default, deserialize_with = "hyphenated_opt")]
        #[schema(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )]
        entity_id: Option<Uuid>,
        #[schema(value_type = Object)]
        payload: Value,
    },
    /// Replace an entity's document.
    Update {
        schema_id: SchemaId,
        #[serde(deserialize_with = "hyphenated")]
        #[schema(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )]
        entity_id: Uuid,
        expected_version: Option<Version>,
        #[schema(value_type = Object)]
        payload: Value,
    },
    /// Apply a JSON Merge Patch (RFC 7396) to the entity's latest document.
    Patch {
        schema_id: SchemaId,
        #[serde(deserialize_with = "hyphenated")]
        #[schema(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )]
        entity_id: Uuid,
        expected_version: Option<Version>,
        #[schema(value_type = Object)]
        patch: Value,
    },
    /// Soft-delete an entity.
    Delete {
        schema_id: SchemaId,
        #[serde(deserialize_with = "hyphenated")]
        #[schema(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )]
        entity_id: Uuid,
        expected_version: Option<Version>,
    },
}

impl Operation {
    fn target(&self) -> (&SchemaId, Option<Uuid>) {
        match self {
            Operation::Create {
                schema_id,
                entity_id,
                ..
            } => (schema_id, *entity_id),
            Operation::Update {
                schema_id,
                entity_id,
                ..
            }
            | Operation::Patch {
                schema_id,
                entity_id,
                ..
            }
            | Operation::Delete {
                schema_id,
                entity_id,
                ..
            } => (schema_id, Some(*entity_id)),
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
        let staged = match operation {
            Operation::Create {
                schema_id,
                entity_id,
                payload,
            } => {
                let mut options = WriteOptions::default();
                options.entity_id = *entity_id;
                uow.create(schema_id, payload.clone(), options).await
            }
            Operation::Update {
                schema_id,
                entity_id,
                expected_version,
                payload,
            } => {
                let mut options = WriteOptions::default();
                options.expected_version = *expected_version;
                uow.update(schema_id, *entity_id, payload.clone(), options)
                    .await
            }
            Operation::Patch {
                schema_id,
                entity_id,
                expected_version,
                patch,
            } => {
                let mut options = WriteOptions::default();
                options.expected_version = *expected_version;
                uow.update_with(schema_id, *entity_id, options, |document| {
                    merge_patch(document, patch)
                })
                .await
            }
            Operation::Delete {
                schema_id,
                entity_id,
                expected_version,
            } => uow.delete(schema_id, *entity_id, *expected_version).await,
        };
        staged.map_err(|err| ApiError::from(err).at(Culprit::Operation(index)))?;
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
        operations.iter().position(|op| {
            let (schema_id, entity_id) = op.target();
            schema_id.as_str() == schema && entity_id == Some(entity)
        })
    };
    let culprit = match &err {
        vellum::Error::VersionConflict {
            schema_id,
            entity_id,
            ..
        } => about(schema_id, *entity_id),
        vellum::Error::AlreadyExists { what } => operations.iter().position(|op| {
            let (schema_id, entity_id) = op.target();
            matches!(op, Operation::Create { .. })
                && entity_id.is_some_and(|id| *what == format!("entity {schema_id}/{id}"))
        }),
        _ => None,
    };
    match culprit {
        Some(index) => ApiError::from(err).at(Culprit::Operation(index)),
        None => err.into(),
    }
}
