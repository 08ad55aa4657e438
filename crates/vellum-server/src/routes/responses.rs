//! The error responses each operation documents in the OpenAPI description.

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses,
    openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response},
};

use crate::error::PROBLEM_JSON;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn responses(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|status| {
            let description = match status {
                400 => "Malformed request: path, query, header or body",
                401 => "No token, or an unknown or revoked one",
                403 => "The token is for another service or lacks the scope",
                404 => "No such service, entity type, version or entity",
                409 => {
                    "Conflict: stale version, already exists, not allowed in the current state, \
                     an incompatible schema version (with its changes), or an entity that \
                     cannot be presented as the schema version asked for"
                }
                412 => "If-Match names a version that is not the current one",
                413 => "Request body larger than the configured limit",
                415 => "Body is not JSON",
                422 => "Document, schema definition or migration invalid; every violation listed",
                503 => "Timed out, or the database is unreachable",
                _ => "Error",
            };
            (status.to_string(), problem(description))
        })
        .collect()
}

/// Errors of a read: bad input, auth, not found, unavailable.
pub(crate) struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 503])
    }
}

/// Errors of reading an entity, which may be presented as another schema version (409).
pub(crate) struct EntityReadErrors;

impl IntoResponses for EntityReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 409, 503])
    }
}

/// Errors of a write with a JSON body.
pub(crate) struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 409, 413, 415, 422, 503])
    }
}

/// Errors of a write honouring `If-Match`.
pub(crate) struct ConditionalWriteErrors;

impl IntoResponses for ConditionalWriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 409, 412, 413, 415, 422, 503])
    }
}

/// Errors of a state change without a body (activate, delete).
pub(crate) struct StateChangeErrors;

impl IntoResponses for StateChangeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 409, 412, 503])
    }
}

/// Errors of a read with a JSON body (queries).
pub(crate) struct QueryErrors;

impl IntoResponses for QueryErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[400, 401, 403, 404, 413, 415, 503])
    }
}
