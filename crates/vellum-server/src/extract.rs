//! Request extractors that turn every bad input into a clear problem response.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{AppState, error::ApiError};

/// Path parameters, validated by their types (`ServiceName`, `SchemaId`, `Version`, `Uuid`):
/// a malformed one is a 400 naming what is wrong.
pub(crate) struct ValidPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ValidPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ValidPath(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// Query parameters, validated the same way.
pub(crate) struct ValidQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ValidQuery(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// A JSON body: `application/json` (or any `+json` type), within the body-size limit, nested no
/// deeper than the configured depth, then deserialized into `T`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T> FromRequest<AppState> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(request.headers())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        let value = parse_json(&bytes, state.limits().max_json_depth)?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|err| ApiError::bad_request(format!("request body: {err}")))
    }
}

fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
    {
        Ok(())
    } else if media_type.is_empty() {
        Err(ApiError::unsupported_media_type(
            "a JSON body needs Content-Type: application/json",
        ))
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "expected Content-Type application/json, got {media_type}"
        )))
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large("the request body is larger than the configured limit")
    } else {
        ApiError::bad_request(rejection.body_text())
    }
}

/// Parses JSON and checks its nesting depth. serde_json refuses more than 128 levels on its own
/// (without recursing further), so a hostile 10,000-deep body costs nothing.
pub(crate) fn parse_json(bytes: &[u8], max_depth: usize) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        if err.to_string().contains("recursion limit") {
            ApiError::bad_request(format!("JSON nested deeper than {max_depth} levels"))
        } else {
            ApiError::bad_request(format!("malformed JSON: {err}"))
        }
    })?;
    if depth(&value) > max_depth {
        return Err(ApiError::bad_request(format!(
            "JSON nested deeper than {max_depth} levels"
        )));
    }
    Ok(value)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers() {
        assert_eq!(depth(&serde_json::json!(1)), 0);
        assert_eq!(depth(&serde_json::json!({"a": [1, {"b": {}}]})), 4);
    }

    #[test]
    fn too_deep_json_is_refused_without_recursing() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = parse_json(deep.as_bytes(), 64).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let shallow_enough = "[".repeat(64) + &"]".repeat(64);
        assert!(parse_json(shallow_enough.as_bytes(), 64).is_ok());
        let one_more = "[".repeat(65) + &"]".repeat(65);
        assert!(parse_json(one_more.as_bytes(), 64).is_err());
    }
}
