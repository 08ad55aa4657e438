//! Classification cases, table-driven: keywords on single values. Each case is a pair of
//! definitions with the changes expected (path and kind) and the class of the whole.

use serde_json::{Value, json};

use super::{ChangeClass, classify};

use ChangeClass::{Major, Minor, Patch};

/// One case: name, old definition, new definition, expected class, expected changes.
pub(super) type Case = (
    &'static str,
    Value,
    Value,
    ChangeClass,
    &'static [(&'static str, &'static str)],
);

/// Checks every case, reporting all failures at once.
pub(super) fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for (name, old, new, class, expected) in cases {
        let found = classify(&old, &new);
        let mut kinds: Vec<(String, String)> = found
            .changes
            .iter()
            .map(|c| {
                let kind = serde_json::to_value(&c.kind).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (c.path.clone(), kind)
            })
            .collect();
        kinds.sort();
        let mut wanted: Vec<(String, String)> = expected
            .iter()
            .map(|(p, k)| ((*p).to_owned(), (*k).to_owned()))
            .collect();
        wanted.sort();
        if kinds != wanted || found.class != class {
            failures.push(format!(
                "{name}: expected {class} {wanted:?}, found {} {kinds:?}\n  {:#?}",
                found.class, found.changes
            ));
        }
        // A change may be classified stricter than its directions (a removed property is
        // major by SPEC §4.2), never laxer.
        for change in &found.changes {
            assert!(
                change.class >= ChangeClass::of(change.backward, change.forward),
                "{name}: {change:?}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// An object schema with one property `p` of schema `schema`.
pub(super) fn prop(schema: Value) -> Value {
    json!({"type": "object", "properties": {"p": schema}})
}

#[test]
fn annotations_are_patches() {
    check(vec![
        (
            "identical",
            json!({"type": "object"}),
            json!({"type": "object"}),
            Patch,
            &[],
        ),
        (
            "title",
            json!({"title": "Order"}),
            json!({"title": "Sales order"}),
            Patch,
            &[("/title", "annotation")],
        ),
        (
            "description of a property",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "description": "who ordered"})),
            Patch,
            &[("/properties/p/description", "annotation")],
        ),
        (
            "examples, default, deprecated and $comment",
            prop(json!({"type": "integer", "examples": [1]})),
            prop(
                json!({"type": "integer", "examples": [2], "default": 1, "deprecated": true, "$comment": "x"}),
            ),
            Patch,
            &[
                ("/properties/p/examples", "annotation"),
                ("/properties/p/default", "annotation"),
                ("/properties/p/deprecated", "annotation"),
                ("/properties/p/$comment", "annotation"),
            ],
        ),
        (
            "index annotation",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "x-vellum-index": "unique"})),
            Patch,
            &[("/properties/p/x-vellum-index", "annotation")],
        ),
        (
            "same types written differently",
            prop(json!({"type": ["number", "integer"]})),
            prop(json!({"type": "number"})),
            Patch,
            &[],
        ),
        (
            "enum values equal as numbers",
            prop(json!({"enum": [1, 2]})),
            prop(json!({"enum": [1.0, 2]})),
            Patch,
            &[],
        ),
        (
            "reference annotation is a constraint",
            prop(json!({"type": "string", "format": "uuid"})),
            prop(json!({"type": "string", "format": "uuid", "x-vellum-ref": "customer"})),
            Major,
            &[("/properties/p/x-vellum-ref", "constraint_tightened")],
        ),
    ]);
}

#[test]
fn types() {
    check(vec![
        (
            "integer to number",
            prop(json!({"type": "integer"})),
            prop(json!({"type": "number"})),
            Minor,
            &[("/properties/p/type", "type_widened")],
        ),
        (
            "number to integer",
            prop(json!({"type": "number"})),
            prop(json!({"type": "integer"})),
            Major,
            &[("/properties/p/type", "type_narrowed")],
        ),
        (
            "made nullable",
            prop(json!({"type": "string"})),
            prop(json!({"type": ["string", "null"]})),
            Minor,
            &[("/properties/p/type", "type_widened")],
        ),
        (
            "null no longer allowed",
            prop(json!({"type": ["string", "null"]})),
            prop(json!({"type": "string"})),
            Major,
            &[("/properties/p/type", "type_narrowed")],
        ),
        (
            "string to integer",
            prop(json!({"type": "string"})),
            prop(json!({"type": "integer"})),
            Major,
            &[("/properties/p/type", "type_changed")],
        ),
        (
            "type removed",
            prop(json!({"type": "string"})),
            prop(json!({})),
            Minor,
            &[("/properties/p/type", "type_widened")],
        ),
        (
            "type added",
            prop(json!({})),
            prop(json!({"type": "string"})),
            Major,
            &[("/properties/p/type", "type_narrowed")],
        ),
    ]);
}

#[test]
fn enums_and_consts() {
    check(vec![
        (
            "enum value added",
            prop(json!({"enum": ["open", "done"]})),
            prop(json!({"enum": ["open", "done", "held"]})),
            Minor,
            &[("/properties/p/enum", "enum_value_added")],
        ),
        (
            "enum value removed",
            prop(json!({"enum": ["open", "done", "held"]})),
            prop(json!({"enum": ["open", "done"]})),
            Major,
            &[("/properties/p/enum", "enum_value_removed")],
        ),
        (
            "enum value renamed",
            prop(json!({"enum": ["open", "done"]})),
            prop(json!({"enum": ["open", "closed"]})),
            Major,
            &[
                ("/properties/p/enum", "enum_value_added"),
                ("/properties/p/enum", "enum_value_removed"),
            ],
        ),
        (
            "enum added",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "enum": ["a"]})),
            Major,
            &[("/properties/p/enum", "constraint_tightened")],
        ),
        (
            "enum removed",
            prop(json!({"type": "string", "enum": ["a"]})),
            prop(json!({"type": "string"})),
            Minor,
            &[("/properties/p/enum", "constraint_relaxed")],
        ),
        (
            "const became an enum containing it",
            prop(json!({"const": "retail"})),
            prop(json!({"enum": ["retail", "wholesale"]})),
            Minor,
            &[("/properties/p/enum", "enum_value_added")],
        ),
        (
            "const changed",
            prop(json!({"const": "a"})),
            prop(json!({"const": "b"})),
            Major,
            &[
                ("/properties/p/const", "enum_value_added"),
                ("/properties/p/const", "enum_value_removed"),
            ],
        ),
    ]);
}

#[test]
fn numbers() {
    check(vec![
        (
            "minimum lowered",
            prop(json!({"type": "number", "minimum": 0})),
            prop(json!({"type": "number", "minimum": -1})),
            Minor,
            &[("/properties/p/minimum", "constraint_relaxed")],
        ),
        (
            "minimum raised",
            prop(json!({"type": "number", "minimum": 0})),
            prop(json!({"type": "number", "minimum": 0.5})),
            Major,
            &[("/properties/p/minimum", "constraint_tightened")],
        ),
        (
            "minimum removed",
            prop(json!({"type": "number", "minimum": 0})),
            prop(json!({"type": "number"})),
            Minor,
            &[("/properties/p/minimum", "constraint_relaxed")],
        ),
        (
            "maximum added",
            prop(json!({"type": "number"})),
            prop(json!({"type": "number", "maximum": 100})),
            Major,
            &[("/properties/p/maximum", "constraint_tightened")],
        ),
        (
            "inclusive to exclusive minimum",
            prop(json!({"type": "number", "minimum": 0})),
            prop(json!({"type": "number", "exclusiveMinimum": 0})),
            Major,
            &[("/properties/p/exclusiveMinimum", "constraint_tightened")],
        ),
        (
            "exclusive to inclusive minimum",
            prop(json!({"type": "number", "exclusiveMinimum": 0})),
            prop(json!({"type": "number", "minimum": 0})),
            Minor,
            &[("/properties/p/minimum", "constraint_relaxed")],
        ),
        (
            "exclusive maximum 10 to maximum 9",
            prop(json!({"type": "number", "exclusiveMaximum": 10})),
            prop(json!({"type": "number", "maximum": 9})),
            Major,
            &[("/properties/p/maximum", "constraint_tightened")],
        ),
        (
            "the tighter of two bounds decides",
            prop(json!({"type": "number", "minimum": 5, "exclusiveMinimum": 0})),
            prop(json!({"type": "number", "minimum": 5, "exclusiveMinimum": 1})),
            Patch,
            &[],
        ),
        (
            "multipleOf 6 to 3",
            prop(json!({"type": "integer", "multipleOf": 6})),
            prop(json!({"type": "integer", "multipleOf": 3})),
            Minor,
            &[("/properties/p/multipleOf", "constraint_relaxed")],
        ),
        (
            "multipleOf 3 to 6",
            prop(json!({"type": "integer", "multipleOf": 3})),
            prop(json!({"type": "integer", "multipleOf": 6})),
            Major,
            &[("/properties/p/multipleOf", "constraint_tightened")],
        ),
        (
            "multipleOf 2 to 3",
            prop(json!({"type": "integer", "multipleOf": 2})),
            prop(json!({"type": "integer", "multipleOf": 3})),
            Major,
            &[("/properties/p/multipleOf", "constraint_changed")],
        ),
        (
            "multipleOf 0.01 to 0.1",
            prop(json!({"type": "number", "multipleOf": 0.01})),
            prop(json!({"type": "number", "multipleOf": 0.1})),
            Major,
            &[("/properties/p/multipleOf", "constraint_tightened")],
        ),
    ]);
}

#[test]
fn strings() {
    check(vec![
        (
            "lengths relaxed",
            prop(json!({"type": "string", "minLength": 3, "maxLength": 5})),
            prop(json!({"type": "string", "minLength": 1, "maxLength": 10})),
            Minor,
            &[
                ("/properties/p/minLength", "constraint_relaxed"),
                ("/properties/p/maxLength", "constraint_relaxed"),
            ],
        ),
        (
            "maxLength lowered",
            prop(json!({"type": "string", "maxLength": 10})),
            prop(json!({"type": "string", "maxLength": 5})),
            Major,
            &[("/properties/p/maxLength", "constraint_tightened")],
        ),
        (
            "minLength added",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "minLength": 1})),
            Major,
            &[("/properties/p/minLength", "constraint_tightened")],
        ),
        (
            "pattern added",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "pattern": "^[A-Z]+$"})),
            Major,
            &[("/properties/p/pattern", "constraint_tightened")],
        ),
        (
            "pattern removed",
            prop(json!({"type": "string", "pattern": "^[A-Z]+$"})),
            prop(json!({"type": "string"})),
            Minor,
            &[("/properties/p/pattern", "constraint_relaxed")],
        ),
        (
            "pattern changed",
            prop(json!({"type": "string", "pattern": "^[A-Z]+$"})),
            prop(json!({"type": "string", "pattern": "^[A-Z0-9]+$"})),
            Major,
            &[("/properties/p/pattern", "undecidable")],
        ),
        (
            "format added",
            prop(json!({"type": "string"})),
            prop(json!({"type": "string", "format": "email"})),
            Major,
            &[("/properties/p/format", "constraint_tightened")],
        ),
        (
            "format removed",
            prop(json!({"type": "string", "format": "date-time"})),
            prop(json!({"type": "string"})),
            Minor,
            &[("/properties/p/format", "constraint_relaxed")],
        ),
        (
            "format changed",
            prop(json!({"type": "string", "format": "date"})),
            prop(json!({"type": "string", "format": "date-time"})),
            Major,
            &[("/properties/p/format", "constraint_changed")],
        ),
    ]);
}

#[test]
fn array_counts() {
    check(vec![
        (
            "minItems lowered, maxItems raised",
            prop(json!({"type": "array", "minItems": 2, "maxItems": 5})),
            prop(json!({"type": "array", "minItems": 1, "maxItems": 50})),
            Minor,
            &[
                ("/properties/p/minItems", "constraint_relaxed"),
                ("/properties/p/maxItems", "constraint_relaxed"),
            ],
        ),
        (
            "maxItems added",
            prop(json!({"type": "array"})),
            prop(json!({"type": "array", "maxItems": 3})),
            Major,
            &[("/properties/p/maxItems", "constraint_tightened")],
        ),
        (
            "uniqueItems added",
            prop(json!({"type": "array"})),
            prop(json!({"type": "array", "uniqueItems": true})),
            Major,
            &[("/properties/p/uniqueItems", "constraint_tightened")],
        ),
        (
            "uniqueItems dropped",
            prop(json!({"type": "array", "uniqueItems": true})),
            prop(json!({"type": "array", "uniqueItems": false})),
            Minor,
            &[("/properties/p/uniqueItems", "constraint_relaxed")],
        ),
    ]);
}
