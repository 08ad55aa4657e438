//! Properties of the compiler over generated filters with hostile strings, and of path typing
//! over generated schemas.

use std::collections::BTreeSet;
use std::mem::discriminant;

use chrono::{Duration, SecondsFormat, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::compile::parse_timestamp;
use super::tests::compiled;
use super::*;
use crate::schema::CompiledSchema;

const TABLE: &str = r#""shop"."orders""#;
const COLUMNS: &str = "e.entity_id, e.payload";

/// An open schema: undeclared keys are allowed everywhere objects are.
fn open_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "total": {"type": "number"},
            "status": {"type": "string"},
            "placed_at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "paid": {"type": "boolean"},
            "customer": {"type": "object", "properties": {"name": {"type": "string"}}},
            "meta": {"type": "object"}
        }
    })
}

const DECLARED: &[&str] = &[
    "total",
    "status",
    "placed_at",
    "tags",
    "paid",
    "customer",
    "name",
    "meta",
];

/// Pieces of hostile strings, any of which may end up in a value or a path segment.
const PIECES: &[&str] = &[
    "'",
    "''",
    "\"",
    "$$",
    "$1",
    "$2::text",
    "--",
    "/*",
    "*/",
    ";",
    "\\",
    "\\'",
    "%",
    "_",
    "?",
    "DROP TABLE orders",
    "' OR '1'='1",
    " OR true",
    "e.payload",
    ")",
    "(",
    "::jsonb",
    "{a,b}",
    "\u{202E}",
    "\u{05D0}\u{05DC}\u{05E3}",
    "😀",
    "\u{200B}",
    "\n",
    "x",
    "Robert');",
    "~",
    "/",
];

/// Pieces that never occur in compiler-written SQL text; every hostile string has one, so
/// finding it in the SQL can only mean it was pasted in.
const MARKERS: &[&str] = &[
    "\"", "$$", "--", "/*", ";", "\\", "%", "\u{202E}", "😀", "~", "/",
];

fn hostile() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(PIECES), 0..4),
        prop::sample::select(MARKERS),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut pieces, marker, at)| {
            let i = at.index(pieces.len() + 1);
            pieces.insert(i, marker);
            pieces.concat()
        })
}

/// A hostile string, sometimes with a NUL character.
fn hostile_value() -> impl Strategy<Value = String> {
    (hostile(), prop::bool::weighted(0.03))
        .prop_map(|(s, nul)| if nul { format!("{s}\0") } else { s })
}

fn date_time() -> impl Strategy<Value = String> {
    (0i64..4_000_000_000, 0u32..1_000_000).prop_map(|(secs, micros)| {
        let t = Utc.timestamp_opt(secs, micros * 1000).unwrap();
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        hostile_value().prop_map(Value::from),
        date_time().prop_map(Value::from),
    ];
    scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((hostile(), inner), 0..3)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn segments() -> impl Strategy<Value = Vec<String>> {
    let fixed = prop::sample::select(vec![
        vec!["total"],
        vec!["status"],
        vec!["placed_at"],
        vec!["tags"],
        vec!["paid"],
        vec!["customer"],
        vec!["customer", "name"],
        vec!["meta"],
    ])
    .prop_map(|s| s.into_iter().map(str::to_owned).collect::<Vec<_>>());
    let open = prop::sample::select(vec!["customer", "meta"]);
    let closed = prop::sample::select(vec!["tags", "total"]);
    prop_oneof![
        12 => fixed,
        4 => hostile().prop_map(|h| vec![h]),
        6 => (open, hostile()).prop_map(|(p, h)| vec![p.to_owned(), h]),
        2 => (hostile(), hostile()).prop_map(|(a, b)| vec![a, b]),
        1 => (closed, hostile()).prop_map(|(p, h)| vec![p.to_owned(), h]),
    ]
}

fn operator() -> impl Strategy<Value = Operator> {
    prop_oneof![
        json_value().prop_map(Operator::Eq),
        json_value().prop_map(Operator::Ne),
        json_value().prop_map(Operator::Lt),
        json_value().prop_map(Operator::Lte),
        json_value().prop_map(Operator::Gt),
        json_value().prop_map(Operator::Gte),
        prop::collection::vec(json_value(), 0..4).prop_map(Operator::In),
        json_value().prop_map(Operator::Contains),
        Just(Operator::Exists),
        hostile_value().prop_map(Operator::StartsWith),
    ]
}

/// An operator and value that fit a path of `kind` (the hostile strings may still be refused).
fn fitting_operator(kind: ValueKind) -> BoxedStrategy<Operator> {
    fn ranges(value: BoxedStrategy<Value>) -> BoxedStrategy<Operator> {
        prop_oneof![
            value.clone().prop_map(Operator::Eq),
            value.clone().prop_map(Operator::Ne),
            value.clone().prop_map(Operator::Lt),
            value.clone().prop_map(Operator::Lte),
            value.clone().prop_map(Operator::Gt),
            value.clone().prop_map(Operator::Gte),
            prop::collection::vec(value, 0..4).prop_map(Operator::In),
        ]
        .boxed()
    }
    let text = || hostile_value().prop_map(Value::from).boxed();
    match kind {
        ValueKind::Number => ranges((-1e6f64..1e6).prop_map(Value::from).boxed()),
        ValueKind::DateTime => ranges(date_time().prop_map(Value::from).boxed()),
        ValueKind::Any => prop_oneof![
            ranges(text()),
            json_value().prop_map(Operator::Eq),
            json_value().prop_map(Operator::Contains),
            hostile_value().prop_map(Operator::StartsWith),
            Just(Operator::Exists),
        ]
        .boxed(),
        ValueKind::String => prop_oneof![
            ranges(text()),
            text().prop_map(Operator::Contains),
            hostile_value().prop_map(Operator::StartsWith),
            Just(Operator::Exists),
        ]
        .boxed(),
        ValueKind::Boolean => any::<bool>().prop_map(|b| Operator::Eq(b.into())).boxed(),
        ValueKind::Array => json_value().prop_map(Operator::Contains).boxed(),
        ValueKind::Object => prop::collection::vec((hostile(), json_value()), 0..3)
            .prop_map(|entries| Operator::Contains(Value::Object(entries.into_iter().collect())))
            .boxed(),
    }
}

fn filter() -> impl Strategy<Value = Filter> {
    let condition = segments()
        .prop_flat_map(|segments| {
            let path = JsonPath::from_segments(segments).expect("no NUL in generated segments");
            let op = match value_kind(&open_schema(), &path) {
                Ok(kind) => prop_oneof![20 => fitting_operator(kind), 1 => operator()].boxed(),
                Err(_) => operator().boxed(),
            };
            (Just(path), op)
        })
        .prop_map(|(path, op)| Filter::Condition(Condition { path, op }));
    condition.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let key = (
        prop_oneof![
            segments().prop_map(|s| OrderBy::Path(JsonPath::from_segments(s).unwrap())),
            Just(OrderBy::CreatedAt),
            Just(OrderBy::EntityVersion),
        ],
        any::<bool>(),
    )
        .prop_map(|(by, desc)| {
            if desc {
                OrderKey::desc(by)
            } else {
                OrderKey::asc(by)
            }
        });
    (
        prop::option::weighted(0.9, filter()),
        prop::collection::vec(key, 0..3),
    )
        .prop_map(|(filter, order)| Query {
            filter,
            order,
            ..Query::default()
        })
}

/// Another string of the same kind: a date-time stays a (different) date-time, anything else
/// becomes a different string that is not a date-time, an index or a declared name, with the
/// same NUL characters.
fn other(s: &str) -> String {
    match parse_timestamp(s) {
        Some(t) => (t + Duration::days(1)).to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("ħ{}", s.chars().rev().collect::<String>()),
    }
}

fn other_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(other(s)),
        Value::Array(items) => Value::Array(items.iter().map(other_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (other(k), other_value(v)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

fn other_path(path: &JsonPath) -> JsonPath {
    let segments = path.segments().iter().map(|s| {
        if DECLARED.contains(&s.as_str()) {
            s.clone()
        } else {
            other(s)
        }
    });
    JsonPath::from_segments(segments).unwrap()
}

fn other_filter(filter: &Filter) -> Filter {
    match filter {
        Filter::And(filters) => Filter::And(filters.iter().map(other_filter).collect()),
        Filter::Or(filters) => Filter::Or(filters.iter().map(other_filter).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(other_filter(inner))),
        Filter::Condition(Condition { path, op }) => {
            let op = match op {
                Operator::Eq(v) => Operator::Eq(other_value(v)),
                Operator::Ne(v) => Operator::Ne(other_value(v)),
                Operator::Lt(v) => Operator::Lt(other_value(v)),
                Operator::Lte(v) => Operator::Lte(other_value(v)),
                Operator::Gt(v) => Operator::Gt(other_value(v)),
                Operator::Gte(v) => Operator::Gte(other_value(v)),
                Operator::In(values) => Operator::In(values.iter().map(other_value).collect()),
                Operator::Contains(v) => Operator::Contains(other_value(v)),
                Operator::Exists => Operator::Exists,
                Operator::StartsWith(s) => Operator::StartsWith(other(s)),
            };
            Filter::Condition(Condition {
                path: other_path(path),
                op,
            })
        }
    }
}

fn other_query(query: &Query) -> Query {
    let order = query
        .order
        .iter()
        .map(|key| OrderKey {
            by: match &key.by {
                OrderBy::Path(path) => OrderBy::Path(other_path(path)),
                by => by.clone(),
            },
            direction: key.direction,
        })
        .collect();
    Query {
        filter: query.filter.as_ref().map(other_filter),
        order,
        ..query.clone()
    }
}

/// Every string in the query: values, object keys, path segments.
fn strings(query: &Query) -> Vec<String> {
    fn of_value(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| of_value(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                of_value(v, out);
            }),
            _ => {}
        }
    }
    fn of_filter(filter: &Filter, out: &mut Vec<String>) {
        match filter {
            Filter::And(filters) | Filter::Or(filters) => {
                filters.iter().for_each(|f| of_filter(f, out))
            }
            Filter::Not(inner) => of_filter(inner, out),
            Filter::Condition(Condition { path, op }) => {
                out.extend(path.segments().iter().cloned());
                match op {
                    Operator::Eq(v)
                    | Operator::Ne(v)
                    | Operator::Lt(v)
                    | Operator::Lte(v)
                    | Operator::Gt(v)
                    | Operator::Gte(v)
                    | Operator::Contains(v) => of_value(v, out),
                    Operator::In(values) => values.iter().for_each(|v| of_value(v, out)),
                    Operator::StartsWith(s) => out.push(s.clone()),
                    Operator::Exists => {}
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Some(filter) = &query.filter {
        of_filter(filter, &mut out);
    }
    for key in &query.order {
        if let OrderBy::Path(path) = &key.by {
            out.extend(path.segments().iter().cloned());
        }
    }
    out
}

/// The numbers of the `$n` placeholders in `sql`.
fn placeholders(sql: &str) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            found.insert(n);
        }
    }
    found
}

fn run(query: &Query, schema: &CompiledSchema) -> Result<CompiledQuery, QueryError> {
    let ctx = QueryContext {
        table: TABLE,
        columns: COLUMNS,
        schema,
        cursor_key: b"k",
    };
    compile(query, &ctx)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn hostile_input_never_becomes_sql_text(query in query()) {
        let schema = compiled(&open_schema());
        let compiled = match run(&query, &schema) {
            Ok(compiled) => compiled,
            Err(error) => {
                prop_assert!(!error.message.is_empty());
                prop_assert!(error.pointer.starts_with("/filter") || error.pointer.starts_with("/order"));
                return Ok(());
            }
        };
        let text = compiled.sql.replace(TABLE, "").replace(COLUMNS, "");
        for s in strings(&query) {
            prop_assert!(s.chars().count() < 2 || !text.contains(&s), "{s:?} is in {}", compiled.sql);
        }
        let used = placeholders(&compiled.sql);
        let bound: BTreeSet<usize> = (1..=compiled.params.len()).collect();
        prop_assert_eq!(used, bound);
    }

    #[test]
    fn sql_text_depends_only_on_the_structure(query in query()) {
        let schema = compiled(&open_schema());
        let variant = other_query(&query);
        match (run(&query, &schema), run(&variant, &schema)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a.sql, &b.sql);
                prop_assert_eq!(a.params.len(), b.params.len());
                for (x, y) in a.params.iter().zip(&b.params) {
                    prop_assert_eq!(discriminant(x), discriminant(y));
                    match (x, y) {
                        (SqlParam::Path(x), SqlParam::Path(y)) => prop_assert_eq!(x.len(), y.len()),
                        (SqlParam::JsonArray(x), SqlParam::JsonArray(y)) => prop_assert_eq!(x.len(), y.len()),
                        (SqlParam::TimestampArray(x), SqlParam::TimestampArray(y)) => {
                            prop_assert_eq!(x.len(), y.len());
                        }
                        _ => {}
                    }
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.pointer, b.pointer),
            (a, b) => prop_assert!(false, "one compiles, the other not: {a:?} / {b:?}"),
        }
    }

    #[test]
    fn nul_characters_never_make_a_path(segments in prop::collection::vec(hostile_value(), 1..3)) {
        let has_nul = segments.iter().any(|s| s.contains('\0'));
        prop_assert_eq!(JsonPath::from_segments(segments.clone()).is_err(), has_nul);
        let pointer = JsonPath::from_segments(segments.iter().map(|s| s.replace('\0', ""))).unwrap().to_string();
        prop_assert_eq!(JsonPath::parse(&pointer).unwrap().segments().len(), segments.len());
    }
}

fn schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({})),
        prop::sample::select(vec![
            "string", "number", "integer", "boolean", "array", "object", "null"
        ])
        .prop_map(|t| json!({ "type": t })),
        Just(json!({"type": ["string", "null"], "format": "date-time"})),
        Just(json!({"format": "date-time"})),
        prop::sample::select(vec![
            "#",
            "#/$defs/a",
            "#/definitions/b",
            "#/properties/a",
            "#/nope",
            "x.json#",
            "#/$defs/a/items"
        ])
        .prop_map(|r| json!({ "$ref": r })),
        Just(json!({"enum": ["a", 1, null]})),
        Just(json!(3)),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let keyword = prop::sample::select(vec![
            "properties",
            "items",
            "prefixItems",
            "additionalProperties",
            "patternProperties",
            "allOf",
            "anyOf",
            "oneOf",
            "$defs",
            "definitions",
            "unevaluatedProperties",
            "type",
        ]);
        prop::collection::vec((keyword, inner.clone(), inner.clone(), inner), 0..5).prop_map(
            |entries| {
                let mut schema = Map::new();
                for (keyword, a, b, c) in entries {
                    let value = match keyword {
                        "properties" | "$defs" | "definitions" => json!({"a": a, "b": b, "0": c}),
                        "patternProperties" => json!({"^a": a, "[": b}),
                        "prefixItems" | "allOf" | "anyOf" | "oneOf" => json!([a, b, c]),
                        "type" => json!(["object", "array"]),
                        _ => a,
                    };
                    schema.insert(keyword.to_owned(), value);
                }
                Value::Object(schema)
            },
        )
    })
}

fn pointer() -> impl Strategy<Value = JsonPath> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "0", "1", "-1", "", "x", "01"]),
        1..6,
    )
    .prop_map(|segments| JsonPath::from_segments(segments).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn value_kind_answers_for_any_schema(schema in schema(), path in pointer(), pointer in ".{0,12}") {
        let kind = value_kind(&schema, &path);
        prop_assert_eq!(&kind, &value_kind(&schema, &path), "deterministic");
        if let Err(error) = kind {
            let owner = error
                .message
                .strip_prefix(&format!("unknown path {path}: the schema of "))
                .and_then(|rest| rest.strip_suffix(" does not allow it"))
                .unwrap_or_else(|| panic!("unexpected message {:?}", error.message));
            prop_assert!(owner == "the document" || path.to_string().starts_with(&format!("{owner}/")),
                "{owner} is not a proper prefix of {path}");
        }
        if let Ok(path) = JsonPath::parse(&pointer) {
            let _ = value_kind(&schema, &path);
            prop_assert_eq!(JsonPath::parse(&path.to_string()), Ok(path));
        }
    }
}
