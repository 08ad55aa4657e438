//! Arbitrary filters with hostile strings in paths and values, executed: each either returns
//! exactly the documents Rust computes, or is refused as an invalid query. Never a database
//! error, never SQL made of input.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Error, WriteOptions, query::Query};

use crate::fixtures::{Fixture, id, v};
use crate::queries::evaluate;

/// Strings that break naive SQL building or escaping.
const HOSTILE: &[&str] = &[
    "'",
    "''",
    "\"",
    "$$",
    "$1",
    "$1::text",
    "--",
    "/*",
    "*/",
    ";",
    "\\",
    "\\'",
    "%",
    "_",
    "' OR '1'='1",
    "'); DROP TABLE orders.memo; --",
    "$$ || pg_sleep(1) || $$",
    "{a,b}",
    "\u{202E}rtl",
    "\u{1F600}",
    "e\u{301}",
    "\u{FEFF}",
    "ß",
    "NULL",
    "null",
    "true",
    "",
    "select",
    "a b",
];

/// Keys of the stored documents, as path segments; some are SQL- or pointer-hostile.
const KEYS: &[&str] = &["text", "n", "tags", "we'ird", "$$", "a/b", "~t", "missing"];

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn documents() -> Vec<Value> {
    let mut documents = Vec::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        for n in [0, 1, 2] {
            let mut document = json!({
                "text": format!("{text}{n}"),
                "n": (i * 3 + n) as f64 / 2.0,
                "tags": [text, HOSTILE[(i + n) % HOSTILE.len()]],
            });
            if n != 1 {
                document["we'ird"] = json!(text);
                document["$$"] = json!(n);
                document["a/b"] = json!(*text);
            }
            if n == 2 {
                document["~t"] = json!({"k": text});
            }
            documents.push(document);
        }
    }
    documents
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(HOSTILE).prop_map(|s| json!(s)),
        (proptest::sample::select(HOSTILE), 0..3u8).prop_map(|(s, n)| json!(format!("{s}{n}"))),
        (0..90i32).prop_map(|n| json!(f64::from(n) / 2.0)),
        proptest::sample::select(HOSTILE).prop_map(|s| json!(format!("{s}\u{0}"))),
    ]
}

fn condition() -> impl Strategy<Value = Value> {
    let path = prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(pointer),
        1 => proptest::sample::select(HOSTILE).prop_map(|s| format!("/{s}")),
    ];
    let op = proptest::sample::select(
        &[
            "eq",
            "ne",
            "in",
            "contains",
            "starts_with",
            "exists",
            "lt",
            "gte",
        ][..],
    );
    (path, op, value(), proptest::collection::vec(value(), 0..4)).prop_map(
        |(path, op, value, list)| match op {
            "exists" => json!({"path": path, "op": "exists"}),
            "in" => json!({"path": path, "op": "in", "value": list}),
            "starts_with" | "contains" => {
                json!({"path": path, "op": op, "value": value.as_str().unwrap_or("x")})
            }
            // Ranges on numbers only: string order is the database collation's.
            "lt" | "gte" => json!({"path": path, "op": op, "value": value.as_f64().unwrap_or(1.0)}),
            _ => json!({"path": path, "op": op, "value": value}),
        },
    )
}

fn filter() -> impl Strategy<Value = Value> {
    condition().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|f| json!({"and": f})),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|f| json!({"or": f})),
            inner.prop_map(|f| json!({"not": f})),
        ]
    })
}

/// A condition on an untyped path (the schema is `{"type": "object"}`), as documented.
fn untyped_condition(filter: &Value, found: &Value) -> bool {
    let value = &filter["value"];
    let number = |v: &Value| v.as_f64();
    let equal = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(_), Value::Number(_)) => number(a) == number(b),
        _ => a == b,
    };
    match filter["op"].as_str().unwrap() {
        "eq" => equal(found, value),
        "ne" => !equal(found, value),
        "in" => value.as_array().unwrap().iter().any(|v| equal(found, v)),
        "lt" => found.is_number() && number(found) < number(value),
        "gte" => found.is_number() && number(found) >= number(value),
        "contains" => match found {
            Value::String(s) => s.contains(value.as_str().unwrap()),
            Value::Array(items) => items.iter().any(|item| equal(item, value)),
            _ => false,
        },
        "starts_with" => found
            .as_str()
            .is_some_and(|s| s.starts_with(value.as_str().unwrap())),
        "exists" => true,
        op => panic!("unknown op {op}"),
    }
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\u{0}'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\u{0}') || has_nul(v)),
        _ => false,
    }
}

#[test]
fn hostile_filters_return_the_right_rows_or_a_clear_refusal() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let documents = documents();
    let (f, stored) = runtime.block_on(async {
        let f = Fixture::empty().await;
        f.service
            .schemas()
            .register(&id("memo"), v("1.0.0"), json!({"type": "object"}), false)
            .await
            .unwrap();
        let mut uow = f.service.begin("loader").await.unwrap();
        let mut stored = Vec::new();
        for document in &documents {
            let staged = uow
                .create(&id("memo"), document.clone(), WriteOptions::default())
                .await
                .unwrap();
            stored.push((staged.entity_id, document.clone()));
        }
        uow.commit().await.unwrap();
        stored.sort_by_key(|(id, _)| *id);
        (f, stored)
    });

    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&filter(), |filter| {
            let body = json!({"filter": filter, "limit": 1000});
            let query: Query = serde_json::from_value(body.clone())
                .map_err(|e| TestCaseError::fail(format!("{body}: not a query: {e}")))?;
            let result = runtime.block_on(f.service.query(&id("memo"), &query));
            match result {
                Ok(page) => {
                    let got: Vec<Uuid> = page.items.iter().map(|e| e.entity_id).collect();
                    let want: Vec<Uuid> = stored
                        .iter()
                        .filter(|(_, document)| evaluate(&filter, document, untyped_condition))
                        .map(|(id, _)| *id)
                        .collect();
                    prop_assert_eq!(got, want, "{}", body);
                    prop_assert!(!has_nul(&filter), "a NUL was accepted: {}", body);
                }
                Err(Error::InvalidQuery { message, .. }) => {
                    prop_assert!(has_nul(&filter), "{} refused: {}", body, message);
                }
                Err(other) => {
                    return Err(TestCaseError::fail(format!("{body}: {other}")));
                }
            }
            Ok(())
        })
        .unwrap();

    // The tables are intact: nothing in a value ever ran as SQL.
    let count: i64 = runtime.block_on(async {
        f.admin()
            .await
            .query_one("SELECT count(*) FROM orders.memo", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(count as usize, documents.len());
}
