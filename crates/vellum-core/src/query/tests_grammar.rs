//! The JSON grammar of queries, filters and order keys: round trips and refusals.

use serde_json::{Value, json};

use super::*;

fn parse(body: Value) -> Result<Query, String> {
    serde_json::from_value(body).map_err(|e| e.to_string())
}

#[track_caller]
fn assert_round_trip(body: Value) {
    let query = parse(body.clone()).expect("parses");
    assert_eq!(
        serde_json::to_value(&query).unwrap(),
        body,
        "serializes back"
    );
    let again: Query = serde_json::from_value(serde_json::to_value(&query).unwrap()).unwrap();
    assert_eq!(again, query);
}

#[track_caller]
fn assert_refused(body: Value, message: &str) {
    let error = parse(body).expect_err("refused");
    assert!(
        error.contains(message),
        "{error:?} should contain {message:?}"
    );
}

#[test]
fn every_operator_and_combinator_round_trips() {
    assert_round_trip(json!({
        "filter": {"and": [
            {"path": "/a", "op": "eq", "value": null},
            {"path": "/a", "op": "ne", "value": {"x": [1, "y"]}},
            {"path": "/b/0", "op": "lt", "value": 1},
            {"path": "/b/1", "op": "lte", "value": 1.5},
            {"path": "/c", "op": "gt", "value": "z"},
            {"path": "/c", "op": "gte", "value": "2024-01-01T00:00:00Z"},
            {"path": "/d", "op": "in", "value": [1, "2", null]},
            {"path": "/e", "op": "contains", "value": "needle"},
            {"path": "/f~1g~0h", "op": "exists"},
            {"path": "/", "op": "starts_with", "value": "pre"},
            {"or": [{"not": {"path": "/x", "op": "exists"}}]},
            {"or": []}
        ]},
        "order": [
            {"path": "/total", "direction": "desc"},
            {"field": "created_at", "direction": "asc"},
            {"field": "updated_at", "direction": "asc"},
            {"field": "entity_id", "direction": "desc"},
            {"field": "entity_version", "direction": "asc"}
        ],
        "limit": 10,
        "cursor": "abc",
        "as_of": "2024-01-01T00:00:00Z",
        "ids": ["00000000-0000-0000-0000-000000000001"],
        "include_deleted": true
    }));
    assert_round_trip(json!({}));
}

#[test]
fn constructors_build_the_same_ast_as_the_grammar() {
    let built = Filter::and([
        Filter::eq("/status", "open").unwrap(),
        !Filter::is_in("/total", [1, 2]).unwrap(),
        Filter::or([
            Filter::exists("/a~1b").unwrap(),
            Filter::starts_with("/n", "A").unwrap(),
        ]),
    ]);
    let parsed: Filter = serde_json::from_value(json!({"and": [
        {"path": "/status", "op": "eq", "value": "open"},
        {"not": {"path": "/total", "op": "in", "value": [1, 2]}},
        {"or": [{"path": "/a~1b", "op": "exists"}, {"path": "/n", "op": "starts_with", "value": "A"}]}
    ]}))
    .unwrap();
    assert_eq!(built, parsed);
    assert_eq!(
        OrderKey::desc(OrderBy::path("/total").unwrap()),
        serde_json::from_value(json!({"path": "/total", "direction": "desc"})).unwrap()
    );
    assert_eq!(
        OrderKey::asc(OrderBy::CreatedAt),
        serde_json::from_value(json!({"field": "created_at"})).unwrap()
    );
}

#[test]
fn unknown_operators_and_misplaced_values_are_refused() {
    assert_refused(
        json!({"filter": {"path": "/a", "op": "like", "value": "x"}}),
        "unknown operator \"like\", expected one of eq, ne, lt, lte, gt, gte, in, contains, exists, starts_with",
    );
    assert_refused(
        json!({"filter": {"path": "/a", "op": "eq"}}),
        "operator \"eq\" needs a \"value\"",
    );
    assert_refused(
        json!({"filter": {"path": "/a", "op": "exists", "value": true}}),
        "operator \"exists\" takes no \"value\"",
    );
    assert_refused(
        json!({"filter": {"path": "/a", "op": "in", "value": "x"}}),
        "operator \"in\" needs an array \"value\", got a string",
    );
    assert_refused(
        json!({"filter": {"path": "/a", "op": "starts_with", "value": 1}}),
        "operator \"starts_with\" needs a string \"value\", got a number",
    );
    assert_refused(
        json!({"filter": {"path": "/a", "value": 1}}),
        "a condition needs an \"op\"",
    );
    assert_refused(
        json!({"filter": {"op": "eq", "value": 1}}),
        "a condition needs a \"path\"",
    );
}

#[test]
fn unknown_fields_and_mixed_shapes_are_refused() {
    assert_refused(json!({"filtre": {}}), "unknown field `filtre`");
    assert_refused(
        json!({"filter": {"path": "/a", "op": "exists", "negate": true}}),
        "unknown field `negate`",
    );
    let shape = "a filter is exactly one of";
    assert_refused(json!({"filter": {}}), shape);
    assert_refused(json!({"filter": {"and": [], "or": []}}), shape);
    assert_refused(json!({"filter": {"not": {"and": []}, "path": "/a"}}), shape);
    assert_refused(json!({"filter": {"and": {}}}), "invalid type");
    assert_refused(
        json!({"filter": 5}),
        "invalid type: integer `5`, expected a filter: {\"and\": [..]}",
    );
    assert_refused(json!({"order": ["created_at"]}), "expected an order key");
    assert_refused(
        json!({"order": [{"field": "created_at", "dir": "asc"}]}),
        "unknown field `dir`",
    );
    assert_refused(
        json!({"order": [{"field": "created_at", "path": "/a"}]}),
        "an order key has exactly one of",
    );
    assert_refused(
        json!({"order": [{"field": "revision"}]}),
        "unknown variant `revision`",
    );
    assert_refused(
        json!({"order": [{"path": "/a", "direction": "up"}]}),
        "unknown variant `up`",
    );
    assert_refused(json!({"limit": -1}), "invalid value");
    assert_refused(json!({"ids": ["nope"]}), "UUID");
}

#[test]
fn malformed_pointers_are_refused() {
    assert_refused(
        json!({"filter": {"path": "a/b", "op": "exists"}}),
        "invalid JSON pointer \"a/b\": it must start with \"/\"",
    );
    assert_refused(
        json!({"filter": {"path": "/a~2", "op": "exists"}}),
        "invalid JSON pointer \"/a~2\": \"~\" must be followed by 0 or 1",
    );
    assert_refused(
        json!({"filter": {"path": "/a~", "op": "exists"}}),
        "\"~\" must be followed by 0 or 1",
    );
    assert_refused(
        json!({"filter": {"path": "", "op": "exists"}}),
        "the empty pointer is the whole document",
    );
    assert_refused(
        json!({"order": [{"path": "total"}]}),
        "it must start with \"/\"",
    );
}

#[test]
fn pointers_decode_escapes_and_print_back() {
    let path = JsonPath::parse("/a~1b/~0c/").unwrap();
    assert_eq!(path.segments(), ["a/b", "~c", ""]);
    assert_eq!(path.to_string(), "/a~1b/~0c/");
    assert_eq!(JsonPath::from_segments(["a/b", "~c", ""]).unwrap(), path);
    assert!(JsonPath::from_segments(Vec::<String>::new()).is_err());
}

#[test]
fn lookups_follow_postgresql_array_subscripts() {
    let doc = json!({"a": [10, 20, 30], "o": {"1": "one"}});
    let get = |p: &str| JsonPath::parse(p).unwrap().lookup(&doc).cloned();
    assert_eq!(get("/a/0"), Some(json!(10)));
    assert_eq!(get("/a/01"), Some(json!(20)));
    assert_eq!(get("/a/-1"), Some(json!(30)));
    assert_eq!(get("/a/+2"), Some(json!(30)));
    assert_eq!(get("/a/-4"), None);
    assert_eq!(get("/a/3"), None);
    assert_eq!(get("/a/x"), None);
    assert_eq!(get("/a/1x"), None);
    assert_eq!(get("/o/1"), Some(json!("one")));
    assert_eq!(get("/a/0/deeper"), None);
}
