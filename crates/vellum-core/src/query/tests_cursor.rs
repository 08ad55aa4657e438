//! Cursors: they continue exactly their own query, and nothing else gets through.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::tests::{KEY, compiled, ctx, order_schema};
use super::*;
use crate::Version;

fn base() -> Value {
    json!({
        "filter": {"path": "/status", "op": "eq", "value": "open"},
        "order": [{"path": "/total", "direction": "desc"}, {"field": "created_at"}],
        "limit": 10
    })
}

fn compile_body(body: &Value, key: &[u8]) -> Result<CompiledQuery, QueryError> {
    let schema = compiled(&order_schema());
    let query: Query = serde_json::from_value(body.clone()).unwrap();
    compile(
        &query,
        &QueryContext {
            cursor_key: key,
            ..ctx(&schema)
        },
    )
}

fn cursor_of(body: &Value) -> String {
    compile_body(body, KEY).unwrap().cursor_after(RowKeys {
        entity_id: Uuid::from_u128(9),
        created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap(),
        entity_version: &Version::INITIAL,
        payload: &json!({"status": "open", "total": 12}),
    })
}

fn with_cursor(body: &Value, cursor: &str) -> Value {
    let mut body = body.clone();
    body["cursor"] = json!(cursor);
    body
}

#[track_caller]
fn assert_cursor_refused(body: Value, key: &[u8], message: &str) {
    let error = compile_body(&body, key).expect_err("cursor refused");
    assert_eq!(error.pointer, "/cursor");
    assert!(error.message.starts_with(message), "{:?}", error.message);
}

#[test]
fn a_cursor_round_trips_into_its_key_values() {
    let cursor = cursor_of(&base());
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let compiled = compile_body(&with_cursor(&base(), &cursor), KEY).unwrap();
    let created = SqlParam::Timestamp(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    // The bound on the first key, then the expansion.
    assert_eq!(
        compiled.params[2..11],
        [
            SqlParam::Path(vec!["total".into()]),
            SqlParam::Json(json!(12)),
            SqlParam::Path(vec!["total".into()]),
            SqlParam::Json(json!(12)),
            SqlParam::Path(vec!["total".into()]),
            SqlParam::Json(json!(12)),
            created.clone(),
            created,
            SqlParam::Uuid(Uuid::from_u128(9)),
        ]
    );
}

#[test]
fn a_changed_limit_keeps_the_cursor_valid() {
    let cursor = cursor_of(&base());
    let mut body = with_cursor(&base(), &cursor);
    body["limit"] = json!(100);
    assert_eq!(compile_body(&body, KEY).unwrap().limit(), 100);
}

#[test]
fn a_tampered_or_truncated_cursor_is_invalid() {
    let cursor = cursor_of(&base());
    let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x01;
        let tampered = URL_SAFE_NO_PAD.encode(&flipped);
        assert_cursor_refused(with_cursor(&base(), &tampered), KEY, "cursor is invalid");
    }
    for len in [0, 1, 10, bytes.len() - 1] {
        let truncated = URL_SAFE_NO_PAD.encode(&bytes[..len]);
        assert_cursor_refused(with_cursor(&base(), &truncated), KEY, "cursor is invalid");
    }
    for garbage in ["!!!", "a", &format!("{cursor}=")] {
        assert_cursor_refused(with_cursor(&base(), garbage), KEY, "cursor is invalid");
    }
}

#[test]
fn a_cursor_signed_with_another_key_is_invalid() {
    let cursor = cursor_of(&base());
    assert_cursor_refused(
        with_cursor(&base(), &cursor),
        b"another key",
        "cursor is invalid",
    );
}

#[test]
fn a_cursor_of_another_query_does_not_belong() {
    let cursor = cursor_of(&base());
    let changes = [
        ("/filter/value", json!("paid")),
        ("/filter/op", json!("ne")),
        ("/order/0/direction", json!("asc")),
        ("/order/1/field", json!("updated_at")),
    ];
    for (pointer, replacement) in changes {
        let mut other = with_cursor(&base(), &cursor);
        *other.pointer_mut(pointer).unwrap() = replacement;
        assert_cursor_refused(other, KEY, "cursor does not belong to this query");
    }
    for (field, value) in [
        ("as_of", json!("2024-01-01T00:00:00Z")),
        ("ids", json!([Uuid::from_u128(9)])),
        ("include_deleted", json!(true)),
    ] {
        let mut other = with_cursor(&base(), &cursor);
        other[field] = value;
        assert_cursor_refused(other, KEY, "cursor does not belong to this query");
    }
    let mut other = with_cursor(&base(), &cursor);
    other.as_object_mut().unwrap().remove("filter");
    assert_cursor_refused(other, KEY, "cursor does not belong to this query");
}

#[test]
fn a_json_null_and_a_missing_path_are_different_cursor_values() {
    let body = json!({"order": [{"path": "/meta/rank"}]});
    let compiled = compile_body(&body, KEY).unwrap();
    let cursor = |payload: Value| {
        compiled.cursor_after(RowKeys {
            entity_id: Uuid::from_u128(1),
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            updated_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            entity_version: &Version::INITIAL,
            payload: &payload,
        })
    };
    let null = compile_body(
        &with_cursor(&body, &cursor(json!({"meta": {"rank": null}}))),
        KEY,
    )
    .unwrap();
    assert!(
        null.params.contains(&SqlParam::Json(Value::Null)),
        "{null:?}"
    );
    let missing = compile_body(&with_cursor(&body, &cursor(json!({"meta": {}}))), KEY).unwrap();
    assert!(missing.sql.contains("IS NULL AND"), "{}", missing.sql);
    assert!(!missing.params.contains(&SqlParam::Json(Value::Null)));
}
