//! Compiler tests: the exact statement for ids, deletion, as-of reads, order keys and keysets.

use serde_json::{Value, json};
use uuid::Uuid;

use super::tests::{COLUMNS, TABLE, at, jsonb, path, run};
use super::*;
use crate::Version;

#[test]
fn ids_include_deleted_and_filter_combine_in_order() {
    let ids = vec![Uuid::from_u128(1), Uuid::from_u128(2)];
    let compiled = run(json!({
        "ids": ids,
        "include_deleted": true,
        "filter": {"path": "/total", "op": "exists"},
        "limit": 2
    }))
    .unwrap();
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active \
             AND (CASE WHEN e.is_active THEN e.entity_id END) = ANY($1::uuid[]) \
             AND ((e.payload #> $2::text[]) IS NOT NULL) ORDER BY e.entity_id ASC LIMIT $3"
        )
    );
    assert_eq!(
        compiled.params,
        [
            SqlParam::UuidArray(ids),
            path(&["total"]),
            SqlParam::BigInt(3)
        ]
    );
}

#[test]
fn as_of_reads_the_latest_version_at_that_time() {
    let t = at("2024-05-01T12:00:00Z");
    let ids = vec![Uuid::from_u128(7)];
    let compiled = run(json!({
        "as_of": "2024-05-01T12:00:00Z",
        "ids": ids,
        "filter": {"path": "/status", "op": "eq", "value": "paid"}
    }))
    .unwrap();
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM (SELECT DISTINCT ON (e.entity_id) e.* FROM {TABLE} e \
             WHERE e.created_at <= $1::timestamptz AND e.entity_id = ANY($2::uuid[]) \
             ORDER BY e.entity_id, e.created_at DESC, e.revision DESC) e \
             WHERE (e.deleted_at IS NULL OR e.deleted_at > $1::timestamptz) \
             AND ((e.payload #> $3::text[]) = $4::jsonb) ORDER BY e.entity_id ASC LIMIT $5"
        )
    );
    assert_eq!(
        compiled.params,
        [
            SqlParam::Timestamp(t),
            SqlParam::UuidArray(ids),
            path(&["status"]),
            jsonb(json!("paid")),
            SqlParam::BigInt(51)
        ]
    );
    assert_eq!(compiled.as_of(), Some(t));

    let compiled = run(json!({"as_of": "2024-05-01T12:00:00Z", "include_deleted": true})).unwrap();
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM (SELECT DISTINCT ON (e.entity_id) e.* FROM {TABLE} e \
             WHERE e.created_at <= $1::timestamptz \
             ORDER BY e.entity_id, e.created_at DESC, e.revision DESC) e \
             ORDER BY e.entity_id ASC LIMIT $2"
        )
    );
}

#[test]
fn order_keys_render_with_direction_and_the_entity_id_tiebreaker() {
    let compiled = run(json!({"order": [
        {"path": "/total", "direction": "desc"},
        {"path": "/placed_at"},
        {"field": "created_at", "direction": "desc"},
        {"field": "updated_at", "direction": "asc"},
        {"field": "entity_version", "direction": "desc"}
    ], "include_deleted": true}))
    .unwrap();
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active ORDER BY \
             (e.payload #> $1::text[]) DESC, vellum.to_timestamptz(e.payload #>> $2::text[]) ASC, \
             e.created_at DESC, e.updated_at ASC, string_to_array(e.entity_version, '.')::int[] DESC, \
             e.entity_id DESC LIMIT $3"
        )
    );
    assert_eq!(
        compiled.params,
        [path(&["total"]), path(&["placed_at"]), SqlParam::BigInt(51)]
    );
}

#[test]
fn updated_at_orders_current_versions_by_the_commit_time_column() {
    let order = json!([{"field": "updated_at", "direction": "desc"}]);
    let current = run(json!({"order": order})).unwrap();
    assert_eq!(
        current.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active AND e.deleted_at IS NULL \
             ORDER BY e.created_at DESC, e.entity_id DESC LIMIT $1"
        )
    );
    // Deleted and past versions may have changed state since they were written.
    let deleted = run(json!({"order": order, "include_deleted": true})).unwrap();
    assert!(
        deleted
            .sql
            .ends_with("ORDER BY e.updated_at DESC, e.entity_id DESC LIMIT $1"),
        "{}",
        deleted.sql
    );
    let past = run(json!({"order": order, "as_of": "2024-05-01T12:00:00Z"})).unwrap();
    assert!(
        past.sql
            .ends_with("ORDER BY e.updated_at DESC, e.entity_id DESC LIMIT $2"),
        "{}",
        past.sql
    );

    // The cursor continues the order it was issued for, on the column that serves it.
    let cursor = row_cursor(&current, &json!({}));
    let next = run(json!({"order": order, "cursor": cursor})).unwrap();
    assert_eq!(
        next.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active AND e.deleted_at IS NULL \
             AND ((e.created_at, e.entity_id) < ($1::timestamptz, $2::uuid)) \
             ORDER BY e.created_at DESC, e.entity_id DESC LIMIT $3"
        )
    );
    let by_created_at = json!([{"field": "created_at", "direction": "desc"}]);
    assert!(run(json!({"order": by_created_at, "cursor": cursor})).is_err());
}

#[test]
fn an_order_ending_with_entity_id_keeps_its_direction() {
    let compiled = run(json!({"order": [{"field": "entity_id", "direction": "desc"}]})).unwrap();
    assert!(
        compiled.sql.ends_with("ORDER BY e.entity_id DESC LIMIT $1"),
        "{}",
        compiled.sql
    );
}

fn row_cursor(compiled: &CompiledQuery, payload: &Value) -> String {
    compiled.cursor_after(RowKeys {
        entity_id: Uuid::from_u128(42),
        created_at: at("2024-01-02T03:04:05.123456Z"),
        updated_at: at("2024-01-02T03:04:05.123456Z"),
        entity_version: &Version::new(1, 2, 3),
        payload,
    })
}

/// The page of `body` after a row with `payload` (and [`row_cursor`]'s metadata).
fn next_page(body: &Value, payload: &Value) -> CompiledQuery {
    let cursor = row_cursor(&run(body.clone()).unwrap(), payload);
    let mut next = body.clone();
    next["cursor"] = json!(cursor);
    run(next).unwrap()
}

/// Ascending on a path documents may lack, they follow the cursor row of a document that has
/// it: read apart from the documents after it, each part an index range.
#[test]
fn a_cursor_continues_after_the_last_row_with_non_null_keys() {
    let body = json!({"order": [
        {"path": "/total", "direction": "asc"},
        {"field": "created_at", "direction": "desc"}
    ], "limit": 10});
    let compiled = next_page(&body, &json!({"total": 9.5}));
    let k = |p: usize| format!("(e.payload #> ${p}::text[])");
    let live = "e.is_active AND e.deleted_at IS NULL";
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM ((SELECT e.* FROM {TABLE} e WHERE {live} AND ({} >= $2::jsonb \
             AND (({} > $4::jsonb OR {} IS NULL) OR ({} = $6::jsonb AND (e.created_at < $7::timestamptz \
             OR (e.created_at = $8::timestamptz AND (e.entity_id < $9::uuid)))))) \
             ORDER BY {} ASC, e.created_at DESC, e.entity_id DESC LIMIT $11) \
             UNION ALL (SELECT e.* FROM {TABLE} e WHERE {live} AND {} IS NULL \
             ORDER BY {} ASC, e.created_at DESC, e.entity_id DESC LIMIT $11)) e \
             ORDER BY {} ASC, e.created_at DESC, e.entity_id DESC LIMIT $11",
            k(1),
            k(3),
            k(3),
            k(5),
            k(10),
            k(12),
            k(13),
            k(14),
        )
    );
    let created = SqlParam::Timestamp(at("2024-01-02T03:04:05.123456Z"));
    let total = || path(&["total"]);
    assert_eq!(
        compiled.params,
        [
            total(),
            jsonb(json!(9.5)),
            total(),
            jsonb(json!(9.5)),
            total(),
            jsonb(json!(9.5)),
            created.clone(),
            created,
            SqlParam::Uuid(Uuid::from_u128(42)),
            total(),
            SqlParam::BigInt(11),
            total(),
            total(),
            total(),
        ]
    );
    // Past versions have no index to read apart, nor has a path the schema does not index: one
    // statement.
    for (body, row) in [
        (
            json!({"order": [{"path": "/total"}], "as_of": "2024-05-01T12:00:00Z"}),
            json!({"total": 9.5}),
        ),
        (
            json!({"order": [{"path": "/customer/name"}]}),
            json!({"customer": {"name": "Ada"}}),
        ),
    ] {
        let sql = next_page(&body, &row).sql;
        assert!(!sql.contains("UNION"), "{sql}");
    }
}

/// Descending on an indexed path documents may lack, they come first: after the cursor row of a
/// document without it, the rest of them and every document with it are read apart, each part
/// an index range.
#[test]
fn a_descending_cursor_without_the_path_reads_the_documents_with_it_apart() {
    let body = json!({"order": [{"path": "/total", "direction": "desc"}], "limit": 10});
    let compiled = next_page(&body, &json!({}));
    let k = |p: usize| format!("(e.payload #> ${p}::text[])");
    let live = "e.is_active AND e.deleted_at IS NULL";
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM ((SELECT e.* FROM {TABLE} e WHERE {live} AND \
             ({} IS NULL AND (e.entity_id < $2::uuid)) ORDER BY {} DESC, e.entity_id DESC LIMIT $4) \
             UNION ALL (SELECT e.* FROM {TABLE} e WHERE {live} AND {} IS NOT NULL \
             ORDER BY {} DESC, e.entity_id DESC LIMIT $4)) e \
             ORDER BY {} DESC, e.entity_id DESC LIMIT $4",
            k(1),
            k(3),
            k(5),
            k(6),
            k(7),
        )
    );
    assert_eq!(
        compiled.params[..4],
        [
            path(&["total"]),
            SqlParam::Uuid(Uuid::from_u128(42)),
            path(&["total"]),
            SqlParam::BigInt(11),
        ]
    );
}

#[test]
fn a_cursor_on_a_missing_path_uses_is_null_tests() {
    for (direction, expected) in [
        // Ascending, missing paths come last: after a missing one only missing ones with a
        // greater id remain.
        (
            "asc",
            "((e.payload #> $1::text[]) IS NULL AND (e.entity_id > $2::uuid))",
        ),
        // Descending, missing paths come first: every present one follows, and the missing ones
        // with a smaller id.
        (
            "desc",
            "((e.payload #> $1::text[]) IS NOT NULL OR ((e.payload #> $2::text[]) IS NULL AND (e.entity_id < $3::uuid)))",
        ),
    ] {
        let body = json!({"order": [{"path": "/meta/rank", "direction": direction}]});
        let compiled = next_page(&body, &json!({"meta": {}}));
        assert!(
            compiled
                .sql
                .contains(&format!("e.deleted_at IS NULL AND {expected} ORDER BY")),
            "{direction}: {}",
            compiled.sql
        );
    }
}

#[test]
fn cursor_keys_of_versions_and_date_time_paths_are_typed() {
    let body = json!({"order": [{"path": "/placed_at", "direction": "desc"}, {"field": "entity_version"}]});
    let compiled = next_page(&body, &json!({"placed_at": "2024-01-01T00:00:00Z"}));
    let at_cursor = SqlParam::Timestamp(at("2024-01-01T00:00:00Z"));
    assert_eq!(
        &compiled.params[..6],
        [
            path(&["placed_at"]),
            at_cursor.clone(),
            path(&["placed_at"]),
            at_cursor.clone(),
            path(&["placed_at"]),
            at_cursor,
        ]
    );
    assert!(compiled.params.contains(&SqlParam::IntArray(vec![1, 2, 3])));
    // Descending, documents missing the path come first: every row after the cursor row is at
    // or below its value, a bound an index can start at.
    assert!(
        compiled.sql.contains(
            "AND (vellum.to_timestamptz(e.payload #>> $1::text[]) <= $2::timestamptz AND \
             (vellum.to_timestamptz(e.payload #>> $3::text[]) < $4::timestamptz OR"
        ),
        "{}",
        compiled.sql
    );
    assert!(
        compiled
            .sql
            .contains("string_to_array(e.entity_version, '.')::int[] > $7::int[]"),
        "{}",
        compiled.sql
    );
}

/// Ascending, documents missing the path sort last, after the cursor row: only a filter that
/// requires the path lets the first key be bounded (without one, see above).
#[test]
fn a_cursor_bounds_an_ascending_path_the_filter_requires() {
    let body_with_keys = |order: &[Value]| {
        json!({
            "filter": {"and": [
                {"path": "/status", "op": "eq", "value": "open"},
                {"path": "/total", "op": "gte", "value": 5}
            ]},
            "order": order,
            "limit": 10
        })
    };
    let body = body_with_keys(&[json!({"path": "/total"})]);
    let compiled = next_page(&body, &json!({"total": 9.5}));
    let k = |p: usize| format!("(e.payload #> ${p}::text[])");
    // The path and the tiebreaker together: the index on both starts at the cursor row, and
    // the comparison is the whole keyset.
    assert!(
        compiled.sql.ends_with(&format!(
            "AND (({}, e.entity_id) > ($6::jsonb, $7::uuid)) ORDER BY {} ASC, e.entity_id ASC \
             LIMIT $9",
            k(5),
            k(8)
        )),
        "{}",
        compiled.sql
    );
    assert_eq!(
        compiled.params[4..7],
        [
            path(&["total"]),
            jsonb(json!(9.5)),
            SqlParam::Uuid(Uuid::from_u128(42))
        ]
    );
    assert!(!compiled.sql.contains("UNION"), "{}", compiled.sql);
    // With a second key, the path alone.
    let body = body_with_keys(&[json!({"path": "/total"}), json!({"field": "created_at"})]);
    let compiled = next_page(&body, &json!({"total": 9.5}));
    assert!(
        compiled.sql.contains(&format!(
            "AND ({} >= $6::jsonb AND (({} > $8::jsonb OR {} IS NULL) OR",
            k(5),
            k(7),
            k(7)
        )),
        "{}",
        compiled.sql
    );
    // Under `or` or `not`, a condition does not make the path required. Nor does one that
    // holds for a date-time path's values that are no date-time (its key is NULL for them).
    let total = (json!("/total"), json!({"total": 9.5}));
    let placed = (
        json!("/placed_at"),
        json!({"placed_at": "2024-01-01T00:00:00Z"}),
    );
    for (filter, (key, row)) in [
        (
            json!({"or": [{"path": "/total", "op": "gte", "value": 5}, {"path": "/status", "op": "eq", "value": "open"}]}),
            total.clone(),
        ),
        (
            json!({"not": {"path": "/total", "op": "lt", "value": 5}}),
            total,
        ),
        (
            json!({"path": "/placed_at", "op": "ne", "value": null}),
            placed.clone(),
        ),
        (json!({"path": "/placed_at", "op": "exists"}), placed),
    ] {
        let body = json!({"filter": filter, "order": [{"path": key}], "limit": 10});
        let sql = next_page(&body, &row).sql;
        // The documents missing the path are read too, apart from the bounded range.
        let (range, missing) = sql.split_once(" UNION ALL ").expect(&sql);
        assert!(range.contains("e.entity_id) > ($"), "{sql}");
        assert!(
            missing.starts_with(&format!(
                "(SELECT e.* FROM {TABLE} e WHERE e.is_active AND e.deleted_at IS NULL AND ("
            )),
            "{sql}"
        );
        assert!(missing.contains("::text[]) IS NULL ORDER BY"), "{sql}");
    }
}

#[test]
fn the_same_structure_gives_the_same_text() {
    let a = run(json!({"filter": {"path": "/status", "op": "eq", "value": "open"}})).unwrap();
    let b = run(json!({"filter": {"path": "/status", "op": "eq", "value": "paid"}})).unwrap();
    assert_eq!(a.sql, b.sql);
    assert_ne!(a.params, b.params);
}

#[test]
fn query_errors_display_their_pointer() {
    let error = QueryError::new("/limit", "limit must be between 1 and 1000, got 0");
    assert_eq!(
        error.to_string(),
        r#"at "/limit": limit must be between 1 and 1000, got 0"#
    );
    assert_eq!(QueryError::new("", "bad").to_string(), "bad");
}

#[test]
fn debug_output_does_not_show_the_cursor_key() {
    let compiled = run(json!({})).unwrap();
    assert!(!format!("{compiled:?}").contains("cursor key"));
}
