//! Typing paths against schemas.

use serde_json::{Value, json};

use super::*;

fn kind(schema: &Value, pointer: &str) -> Result<ValueKind, String> {
    value_kind(schema, &JsonPath::parse(pointer).unwrap()).map_err(|e| e.message)
}

#[test]
fn types_map_to_kinds_and_null_is_ignored() {
    let schema = json!({"properties": {
        "i": {"type": "integer"},
        "n": {"type": ["number", "null"]},
        "both": {"type": ["integer", "number"]},
        "s": {"type": "string"},
        "t": {"type": ["string", "null"], "format": "date-time"},
        "d": {"type": "string", "format": "date"},
        "b": {"type": "boolean"},
        "a": {"type": "array"},
        "o": {"type": "object"},
        "mixed": {"type": ["string", "number"]},
        "nothing": {},
        "only_null": {"type": "null"},
        "e": {"enum": ["x", "y", null]},
        "c": {"const": 3},
        "mixed_enum": {"enum": ["x", 1]},
        "format_only": {"format": "date-time"}
    }});
    let expected = [
        ("/i", ValueKind::Number),
        ("/n", ValueKind::Number),
        ("/both", ValueKind::Number),
        ("/s", ValueKind::String),
        ("/t", ValueKind::DateTime),
        ("/d", ValueKind::String),
        ("/b", ValueKind::Boolean),
        ("/a", ValueKind::Array),
        ("/o", ValueKind::Object),
        ("/mixed", ValueKind::Any),
        ("/nothing", ValueKind::Any),
        ("/only_null", ValueKind::Any),
        ("/e", ValueKind::String),
        ("/c", ValueKind::Number),
        ("/mixed_enum", ValueKind::Any),
        ("/format_only", ValueKind::Any),
        ("/undeclared", ValueKind::Any),
    ];
    for (pointer, want) in expected {
        assert_eq!(kind(&schema, pointer), Ok(want), "{pointer}");
    }
}

#[test]
fn arrays_are_walked_by_index_through_prefix_items_and_items() {
    let schema = json!({"properties": {
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}],
                 "items": {"type": "boolean"}},
        "list": {"type": "array", "items": {"type": "object",
                 "properties": {"at": {"type": "string", "format": "date-time"}}}},
        "closed": {"type": "array", "prefixItems": [{"type": "string"}], "items": false}
    }});
    assert_eq!(kind(&schema, "/pair/0"), Ok(ValueKind::String));
    assert_eq!(kind(&schema, "/pair/1"), Ok(ValueKind::Number));
    assert_eq!(kind(&schema, "/pair/7"), Ok(ValueKind::Boolean));
    assert_eq!(kind(&schema, "/list/3/at"), Ok(ValueKind::DateTime));
    assert_eq!(kind(&schema, "/list/3/other"), Ok(ValueKind::Any));
    assert_eq!(
        kind(&schema, "/list/x"),
        Err("unknown path /list/x: the schema of /list does not allow it".into())
    );
    assert_eq!(
        kind(&schema, "/closed/1"),
        Err("unknown path /closed/1: the schema of /closed does not allow it".into())
    );
}

#[test]
fn local_references_are_followed_and_cycles_end() {
    let schema = json!({
        "$defs": {
            "money": {"$ref": "#/definitions/amount"},
            "node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
            }},
            "loop": {"$ref": "#/$defs/loop"}
        },
        "definitions": {"amount": {"type": "number"}},
        "properties": {
            "total": {"$ref": "#/$defs/money"},
            "tree": {"$ref": "#/$defs/node"},
            "spin": {"$ref": "#/$defs/loop"},
            "remote": {"$ref": "https://example.com/schema.json"},
            "dangling": {"$ref": "#/$defs/missing"}
        }
    });
    assert_eq!(kind(&schema, "/total"), Ok(ValueKind::Number));
    assert_eq!(
        kind(&schema, "/tree/children/0/children/2/name"),
        Ok(ValueKind::String)
    );
    assert_eq!(kind(&schema, "/spin"), Ok(ValueKind::Any));
    assert_eq!(kind(&schema, "/remote/x"), Ok(ValueKind::Any));
    assert_eq!(kind(&schema, "/dangling"), Ok(ValueKind::Any));
}

#[test]
fn combinators_agree_or_give_any() {
    let schema = json!({"properties": {
        "all": {"allOf": [{"type": "string"}, {"format": "date-time"}]},
        "any_same": {"anyOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
        "any_mixed": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "one_nested": {"oneOf": [
            {"properties": {"kind": {"const": "a"}, "n": {"type": "number"}}},
            {"properties": {"kind": {"const": "b"}}}
        ]},
        "closed_branch": {"type": "object", "anyOf": [
            {"properties": {"x": {"type": "number"}}, "additionalProperties": false},
            {"properties": {"y": {"type": "string"}}}
        ]},
        "closed_all": {"allOf": [{"properties": {"x": {}}, "additionalProperties": false}]}
    }});
    assert_eq!(kind(&schema, "/all"), Ok(ValueKind::DateTime));
    assert_eq!(kind(&schema, "/any_same"), Ok(ValueKind::Number));
    assert_eq!(kind(&schema, "/any_mixed"), Ok(ValueKind::Any));
    assert_eq!(kind(&schema, "/one_nested/kind"), Ok(ValueKind::String));
    assert_eq!(kind(&schema, "/one_nested/n"), Ok(ValueKind::Number));
    assert_eq!(kind(&schema, "/closed_branch/x"), Ok(ValueKind::Number));
    assert_eq!(kind(&schema, "/closed_branch/y"), Ok(ValueKind::String));
    assert_eq!(
        kind(&schema, "/closed_all/z"),
        Err("unknown path /closed_all/z: the schema of /closed_all does not allow it".into())
    );
}

#[test]
fn additional_pattern_and_unevaluated_properties_decide_undeclared_keys() {
    let schema = json!({"properties": {
        "prices": {"type": "object", "additionalProperties": {"type": "number"}},
        "labels": {"type": "object", "patternProperties": {"^x-": {"type": "string"}},
                   "additionalProperties": false},
        "strict": {"type": "object", "properties": {"a": {}}, "unevaluatedProperties": false},
        "strict_all": {"allOf": [{"properties": {"a": {"type": "number"}}}],
                       "unevaluatedProperties": false},
        "nothing": false
    }});
    assert_eq!(kind(&schema, "/prices/EUR"), Ok(ValueKind::Number));
    assert_eq!(kind(&schema, "/labels/x-team"), Ok(ValueKind::String));
    assert_eq!(
        kind(&schema, "/labels/team"),
        Err("unknown path /labels/team: the schema of /labels does not allow it".into())
    );
    assert_eq!(kind(&schema, "/strict/a"), Ok(ValueKind::Any));
    assert_eq!(
        kind(&schema, "/strict/b"),
        Err("unknown path /strict/b: the schema of /strict does not allow it".into())
    );
    assert_eq!(kind(&schema, "/strict_all/a"), Ok(ValueKind::Number));
    assert!(kind(&schema, "/strict_all/b").is_err());
    assert_eq!(
        kind(&schema, "/nothing"),
        Err("unknown path /nothing: the schema of the document does not allow it".into())
    );
}

#[test]
fn scalars_have_no_children() {
    let schema =
        json!({"properties": {"n": {"type": "number"}, "s": {"type": ["string", "null"]}}});
    assert_eq!(
        kind(&schema, "/n/x"),
        Err("unknown path /n/x: the schema of /n does not allow it".into())
    );
    assert!(kind(&schema, "/s/0").is_err());
    assert_eq!(kind(&json!(true), "/anything/at/all"), Ok(ValueKind::Any));
}
