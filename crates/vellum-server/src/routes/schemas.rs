//! `/v1/{service}/schemas/...`: the schema repository of a service.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vellum::{
    CheckReport, CompatibilityMode, Migration, SchemaId, SchemaSummary, SchemaVersion,
    SchemaVersionInfo, Scope, ServiceName, Version,
};

use super::responses::{ReadErrors, StateChangeErrors, WriteErrors};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    extract::{JsonBody, ValidPath, ValidQuery},
};

/// A schema version to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    /// MAJOR.MINOR.PATCH; greater than every version already registered in its major line.
    version: Version,
    /// The JSON Schema (draft 2020-12), with local `$ref`s only.
    #[schema(value_type = Object)]
    definition: Value,
    /// Make this version the one writes use (the first version of a schema id always is).
    #[serde(default)]
    activate: bool,
    /// Required for a version that starts a new major line above another one, refused
    /// otherwise: the migration from a registered version (`from`) of the previous major line.
    /// Before registering, it is applied to up to 1000 current documents of that line and each
    /// result validated against `definition` (422 `invalid-migration` with samples if one
    /// fails).
    migration: Option<Migration>,
}

/// A candidate schema version to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    /// The version it would be registered as.
    version: Version,
    /// The JSON Schema (draft 2020-12).
    #[schema(value_type = Object)]
    definition: Value,
    /// The migration it would be registered with (a new major version): checked like
    /// registration checks it, and applied to the documents of the major line it comes from
    /// before they are validated.
    migration: Option<Migration>,
}

/// The compatibility mode to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompatibilityRequest {
    /// What new minor and patch versions must keep compatible with earlier ones.
    mode: CompatibilityMode,
}

/// The compatibility mode of a schema id.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Compatibility {
    /// The entity type.
    schema_id: SchemaId,
    /// What new minor and patch versions must keep compatible with earlier ones; `BACKWARD`
    /// unless set.
    mode: CompatibilityMode,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ShowQuery {
    /// Also return a soft-deleted version.
    #[serde(default)]
    include_deleted: bool,
}

/// The entity types of the service, each with its active version.
#[utoipa::path(
    get, path = "/v1/{service}/schemas", tag = "schemas",
    params(("service" = ServiceName, Path)),
    responses((status = 200, description = "Entity types", body = Vec<SchemaSummary>), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
) -> Result<Json<Vec<SchemaSummary>>, ApiError> {
    caller.require(&service, Scope::Read)?;
    Ok(Json(state.service(&service).await?.schemas().list().await?))
}

/// Register a schema version. The first version of a schema id becomes active and creates the
/// entity type's table. A later version is classified against its predecessor and refused with
/// 409 `incompatible-schema`, listing the changes, when its declared bump is smaller than the
/// change or its compatibility mode refuses it; the answer carries the `assessment`. A version
/// that starts a new major line comes with a `migration` (declarative operations on JSON
/// Pointers: rename, add, remove, set, cast, map), refused with 422 `invalid-migration` when it
/// is missing, comes from the wrong version, or turns current documents into invalid ones.
#[utoipa::path(
    post, path = "/v1/{service}/schemas/{schema_id}", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    request_body = RegisterRequest,
    responses((status = 201, description = "Registered", body = SchemaVersion), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&service, Scope::Schema)?;
    let handle = state.service(&service).await?;
    let registry = handle.schemas();
    let registered = match request.migration {
        Some(migration) => {
            registry
                .register_with_migration(
                    &schema_id,
                    request.version,
                    request.definition,
                    migration,
                    request.activate,
                )
                .await?
        }
        None => {
            registry
                .register(
                    &schema_id,
                    request.version,
                    request.definition,
                    request.activate,
                )
                .await?
        }
    };
    Ok((StatusCode::CREATED, Json(registered)))
}

/// Check a candidate version without registering it: whether registration would be accepted,
/// its classification against the predecessor under the compatibility mode (`changes`,
/// `class`, `declared`, `compatible`, `incompatibility`), and how many current documents it
/// would refuse, with samples. With a `migration`, the documents of the major line it comes
/// from are migrated before they are validated. The definition must be a valid schema (else
/// 422, as for registration).
#[utoipa::path(
    post, path = "/v1/{service}/schemas/{schema_id}/check", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    request_body = CheckRequest,
    responses((status = 200, description = "The report", body = CheckReport), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn check(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
    JsonBody(request): JsonBody<CheckRequest>,
) -> Result<Json<CheckReport>, ApiError> {
    caller.require(&service, Scope::Schema)?;
    let handle = state.service(&service).await?;
    Ok(Json(
        handle
            .schemas()
            .check_with_migration(
                &schema_id,
                request.version,
                &request.definition,
                request.migration.map(Into::into),
            )
            .await?,
    ))
}

/// Every version of a schema id in semver order, soft-deleted ones included.
#[utoipa::path(
    get, path = "/v1/{service}/schemas/{schema_id}/versions", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    responses((status = 200, description = "Versions", body = Vec<SchemaVersionInfo>), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
) -> Result<Json<Vec<SchemaVersionInfo>>, ApiError> {
    caller.require(&service, Scope::Read)?;
    Ok(Json(
        state
            .service(&service)
            .await?
            .schemas()
            .versions(&schema_id)
            .await?,
    ))
}

/// One schema version with its definition.
#[utoipa::path(
    get, path = "/v1/{service}/schemas/{schema_id}/versions/{version}", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("version" = Version, Path), ShowQuery),
    responses((status = 200, description = "The version", body = SchemaVersion), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, version)): ValidPath<(ServiceName, SchemaId, Version)>,
    ValidQuery(query): ValidQuery<ShowQuery>,
) -> Result<Json<SchemaVersion>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    Ok(Json(
        handle
            .schemas()
            .get(&schema_id, Some(version), query.include_deleted)
            .await?,
    ))
}

/// Make a version the one writes use.
#[utoipa::path(
    post, path = "/v1/{service}/schemas/{schema_id}/versions/{version}/activate", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("version" = Version, Path)),
    responses((status = 200, description = "Activated", body = SchemaVersionInfo), StateChangeErrors),
    security(("bearer" = []))
)]
pub(crate) async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, version)): ValidPath<(ServiceName, SchemaId, Version)>,
) -> Result<Json<SchemaVersionInfo>, ApiError> {
    caller.require(&service, Scope::Schema)?;
    let handle = state.service(&service).await?;
    Ok(Json(handle.schemas().activate(&schema_id, version).await?))
}

/// Soft-delete a version: it stays readable but can no longer be written with. The active
/// version cannot be deleted.
#[utoipa::path(
    delete, path = "/v1/{service}/schemas/{schema_id}/versions/{version}", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path), ("version" = Version, Path)),
    responses((status = 200, description = "Deleted", body = SchemaVersionInfo), StateChangeErrors),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id, version)): ValidPath<(ServiceName, SchemaId, Version)>,
) -> Result<Json<SchemaVersionInfo>, ApiError> {
    caller.require(&service, Scope::Schema)?;
    let handle = state.service(&service).await?;
    Ok(Json(handle.schemas().delete(&schema_id, version).await?))
}

/// The compatibility mode of a schema id (`BACKWARD` unless set, also before its first
/// version).
#[utoipa::path(
    get, path = "/v1/{service}/schemas/{schema_id}/compatibility", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    responses((status = 200, description = "The mode", body = Compatibility), ReadErrors),
    security(("bearer" = []))
)]
pub(crate) async fn compatibility(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
) -> Result<Json<Compatibility>, ApiError> {
    caller.require(&service, Scope::Read)?;
    let handle = state.service(&service).await?;
    let mode = handle.schemas().compatibility(&schema_id).await?;
    Ok(Json(Compatibility { schema_id, mode }))
}

/// Set the compatibility mode of a schema id; the next registrations obey it. It may be set
/// before the first version is registered.
#[utoipa::path(
    put, path = "/v1/{service}/schemas/{schema_id}/compatibility", tag = "schemas",
    params(("service" = ServiceName, Path), ("schema_id" = SchemaId, Path)),
    request_body = CompatibilityRequest,
    responses((status = 200, description = "The mode set", body = Compatibility), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn set_compatibility(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath((service, schema_id)): ValidPath<(ServiceName, SchemaId)>,
    JsonBody(request): JsonBody<CompatibilityRequest>,
) -> Result<Json<Compatibility>, ApiError> {
    caller.require(&service, Scope::Schema)?;
    let handle = state.service(&service).await?;
    handle
        .schemas()
        .set_compatibility(&schema_id, request.mode)
        .await?;
    Ok(Json(Compatibility {
        schema_id,
        mode: request.mode,
    }))
}
