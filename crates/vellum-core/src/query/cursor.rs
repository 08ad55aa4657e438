//! Opaque, signed keyset cursors.
//!
//! A cursor is URL-safe base64 (no padding) of `format (1 byte) || fingerprint (16 bytes) ||
//! keys (JSON) || HMAC-SHA256 (32 bytes)`, the HMAC over everything before it, keyed with the
//! context's cursor key. The fingerprint is a digest of what decides the query's result set and
//! order (not its limit); the keys are the last row's sort key values as a JSON array: `null` for
//! SQL NULL (a missing path), `[value]` for a `jsonb` key (so a JSON `null` is `[null]`), an RFC
//! 3339 string for a timestamp, a string for a uuid, `[major, minor, patch]` for a version.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use super::QueryError;
use super::keyset::{KeyExpr, SortKey};

const FORMAT: u8 = 1;
const FINGERPRINT_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// A sort key value of the last row of a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyValue {
    /// SQL NULL: a path key whose path the row does not have.
    Null,
    Json(Value),
    Timestamp(DateTime<Utc>),
    Uuid(Uuid),
    Version(Vec<i32>),
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

pub(crate) fn encode(key: &[u8], fingerprint: &[u8; 32], values: &[KeyValue]) -> String {
    let keys: Vec<Value> = values
        .iter()
        .map(|value| match value {
            KeyValue::Null => Value::Null,
            KeyValue::Json(value) => Value::Array(vec![value.clone()]),
            KeyValue::Timestamp(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            KeyValue::Uuid(id) => Value::String(id.to_string()),
            KeyValue::Version(v) => Value::from(v.clone()),
        })
        .collect();
    let mut bytes = vec![FORMAT];
    bytes.extend_from_slice(&fingerprint[..FINGERPRINT_LEN]);
    bytes.extend(serde_json::to_vec(&keys).expect("JSON values serialize"));
    let mut signer = mac(key);
    signer.update(&bytes);
    bytes.extend_from_slice(&signer.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn invalid() -> QueryError {
    QueryError::new("/cursor", "cursor is invalid")
}

/// The key values in `token`, if it was made by [`encode`] with `key` for a query with this
/// fingerprint and these sort keys.
pub(crate) fn decode(
    key: &[u8],
    fingerprint: &[u8; 32],
    token: &str,
    keys: &[SortKey],
) -> Result<Vec<KeyValue>, QueryError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() < 1 + FINGERPRINT_LEN + MAC_LEN {
        return Err(invalid());
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut verifier = mac(key);
    verifier.update(body);
    verifier.verify_slice(tag).map_err(|_| invalid())?;
    if body[0] != FORMAT {
        return Err(invalid());
    }
    if body[1..=FINGERPRINT_LEN] != fingerprint[..FINGERPRINT_LEN] {
        return Err(QueryError::new(
            "/cursor",
            "cursor does not belong to this query: it continues a query with another filter, \
             order, as_of, ids or include_deleted",
        ));
    }
    let values: Vec<Value> =
        serde_json::from_slice(&body[1 + FINGERPRINT_LEN..]).map_err(|_| invalid())?;
    if values.len() != keys.len() {
        return Err(invalid());
    }
    keys.iter()
        .zip(values)
        .map(|(key, value)| key_value(&key.expr, value).ok_or_else(invalid))
        .collect()
}

fn key_value(expr: &KeyExpr, value: Value) -> Option<KeyValue> {
    let timestamp = |value: &Value| {
        DateTime::parse_from_rfc3339(value.as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    match (expr, value) {
        (KeyExpr::Json(_) | KeyExpr::DateTime(_), Value::Null) => Some(KeyValue::Null),
        (KeyExpr::Json(_), Value::Array(mut wrapped)) if wrapped.len() == 1 => {
            wrapped.pop().map(KeyValue::Json)
        }
        (KeyExpr::DateTime(_) | KeyExpr::CreatedAt | KeyExpr::UpdatedAt, value) => {
            timestamp(&value).map(KeyValue::Timestamp)
        }
        (KeyExpr::EntityId, Value::String(id)) => id.parse().ok().map(KeyValue::Uuid),
        (KeyExpr::EntityVersion, Value::Array(parts)) if parts.len() == 3 => parts
            .iter()
            .map(|part| part.as_i64().and_then(|n| i32::try_from(n).ok()))
            .collect::<Option<Vec<i32>>>()
            .map(KeyValue::Version),
        _ => None,
    }
}
