//! `/v1/{service}` and `/v1/{service}/tokens`: provisioning and access.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use vellum::{IssuedToken, Scope, ServiceInfo, ServiceName};

use super::responses::WriteErrors;
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    extract::{JsonBody, ValidPath},
};

/// A token to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// What the token may do on the service: read, write, schema, admin.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// A note for whoever audits tokens later (at most 256 characters).
    #[schema(max_length = 256)]
    description: Option<String>,
}

/// Provision a service: its PostgreSQL schema, role and fixed tables. Admin token only.
/// Idempotent: 201 when created, 200 when it exists already.
#[utoipa::path(
    put, path = "/v1/{service}", tag = "services", operation_id = "provision_service",
    params(("service" = ServiceName, Path)),
    responses((status = 201, description = "Provisioned", body = ServiceInfo),
              (status = 200, description = "Already provisioned", body = ServiceInfo),
              WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn provision(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    let store = state.store();
    match store.create_service(&service).await {
        Ok(info) => Ok((StatusCode::CREATED, Json(info))),
        Err(vellum::Error::AlreadyExists { .. }) => {
            let info = store
                .services()
                .await?
                .into_iter()
                .find(|info| info.name == service)
                // A PostgreSQL schema of that name that is not a vellum service.
                .ok_or_else(|| {
                    ApiError::from(vellum::Error::AlreadyExists {
                        what: format!("schema {service}"),
                    })
                })?;
            Ok((StatusCode::OK, Json(info)))
        }
        Err(err) => Err(err.into()),
    }
}

/// Issue a token for the service with the given scopes. The token text is in the answer only:
/// vellum keeps its hash. Needs the admin token or a token with the `admin` scope on the service.
#[utoipa::path(
    post, path = "/v1/{service}/tokens", tag = "services", operation_id = "issue_token",
    params(("service" = ServiceName, Path)),
    request_body = TokenRequest,
    responses((status = 201, description = "Issued; `token` is shown this once", body = IssuedToken), WriteErrors),
    security(("bearer" = []))
)]
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ValidPath(service): ValidPath<ServiceName>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&service, Scope::Admin)?;
    if request.scopes.is_empty() {
        return Err(ApiError::bad_request(
            "scopes: give at least one of read, write, schema, admin",
        ));
    }
    if let Some(description) = &request.description
        && (description.chars().count() > 256 || description.contains('\0'))
    {
        return Err(ApiError::bad_request(
            "description: at most 256 characters, without U+0000",
        ));
    }
    let issued = state
        .store()
        .issue_token(&service, &request.scopes, request.description.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}
