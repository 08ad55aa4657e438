//! `/v1/{service}/entities/...`: create, read (latest, by version, as of), replace, merge-patch,
//! delete, history.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use uuid::Uuid;
use vellum::{
    Entity, HistoryEntry, SchemaId, Scope, ServiceName, UowOptions, Version, WriteOptions,
};

use super::responses::{ConditionalWriteErrors, EntityReadErrors, ReadErrors, WriteErrors};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    extract::{JsonBody, ValidPath, ValidQuery},
    merge_patch::merge_patch,
};

/// The header a caller may use to name the end user it acts for (recorded as the actor).
const ACTOR_HEADER: &str = "vellum-actor";

/// How often a merge patch without `If-Match` is re-applied after losing a race.
const PATCH_ATTEMPTS: usize = 3;

/// The headers of a write, as documented (the handlers read them from the `HeaderMap`).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "documentation only: the handlers read the headers themselves"
)]
pub(crate) struct WriteHeaders {
    /// The end user this write is made for, recorded as the actor: visible ASCII.
    #[param(
        rename = "vellum-actor",
        nullable = false,
        min_length = 1,
        max_length = 256,
        pattern = r"^[!-~]([ -~]{0,254}[!-~])?$"
    )]
    actor: Option<String>,
}

/// The headers of a write that honours `If-Match`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "documentation only: the handlers read the headers themselves"
)]
pub(crate) struct ConditionalWriteHeaders {
    /// The quoted entity version the write expects, or `*`.
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = r#"^(\*|"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")$"#
    )]
    if_match: Option<String>,
    /// The end user this write is made for, recorded as the actor: visible ASCII.
    #[param(
        rename = "vellum-actor",
        nullable = false,
        min_length = 1,
        max_length = 256,
        pattern = r"^[!-~]([ -~]{0,254}[!-~])?$"
    )]
    actor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// Read this entity version instead of the current one (superseded and deleted ones too).
    version: Option<Version>,
    /// Read the entity as it was at this time (RFC 3339).
    as_of: Option<DateTime<Utc>>,
    /// Present the entity version read as this registered version of its schema: the payload
    /// is migrated (forward or back, composing the registered migrations) and validated, and
    /// `schema_version` is this one; the stored schema version is in the
    /// `Vellum-Stored-Schema-Version` header. Combines with `version` and `as_of`.
    schema_version: Option<Version>,
}

/// The header that names the schema version an entity is stored under, when it is presented
/// as another one (`?schema_version=`).
const STORED_SCHEMA_VERSION: &str = "vellum-stored-schema-version";

/// Create an entity. The body is the document; it is validated against the active schema
/// version. Answers 201 with the stored version, `ETag` (the entity version) and `Location`.
#[utoipa::path(
    post, path = "/v1/{service}/entities/{schema_id}", tag = "entities", operation_id = "create_entity",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path),
           WriteHeaders),
    request_body(content = Object, description = "The document", content_type = "application/json"),
    responses((status = 201, description = "Created", body = Entity,
               headers(("ETag" = String, description = "The quoted entity version"), ("Location" = String))),
              WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
    headers: HeaderMap,
    JsonBody(payload): JsonBody<Value>,
) -> Result<Response, ApiError> {
    caller.require(&service, Scope::Write)?;
    let handle = state.service(&service).await?;
    let mut uow = handle.begin_with(uow_options(&caller, &headers)?).await?;
    uow.create(&schema_id, payload, WriteOptions::default())
        .await?;
    let entity = committed_entity(&service, uow.commit().await?);
    let location = format!("/v1/{service}/entities/{schema_id}/{}", entity.entity_id);
    let mut response = (StatusCode::CREATED, entity_response(&entity)).into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, header_value(&location));
    Ok(response)
}

/// Read an entity: the current version, a given `version`, or the version current `as_of` a
/// time. A deleted entity is 404 unless read by version. With `schema_version`, the version
/// read is presented as that registered version of its schema (SPEC §4.3); 409
/// `not-convertible` when no chain of migrations leads there (a lossy migration on the way
/// back), a migration fails on the document, or the result does not satisfy that version
/// (with its violations).
#[utoipa::path(
    get, path = "/v1/{service}/entities/{schema_id}/{id}", tag = "entities", operation_id = "get_entity",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("id" = Uuid, Path), ReadQuery),
    responses((status = 200, description = "The entity version", body = Entity,
               headers(("ETag" = String, description = "The quoted entity version"),
                       ("Vellum-Stored-Schema-Version" = String,
                        description = "With schema_version: the schema version the entity version is stored under"))),
              EntityReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, id)): ValidPath<(ServiceName, SchemaId, Uuid)>,
    ValidQuery(query): ValidQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    let entity = match (query.version, query.as_of) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either version or as_of, not both",
            ));
        }
        (Some(version), None) => handle.get_version(&schema_id, id, &version).await?,
        (None, Some(as_of)) => handle.get_as_of(&schema_id, id, as_of).await?,
        // The common read answers with the entity as stored, its payload never parsed.
        (None, None) if query.schema_version.is_none() => {
            let entity = handle.get_json(&schema_id, id).await?;
            let headers = [
                (header::ETAG, etag(entity.entity_version)),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ];
            return Ok((headers, entity.json).into_response());
        }
        (None, None) => handle.get(&schema_id, id).await?,
    };
    let Some(schema_version) = query.schema_version else {
        return Ok(entity_response(&entity).into_response());
    };
    let stored = entity.schema_version;
    let presented = handle.present_as(entity, schema_version).await?;
    let mut response = entity_response(&presented).into_response();
    response
        .headers_mut()
        .insert(STORED_SCHEMA_VERSION, header_value(&stored.to_string()));
    Ok(response)
}

/// Replace an entity's document, writing a new version. With `If-Match: "<entity_version>"`
/// the write happens only if that is still the current version (else 412).
#[utoipa::path(
    put, path = "/v1/{service}/entities/{schema_id}/{id}", tag = "entities", operation_id = "replace_entity",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("id" = Uuid, Path),
           ConditionalWriteHeaders),
    request_body(content = Object, description = "The whole new document", content_type = "application/json"),
    responses((status = 200, description = "The new version", body = Entity,
               headers(("ETag" = String, description = "The quoted entity version"))),
              ConditionalWriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, id)): ValidPath<(ServiceName, SchemaId, Uuid)>,
    headers: HeaderMap,
    JsonBody(payload): JsonBody<Value>,
) -> Result<Response, ApiError> {
    caller.require(&service, Scope::Write)?;
    let expected = if_match(&headers)?.expected()?;
    let handle = state.service(&service).await?;
    let mut uow = handle.begin_with(uow_options(&caller, &headers)?).await?;
    let written = async {
        let mut options = WriteOptions::default();
        options.expected_version = expected;
        uow.update(&schema_id, id, payload, options).await?;
        uow.commit().await
    }
    .await
    .map_err(|err| ApiError::from_store(err, expected.is_some()))?;
    Ok(entity_response(&committed_entity(&service, written)).into_response())
}

/// Apply a JSON Merge Patch (RFC 7396) to an entity's current document, writing a new version.
/// `If-Match` is honoured as for PUT; without it, a patch that races another writer is
/// re-applied to the newer version.
#[utoipa::path(
    patch, path = "/v1/{service}/entities/{schema_id}/{id}", tag = "entities", operation_id = "patch_entity",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("id" = Uuid, Path),
           ConditionalWriteHeaders),
    request_body(content = Object, description = "A JSON Merge Patch", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The new version", body = Entity,
               headers(("ETag" = String, description = "The quoted entity version"))),
              ConditionalWriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, id)): ValidPath<(ServiceName, SchemaId, Uuid)>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, ApiError> {
    caller.require(&service, Scope::Write)?;
    let expected = if_match(&headers)?.expected()?;
    let handle = state.service(&service).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut uow = handle.begin_with(uow_options(&caller, &headers)?).await?;
        let result = async {
            let current = uow.get(&schema_id, id).await?;
            if let Some(expected) = expected
                && expected != current.entity_version
            {
                return Err(vellum::Error::VersionConflict {
                    schema_id: schema_id.to_string(),
                    entity_id: id,
                    expected: expected.to_string(),
                    found: current.entity_version.to_string(),
                });
            }
            let mut document = current.payload;
            merge_patch(&mut document, &patch);
            uow.update(
                &schema_id,
                id,
                document,
                WriteOptions::expect(current.entity_version),
            )
            .await?;
            uow.commit().await
        }
        .await;
        match result {
            Ok(written) => {
                return Ok(entity_response(&committed_entity(&service, written)).into_response());
            }
            Err(vellum::Error::VersionConflict { .. })
                if expected.is_none() && attempt < PATCH_ATTEMPTS =>
            {
                continue;
            }
            Err(err) => return Err(ApiError::from_store(err, expected.is_some())),
        }
    }
}

/// Soft-delete an entity: it reads as not found from now on, and every version stays in its
/// history. `If-Match` is honoured.
#[utoipa::path(
    delete, path = "/v1/{service}/entities/{schema_id}/{id}", tag = "entities", operation_id = "delete_entity",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("id" = Uuid, Path),
           ConditionalWriteHeaders),
    responses((status = 204, description = "Deleted"), ConditionalWriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, id)): ValidPath<(ServiceName, SchemaId, Uuid)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller.require(&service, Scope::Write)?;
    let expected = if_match(&headers)?.expected()?;
    let handle = state.service(&service).await?;
    let mut uow = handle.begin_with(uow_options(&caller, &headers)?).await?;
    let deleted = async {
        uow.delete(&schema_id, id, expected).await?;
        uow.commit().await
    }
    .await
    .map_err(|err| ApiError::from_store(err, expected.is_some()))?;
    committed_entity(&service, deleted);
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of an entity, oldest first, with who wrote and who deleted it.
#[utoipa::path(
    get, path = "/v1/{service}/entities/{schema_id}/{id}/history", tag = "entities", operation_id = "get_entity_history",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("id" = Uuid, Path)),
    responses((status = 200, description = "Every version, oldest first", body = Vec<HistoryEntry>), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, id)): ValidPath<(ServiceName, SchemaId, Uuid)>,
) -> Result<axum::Json<Vec<HistoryEntry>>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    Ok(axum::Json(handle.history(&schema_id, id).await?))
}

/// The entity as JSON (serialized straight from the entity, not through a JSON tree) with its
/// version as a strong `ETag`.
fn entity_response(entity: &Entity) -> Response {
    (
        [(header::ETAG, etag(entity.entity_version))],
        axum::Json(entity),
    )
        .into_response()
}

/// The quoted entity version: a strong `ETag`.
fn etag(version: Version) -> HeaderValue {
    header_value(&format!("\"{version}\""))
}

/// The one entity a single-write unit of work committed, logged with its unit of work (the
/// request span adds the request id).
fn committed_entity(service: &ServiceName, committed: vellum::Committed) -> Entity {
    let entity = committed
        .entities
        .into_iter()
        .next()
        .expect("a single-write unit of work commits one entity");
    tracing::info!(
        uow_id = %committed.uow_id,
        %service,
        schema_id = %entity.schema_id,
        entity_id = %entity.entity_id,
        entity_version = %entity.entity_version,
        deleted = entity.deleted_at.is_some(),
        "write committed"
    );
    entity
}

/// What `If-Match` asks of a write.
#[derive(Debug, Clone, Copy)]
enum Precondition {
    /// No header, or `*`: whatever version is current.
    Any,
    /// This version must be current.
    Version(Version),
    /// A well-formed version no entity can have (a component beyond 2147483647): never current.
    Unsatisfiable,
}

impl Precondition {
    /// The expected version for the unit of work; an unsatisfiable precondition is answered 412
    /// before anything is read or written.
    fn expected(self) -> Result<Option<Version>, ApiError> {
        match self {
            Precondition::Any => Ok(None),
            Precondition::Version(version) => Ok(Some(version)),
            Precondition::Unsatisfiable => Err(ApiError::precondition_failed(
                "If-Match names a version no entity can have",
            )),
        }
    }
}

/// `If-Match: "1.0.2"`: the entity version a write expects.
fn if_match(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Precondition::Any);
    };
    let malformed =
        || ApiError::bad_request("If-Match must be * or a quoted entity version, e.g. \"1.0.2\"");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    if text == "*" {
        return Ok(Precondition::Any);
    }
    let version = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(malformed)?;
    match version.parse::<Version>() {
        Ok(version) => Ok(Precondition::Version(version)),
        Err(_) if is_version_grammar(version) => Ok(Precondition::Unsatisfiable),
        Err(err) => Err(ApiError::bad_request(format!("If-Match: {err}"))),
    }
}

/// `MAJOR.MINOR.PATCH` with decimal components without leading zeros, of any size.
fn is_version_grammar(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (*p == "0" || !p.starts_with('0'))
        })
}

/// The actor header's grammar: 1 to 256 bytes of visible ASCII, spaces inside only.
fn valid_actor(actor: &str) -> bool {
    let bytes = actor.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes[0] != b' '
        && bytes[bytes.len() - 1] != b' '
}

/// The unit of work's audit fields: the actor named by the caller (or the token), the request
/// id as correlation id, and which token made the call.
pub(crate) fn uow_options(caller: &Caller, headers: &HeaderMap) -> Result<UowOptions, ApiError> {
    let actor = match headers.get(ACTOR_HEADER) {
        Some(value) => value
            .to_str()
            .ok()
            .filter(|actor| valid_actor(actor))
            .ok_or_else(|| {
                ApiError::bad_request("vellum-actor must be 1 to 256 bytes of visible ASCII")
            })?
            .to_string(),
        None => caller.label(),
    };
    let mut options =
        UowOptions::new(actor).metadata(json!({"via": "http", "caller": caller.label()}));
    if let Some(request_id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        options = options.correlation_id(request_id);
    }
    Ok(options)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("built from validated names, versions and UUIDs")
}
