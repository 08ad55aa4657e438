//! Compiler tests: the exact SQL and parameters of each operator, and each refusal.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::schema::{CompiledSchema, SchemaLimits};

pub(super) const TABLE: &str = r#""shop"."orders""#;
pub(super) const COLUMNS: &str = "e.entity_id, e.entity_version, e.payload";
pub(super) const KEY: &[u8] = b"cursor key";

/// An order: closed at the top and in `customer`, open in `meta`.
pub(super) fn order_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "customer": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": ["string", "null"]},
                    "vip": {"type": "boolean"}
                }
            },
            "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
            "total": {"type": "number", "x-vellum-index": true},
            "status": {"enum": ["open", "paid", "shipped"]},
            "placed_at": {"type": "string", "format": "date-time", "x-vellum-index": true},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object"}
        },
        "$defs": {
            "line": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1}
                },
                "required": ["sku", "quantity"]
            }
        }
    })
}

/// `definition` compiled as the store compiles an active schema version.
pub(super) fn compiled(definition: &Value) -> CompiledSchema {
    CompiledSchema::compile(definition, &SchemaLimits::default()).expect("a valid schema")
}

pub(super) fn ctx(schema: &CompiledSchema) -> QueryContext<'_> {
    QueryContext {
        table: TABLE,
        columns: COLUMNS,
        schema,
        cursor_key: KEY,
    }
}

pub(super) fn query(body: Value) -> Query {
    serde_json::from_value(body).expect("a valid query body")
}

pub(super) fn run(body: Value) -> Result<CompiledQuery, QueryError> {
    compile(&query(body), &ctx(&compiled(&order_schema())))
}

pub(super) fn path(segments: &[&str]) -> SqlParam {
    SqlParam::Path(segments.iter().map(|s| (*s).to_owned()).collect())
}

pub(super) fn jsonb(value: Value) -> SqlParam {
    SqlParam::Json(value)
}

pub(super) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// Asserts that `filter` compiles to the live statement with `fragment` as its filter.
#[track_caller]
fn assert_filter(filter: Value, fragment: &str, mut params: Vec<SqlParam>) {
    let compiled = run(json!({ "filter": filter })).expect("compiles");
    let limit = params.len() + 1;
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active AND e.deleted_at IS NULL \
             AND ({fragment}) ORDER BY e.entity_id ASC LIMIT ${limit}"
        )
    );
    params.push(SqlParam::BigInt(51));
    assert_eq!(compiled.params, params);
}

#[track_caller]
fn assert_refused(body: Value, pointer: &str, message: &str) {
    let error = run(body).expect_err("refused");
    assert_eq!(
        (error.pointer.as_str(), error.message.as_str()),
        (pointer, message)
    );
}

#[track_caller]
fn assert_filter_refused(filter: Value, pointer: &str, message: &str) {
    assert_refused(json!({ "filter": filter }), pointer, message);
}

#[test]
fn a_query_without_anything_reads_live_rows_by_entity_id() {
    let compiled = run(json!({})).unwrap();
    assert_eq!(
        compiled.sql,
        format!(
            "SELECT {COLUMNS} FROM {TABLE} e WHERE e.is_active AND e.deleted_at IS NULL \
             ORDER BY e.entity_id ASC LIMIT $1"
        )
    );
    assert_eq!(compiled.params, [SqlParam::BigInt(51)]);
    assert_eq!(compiled.limit(), 50);
    assert_eq!(compiled.as_of(), None);
}

#[test]
fn eq_and_ne_compare_as_jsonb_on_numbers_strings_booleans_and_untyped_paths() {
    let cases = [
        (json!("/total"), json!(12.5), vec!["total"]),
        (json!("/status"), json!("open"), vec!["status"]),
        (json!("/customer/vip"), json!(true), vec!["customer", "vip"]),
        (
            json!("/meta/source"),
            json!({"a": [1]}),
            vec!["meta", "source"],
        ),
        (
            json!("/lines/0/sku"),
            json!("A-1"),
            vec!["lines", "0", "sku"],
        ),
        (json!("/tags"), json!(["a"]), vec!["tags"]),
    ];
    for (p, value, segments) in cases {
        for (op, sign) in [("eq", "="), ("ne", "<>")] {
            assert_filter(
                json!({"path": p, "op": op, "value": value}),
                &format!("(e.payload #> $1::text[]) {sign} $2::jsonb"),
                vec![path(&segments), jsonb(value.clone())],
            );
        }
    }
}

#[test]
fn eq_null_matches_an_explicit_json_null_on_any_kind() {
    for p in ["/customer/email", "/total", "/placed_at"] {
        let segments: Vec<&str> = p[1..].split('/').collect();
        assert_filter(
            json!({"path": p, "op": "eq", "value": null}),
            "(e.payload #> $1::text[]) = $2::jsonb",
            vec![path(&segments), jsonb(Value::Null)],
        );
    }
}

/// A range on numbers open upwards is closed by `false`, the least boolean `jsonb` orders after
/// every number, and one on strings open downwards by `null`, before every string; the other two
/// check the type.
#[test]
fn range_operators_guard_the_json_type() {
    let j = "(e.payload #> $1::text[])";
    let typed = |name: &str, sign: &str| {
        format!("(jsonb_typeof(e.payload #> $1::text[]) = '{name}' AND {j} {sign} $2::jsonb)")
    };
    for (op, sign) in [("lt", "<"), ("lte", "<="), ("gt", ">"), ("gte", ">=")] {
        let number = match sign {
            ">" | ">=" => format!("({j} {sign} $2::jsonb AND {j} < 'false'::jsonb)"),
            _ => typed("number", sign),
        };
        assert_filter(
            json!({"path": "/total", "op": op, "value": 100}),
            &number,
            vec![path(&["total"]), jsonb(json!(100))],
        );
        let string = match sign {
            "<" | "<=" => format!("({j} {sign} $2::jsonb AND {j} > 'null'::jsonb)"),
            _ => typed("string", sign),
        };
        assert_filter(
            json!({"path": "/customer/name", "op": op, "value": "M"}),
            &string,
            vec![path(&["customer", "name"]), jsonb(json!("M"))],
        );
    }
}

#[test]
fn range_operators_on_untyped_paths_take_the_type_of_the_value() {
    assert_filter(
        json!({"path": "/meta/score", "op": "lt", "value": 3}),
        "(jsonb_typeof(e.payload #> $1::text[]) = 'number' AND (e.payload #> $1::text[]) < $2::jsonb)",
        vec![path(&["meta", "score"]), jsonb(json!(3))],
    );
    assert_filter(
        json!({"path": "/meta/code", "op": "lte", "value": "B"}),
        "((e.payload #> $1::text[]) <= $2::jsonb AND (e.payload #> $1::text[]) > 'null'::jsonb)",
        vec![path(&["meta", "code"]), jsonb(json!("B"))],
    );
}

#[test]
fn date_times_compare_as_timestamps() {
    for (op, sign) in [
        ("eq", "="),
        ("ne", "<>"),
        ("lt", "<"),
        ("lte", "<="),
        ("gt", ">"),
        ("gte", ">="),
    ] {
        assert_filter(
            json!({"path": "/placed_at", "op": op, "value": "2024-03-01T10:00:00+01:00"}),
            &format!("vellum.to_timestamptz(e.payload #>> $1::text[]) {sign} $2::timestamptz"),
            vec![
                path(&["placed_at"]),
                SqlParam::Timestamp(Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()),
            ],
        );
    }
}

#[test]
fn date_time_values_are_rounded_to_microseconds_like_postgresql() {
    assert_filter(
        json!({"path": "/placed_at", "op": "gt", "value": "2024-03-01T09:00:00.1234567Z"}),
        "vellum.to_timestamptz(e.payload #>> $1::text[]) > $2::timestamptz",
        vec![
            path(&["placed_at"]),
            SqlParam::Timestamp(at("2024-03-01T09:00:00.123457Z")),
        ],
    );
}

#[test]
fn in_compares_with_any_of_an_array() {
    assert_filter(
        json!({"path": "/status", "op": "in", "value": ["open", "paid"]}),
        "(e.payload #> $1::text[]) = ANY($2::jsonb[])",
        vec![
            path(&["status"]),
            SqlParam::JsonArray(vec![json!("open"), json!("paid")]),
        ],
    );
    assert_filter(
        json!({"path": "/placed_at", "op": "in", "value": ["2024-01-01T00:00:00Z"]}),
        "vellum.to_timestamptz(e.payload #>> $1::text[]) = ANY($2::timestamptz[])",
        vec![
            path(&["placed_at"]),
            SqlParam::TimestampArray(vec![at("2024-01-01T00:00:00Z")]),
        ],
    );
}

#[test]
fn an_empty_in_matches_nothing() {
    assert_filter(
        json!({"path": "/status", "op": "in", "value": []}),
        "false",
        vec![],
    );
}

#[test]
fn contains_is_a_substring_an_element_or_a_sub_object_by_kind() {
    assert_filter(
        json!({"path": "/customer/name", "op": "contains", "value": "ann"}),
        "strpos((e.payload #>> $1::text[]), $2::text) > 0",
        vec![path(&["customer", "name"]), SqlParam::Text("ann".into())],
    );
    assert_filter(
        json!({"path": "/tags", "op": "contains", "value": "gift"}),
        "(e.payload #> $1::text[]) @> $2::jsonb",
        vec![path(&["tags"]), jsonb(json!(["gift"]))],
    );
    assert_filter(
        json!({"path": "/lines", "op": "contains", "value": {"sku": "A-1"}}),
        "(e.payload #> $1::text[]) @> $2::jsonb",
        vec![path(&["lines"]), jsonb(json!([{"sku": "A-1"}]))],
    );
    assert_filter(
        json!({"path": "/meta", "op": "contains", "value": {"source": "web"}}),
        "(e.payload #> $1::text[]) @> $2::jsonb",
        vec![path(&["meta"]), jsonb(json!({"source": "web"}))],
    );
}

#[test]
fn contains_on_an_untyped_path_depends_on_the_stored_value() {
    assert_filter(
        json!({"path": "/meta/x", "op": "contains", "value": "a"}),
        "((jsonb_typeof(e.payload #> $1::text[]) = 'string' AND strpos((e.payload #>> $1::text[]), $2::text) > 0) OR (e.payload #> $1::text[]) @> $3::jsonb)",
        vec![
            path(&["meta", "x"]),
            SqlParam::Text("a".into()),
            jsonb(json!(["a"])),
        ],
    );
    assert_filter(
        json!({"path": "/meta/x", "op": "contains", "value": {"k": 1}}),
        "((e.payload #> $1::text[]) @> $2::jsonb OR (e.payload #> $1::text[]) @> $3::jsonb)",
        vec![
            path(&["meta", "x"]),
            jsonb(json!({"k": 1})),
            jsonb(json!([{"k": 1}])),
        ],
    );
    assert_filter(
        json!({"path": "/meta/x", "op": "contains", "value": 7}),
        "(e.payload #> $1::text[]) @> $2::jsonb",
        vec![path(&["meta", "x"]), jsonb(json!([7]))],
    );
}

#[test]
fn starts_with_tests_a_text_prefix() {
    assert_filter(
        json!({"path": "/customer/name", "op": "starts_with", "value": "An"}),
        "starts_with((e.payload #>> $1::text[]), $2::text)",
        vec![path(&["customer", "name"]), SqlParam::Text("An".into())],
    );
    assert_filter(
        json!({"path": "/meta/ref", "op": "starts_with", "value": "INV-"}),
        "(jsonb_typeof(e.payload #> $1::text[]) = 'string' AND starts_with((e.payload #>> $1::text[]), $2::text))",
        vec![path(&["meta", "ref"]), SqlParam::Text("INV-".into())],
    );
}

#[test]
fn exists_tests_presence() {
    assert_filter(
        json!({"path": "/customer/email", "op": "exists"}),
        "(e.payload #> $1::text[]) IS NOT NULL",
        vec![path(&["customer", "email"])],
    );
}

#[test]
fn and_or_not_nest_with_parentheses_and_not_makes_missing_paths_true() {
    assert_filter(
        json!({"or": [
            {"and": [
                {"path": "/status", "op": "eq", "value": "open"},
                {"not": {"path": "/customer/vip", "op": "eq", "value": true}}
            ]},
            {"path": "/total", "op": "exists"}
        ]}),
        "(((e.payload #> $1::text[]) = $2::jsonb AND NOT COALESCE((e.payload #> $3::text[]) = $4::jsonb, false)) OR (e.payload #> $5::text[]) IS NOT NULL)",
        vec![
            path(&["status"]),
            jsonb(json!("open")),
            path(&["customer", "vip"]),
            jsonb(json!(true)),
            path(&["total"]),
        ],
    );
    assert_filter(
        json!({"not": {"and": [{"path": "/total", "op": "exists"}, {"path": "/tags", "op": "exists"}]}}),
        "NOT COALESCE(((e.payload #> $1::text[]) IS NOT NULL AND (e.payload #> $2::text[]) IS NOT NULL), false)",
        vec![path(&["total"]), path(&["tags"])],
    );
}

#[test]
fn empty_and_is_true_and_empty_or_is_false() {
    assert_filter(json!({"and": []}), "true", vec![]);
    assert_filter(json!({"or": []}), "false", vec![]);
    assert_filter(
        json!({"not": {"or": []}}),
        "NOT COALESCE(false, false)",
        vec![],
    );
}

#[test]
fn values_of_the_wrong_kind_are_refused_with_what_the_path_is() {
    let cases = [
        (
            json!({"path": "/total", "op": "eq", "value": "12"}),
            "/filter/value",
            "/total is a number; eq needs a number, got a string",
        ),
        (
            json!({"path": "/customer/vip", "op": "gt", "value": true}),
            "/filter/value",
            "/customer/vip is a boolean; gt compares only numbers, strings and date-times",
        ),
        (
            json!({"path": "/status", "op": "lt", "value": 3}),
            "/filter/value",
            "/status is a string; lt needs a string, got a number",
        ),
        (
            json!({"path": "/meta/x", "op": "gte", "value": null}),
            "/filter/value",
            "/meta/x is untyped; gte needs a number, a string or a date-time, got null",
        ),
        (
            json!({"path": "/placed_at", "op": "gt", "value": "yesterday"}),
            "/filter/value",
            "/placed_at is a date-time string; gt needs an RFC 3339 date-time, got a string that is not an RFC 3339 date-time",
        ),
        (
            json!({"path": "/placed_at", "op": "in", "value": ["2024-01-01T00:00:00Z", 5]}),
            "/filter/value/1",
            "/placed_at is a date-time string; in needs an RFC 3339 date-time, got a number",
        ),
        (
            json!({"path": "/total", "op": "in", "value": [1, "2"]}),
            "/filter/value/1",
            "/total is a number; in needs a number, got a string",
        ),
        (
            json!({"path": "/total", "op": "contains", "value": 1}),
            "/filter/value",
            "/total is a number; contains applies to strings, arrays and objects",
        ),
        (
            json!({"path": "/customer/name", "op": "contains", "value": ["a"]}),
            "/filter/value",
            "/customer/name is a string; contains needs a string, got an array",
        ),
        (
            json!({"path": "/meta", "op": "contains", "value": "a"}),
            "/filter/value",
            "/meta is an object; contains needs an object, got a string",
        ),
        (
            json!({"path": "/total", "op": "starts_with", "value": "1"}),
            "/filter/value",
            "/total is a number; starts_with applies to strings",
        ),
        (
            json!({"path": "/placed_at", "op": "starts_with", "value": "2024"}),
            "/filter/value",
            "/placed_at is a date-time string; compare it with gte and lt instead of starts_with",
        ),
    ];
    for (filter, pointer, message) in cases {
        assert_filter_refused(filter, pointer, message);
    }
}

#[test]
fn paths_the_schema_rules_out_are_refused() {
    assert_filter_refused(
        json!({"and": [{"path": "/total", "op": "exists"}, {"path": "/totl", "op": "exists"}]}),
        "/filter/and/1/path",
        "unknown path /totl: the schema of the document does not allow it",
    );
    assert_filter_refused(
        json!({"path": "/customer/nmae", "op": "eq", "value": "x"}),
        "/filter/path",
        "unknown path /customer/nmae: the schema of /customer does not allow it",
    );
    assert_filter_refused(
        json!({"path": "/total/x", "op": "exists"}),
        "/filter/path",
        "unknown path /total/x: the schema of /total does not allow it",
    );
    assert_filter_refused(
        json!({"path": "/tags/first", "op": "exists"}),
        "/filter/path",
        "unknown path /tags/first: the schema of /tags does not allow it",
    );
    assert_refused(
        json!({"order": [{"field": "created_at"}, {"path": "/nope"}]}),
        "/order/1/path",
        "unknown path /nope: the schema of the document does not allow it",
    );
}

#[test]
fn nul_characters_are_refused() {
    assert_filter_refused(
        json!({"path": "/status", "op": "eq", "value": "a\u{0}b"}),
        "/filter/value",
        "strings must not contain NUL characters (PostgreSQL cannot store them)",
    );
    assert_filter_refused(
        json!({"path": "/meta", "op": "contains", "value": {"k\u{0}": 1}}),
        "/filter/value",
        "strings must not contain NUL characters (PostgreSQL cannot store them)",
    );
    assert_filter_refused(
        json!({"path": "/status", "op": "in", "value": ["open", "\u{0}"]}),
        "/filter/value/1",
        "strings must not contain NUL characters (PostgreSQL cannot store them)",
    );
    assert_filter_refused(
        json!({"path": "/meta/x", "op": "starts_with", "value": "\u{0}"}),
        "/filter/value",
        "strings must not contain NUL characters (PostgreSQL cannot store them)",
    );
    let error = serde_json::from_value::<Query>(
        json!({"filter": {"path": "/meta/a\u{0}", "op": "exists"}}),
    )
    .unwrap_err();
    assert!(error.to_string().contains("NUL"), "{error}");
}

#[test]
fn depth_size_and_count_limits_are_enforced() {
    let mut deep = json!({"path": "/total", "op": "exists"});
    for _ in 0..31 {
        deep = json!({ "not": deep });
    }
    assert!(run(json!({ "filter": deep.clone() })).is_ok());
    let error = run(json!({ "filter": {"not": deep} })).unwrap_err();
    assert_eq!(error.message, "the filter nests deeper than 32 levels");
    assert_eq!(error.pointer, format!("/filter{}", "/not".repeat(32)));

    let many = |n: usize| json!({"and": vec![json!({"path": "/total", "op": "exists"}); n]});
    assert!(run(json!({ "filter": many(256) })).is_ok());
    assert_filter_refused(
        many(257),
        "/filter/and/256",
        "the filter has more than 256 conditions",
    );

    let values: Vec<u32> = (0..1001).collect();
    assert_filter_refused(
        json!({"path": "/total", "op": "in", "value": values}),
        "/filter/value",
        "in takes at most 1000 values, got 1001",
    );
    let ids: Vec<Uuid> = (0..1001).map(Uuid::from_u128).collect();
    assert_refused(json!({ "ids": ids }), "/ids", "at most 1000 ids, got 1001");
    let order = vec![json!({"field": "created_at"}); 17];
    assert_refused(
        json!({ "order": order }),
        "/order",
        "at most 16 order keys, got 17",
    );
}

#[test]
fn limits_outside_1_to_1000_are_refused_and_the_statement_fetches_one_more() {
    assert_refused(
        json!({"limit": 0}),
        "/limit",
        "limit must be between 1 and 1000, got 0",
    );
    assert_refused(
        json!({"limit": 1001}),
        "/limit",
        "limit must be between 1 and 1000, got 1001",
    );
    let compiled = run(json!({"limit": 1000})).unwrap();
    assert_eq!(compiled.limit(), 1000);
    assert_eq!(compiled.params, [SqlParam::BigInt(1001)]);
}
