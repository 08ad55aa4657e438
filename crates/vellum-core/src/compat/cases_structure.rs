//! Classification cases, table-driven: objects, arrays, combinators and references.

use serde_json::json;

use super::ChangeClass::{Major, Minor, Patch};
use super::cases::{check, prop};

#[test]
fn properties() {
    let open = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
    let open_plus =
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
    let closed_plus = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                             "additionalProperties": false});
    check(vec![
        (
            "optional property added to an open object",
            open.clone(),
            open_plus.clone(),
            Major,
            &[("/properties/b", "property_added")],
        ),
        (
            "optional property added to a closed object",
            closed.clone(),
            closed_plus.clone(),
            Minor,
            &[("/properties/b", "property_added")],
        ),
        (
            "unconstrained property added to an open object",
            open.clone(),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"description": "free"}}}),
            Patch,
            &[("/properties/b", "property_added")],
        ),
        (
            "required property added to a closed object",
            closed.clone(),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                   "required": ["b"], "additionalProperties": false}),
            Major,
            &[
                ("/properties/b", "property_added"),
                ("/required", "required_added"),
            ],
        ),
        (
            "property removed from an open object: documents stay valid, but SPEC §4.2 says major",
            open_plus.clone(),
            open.clone(),
            Major,
            &[("/properties/b", "property_removed")],
        ),
        (
            "property removed from a closed object",
            closed_plus,
            closed.clone(),
            Major,
            &[("/properties/b", "property_removed")],
        ),
        (
            "property renamed",
            open.clone(),
            json!({"type": "object", "properties": {"z": {"type": "string"}}}),
            Major,
            &[
                ("/properties/z", "property_added"),
                ("/properties/a", "property_removed"),
            ],
        ),
        (
            "existing property made required",
            open.clone(),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            Major,
            &[("/required", "required_added")],
        ),
        (
            "property no longer required",
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            open.clone(),
            Minor,
            &[("/required", "required_removed")],
        ),
        (
            "object closed",
            open.clone(),
            closed.clone(),
            Major,
            &[("/additionalProperties", "additional_properties_closed")],
        ),
        (
            "object opened",
            closed.clone(),
            open.clone(),
            Minor,
            &[("/additionalProperties", "additional_properties_opened")],
        ),
        (
            "schema of undeclared properties widened",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "additionalProperties": {"type": ["string", "number"]}}),
            Minor,
            &[("/additionalProperties/type", "type_widened")],
        ),
        (
            "property added where undeclared properties must be strings",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}},
                   "additionalProperties": {"type": "string"}}),
            Major,
            &[("/properties/a", "property_added")],
        ),
        (
            "property added under unevaluatedProperties false",
            json!({"type": "object", "properties": {"a": {}}, "unevaluatedProperties": false}),
            json!({"type": "object", "properties": {"a": {}, "b": {"type": "integer"}}, "unevaluatedProperties": false}),
            Minor,
            &[("/properties/b", "property_added")],
        ),
        (
            "property that was forbidden now allowed",
            json!({"type": "object", "properties": {"a": false}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            Minor,
            &[("/properties/a", "schema_opened")],
        ),
        (
            "property forbidden",
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": false}}),
            Major,
            &[("/properties/a", "schema_closed")],
        ),
    ]);
}

#[test]
fn object_keywords() {
    check(vec![
        (
            "property counts",
            json!({"type": "object", "minProperties": 1}),
            json!({"type": "object", "minProperties": 0, "maxProperties": 10}),
            Major,
            &[
                ("/minProperties", "constraint_relaxed"),
                ("/maxProperties", "constraint_tightened"),
            ],
        ),
        (
            "dependentRequired added",
            json!({"type": "object"}),
            json!({"type": "object", "dependentRequired": {"card": ["cvv"]}}),
            Major,
            &[("/dependentRequired/card", "constraint_tightened")],
        ),
        (
            "dependentRequired dropped a name",
            json!({"type": "object", "dependentRequired": {"card": ["cvv", "expiry"]}}),
            json!({"type": "object", "dependentRequired": {"card": ["cvv"]}}),
            Minor,
            &[("/dependentRequired/card", "constraint_relaxed")],
        ),
        (
            "dependentSchemas tightened",
            json!({"type": "object", "dependentSchemas": {"card": {"required": ["cvv"]}}}),
            json!({"type": "object", "dependentSchemas": {"card": {"required": ["cvv", "expiry"]}}}),
            Major,
            &[("/dependentSchemas/card/required", "required_added")],
        ),
        (
            "propertyNames shortened",
            json!({"type": "object", "propertyNames": {"maxLength": 10}}),
            json!({"type": "object", "propertyNames": {"maxLength": 5}}),
            Major,
            &[("/propertyNames/maxLength", "constraint_tightened")],
        ),
        (
            "patternProperties changed",
            json!({"type": "object", "patternProperties": {"^x-": {"type": "string"}}}),
            json!({"type": "object", "patternProperties": {"^x-": {"type": "string"}, "^y-": {}}}),
            Major,
            &[("/patternProperties", "undecidable")],
        ),
        (
            "patternProperties schema widened",
            json!({"type": "object", "patternProperties": {"^x-": {"type": "string"}}}),
            json!({"type": "object", "patternProperties": {"^x-": {}}}),
            Minor,
            &[("/patternProperties/^x-/type", "type_widened")],
        ),
    ]);
}

#[test]
fn nesting() {
    let order = |qty: serde_json::Value, required: serde_json::Value| {
        json!({"type": "object", "properties": {"lines": {"type": "array", "items": {
            "type": "object", "required": required,
            "properties": {"sku": {"type": "string"}, "qty": qty}}}}})
    };
    check(vec![
        (
            "nested object property tightened",
            prop(
                json!({"type": "object", "properties": {"zip": {"type": "string", "maxLength": 10}}}),
            ),
            prop(
                json!({"type": "object", "properties": {"zip": {"type": "string", "maxLength": 5}}}),
            ),
            Major,
            &[(
                "/properties/p/properties/zip/maxLength",
                "constraint_tightened",
            )],
        ),
        (
            "array of objects: item constraint relaxed",
            order(json!({"type": "integer", "minimum": 1}), json!(["sku"])),
            order(json!({"type": "integer", "minimum": 0}), json!(["sku"])),
            Minor,
            &[(
                "/properties/lines/items/properties/qty/minimum",
                "constraint_relaxed",
            )],
        ),
        (
            "array of objects: item property made required",
            order(json!({"type": "integer"}), json!(["sku"])),
            order(json!({"type": "integer"}), json!(["sku", "qty"])),
            Major,
            &[("/properties/lines/items/required", "required_added")],
        ),
        (
            "array of arrays: inner item type widened",
            prop(
                json!({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
            ),
            prop(json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}})),
            Minor,
            &[("/properties/p/items/items/type", "type_widened")],
        ),
        (
            "items added to an array",
            prop(json!({"type": "array"})),
            prop(json!({"type": "array", "items": {"type": "string"}})),
            Major,
            &[("/properties/p/items/type", "type_narrowed")],
        ),
        (
            "tuple extended where extra items were refused",
            prop(json!({"type": "array", "prefixItems": [{"type": "string"}], "items": false})),
            prop(
                json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}),
            ),
            Minor,
            &[("/properties/p/prefixItems/1", "schema_opened")],
        ),
        (
            "tuple extended where extra items were free",
            prop(json!({"type": "array", "prefixItems": [{"type": "string"}]})),
            prop(
                json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}),
            ),
            Major,
            &[("/properties/p/prefixItems/1/type", "type_narrowed")],
        ),
        (
            "rest of a tuple relaxed",
            prop(
                json!({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "string"}}),
            ),
            prop(json!({"type": "array", "prefixItems": [{"type": "string"}]})),
            Minor,
            &[("/properties/p/items/type", "type_widened")],
        ),
        (
            "contains added",
            prop(json!({"type": "array"})),
            prop(json!({"type": "array", "contains": {"type": "string"}})),
            Major,
            &[("/properties/p/contains", "constraint_tightened")],
        ),
        (
            "minContains raised",
            prop(json!({"type": "array", "contains": {"type": "string"}})),
            prop(json!({"type": "array", "contains": {"type": "string"}, "minContains": 2})),
            Major,
            &[("/properties/p/minContains", "constraint_tightened")],
        ),
        (
            "contains widened",
            prop(json!({"type": "array", "contains": {"type": "integer"}})),
            prop(json!({"type": "array", "contains": {"type": "number"}})),
            Minor,
            &[("/properties/p/contains/type", "type_widened")],
        ),
        (
            "contains widened under maxContains",
            prop(json!({"type": "array", "contains": {"type": "integer"}, "maxContains": 2})),
            prop(json!({"type": "array", "contains": {"type": "number"}, "maxContains": 2})),
            Major,
            &[("/properties/p/contains", "undecidable")],
        ),
    ]);
}

#[test]
fn combinators() {
    let tagged = |extra: &[serde_json::Value]| {
        let mut branches = vec![
            json!({"type": "object", "required": ["kind", "number"],
                   "properties": {"kind": {"const": "card"}, "number": {"type": "string", "maxLength": 16}}}),
            json!({"type": "object", "required": ["kind"], "properties": {"kind": {"const": "cash"}}}),
        ];
        branches.extend_from_slice(extra);
        prop(json!({"oneOf": branches}))
    };
    let wire =
        json!({"type": "object", "required": ["kind"], "properties": {"kind": {"const": "wire"}}});
    let mut wider_card = tagged(&[]);
    wider_card["properties"]["p"]["oneOf"][0]["properties"]["number"]["maxLength"] = json!(19);
    let mut described = tagged(&[]);
    described["properties"]["p"]["oneOf"][1]["description"] = json!("paid at the counter");
    check(vec![
        (
            "anyOf branch added",
            prop(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})),
            prop(json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})),
            Minor,
            &[("/properties/p/anyOf/2", "branch_added")],
        ),
        (
            "anyOf branch removed",
            prop(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})),
            prop(json!({"anyOf": [{"type": "integer"}]})),
            Major,
            &[("/properties/p/anyOf/0", "branch_removed")],
        ),
        (
            "anyOf branch widened",
            prop(json!({"anyOf": [{"type": "string", "maxLength": 5}, {"type": "integer"}]})),
            prop(json!({"anyOf": [{"type": "string", "maxLength": 10}, {"type": "integer"}]})),
            Minor,
            &[("/properties/p/anyOf/0/maxLength", "constraint_relaxed")],
        ),
        (
            "oneOf branch added, branches may overlap",
            prop(json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})),
            prop(json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}]})),
            Major,
            &[("/properties/p/oneOf", "undecidable")],
        ),
        (
            "oneOf branch narrowed, branches may overlap",
            prop(json!({"oneOf": [{"type": "string"}, {"minLength": 2}]})),
            prop(json!({"oneOf": [{"type": "string"}, {"minLength": 3}]})),
            Major,
            &[("/properties/p/oneOf", "undecidable")],
        ),
        (
            "oneOf branch only re-described",
            prop(json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})),
            prop(json!({"oneOf": [{"type": "string", "title": "text"}, {"type": "integer"}]})),
            Patch,
            &[("/properties/p/oneOf/0/title", "annotation")],
        ),
        (
            "tagged oneOf branch added",
            tagged(&[]),
            tagged(std::slice::from_ref(&wire)),
            Minor,
            &[("/properties/p/oneOf/2", "branch_added")],
        ),
        (
            "tagged oneOf branch removed",
            tagged(&[wire]),
            tagged(&[]),
            Major,
            &[("/properties/p/oneOf/2", "branch_removed")],
        ),
        (
            "tagged oneOf branch relaxed",
            tagged(&[]),
            wider_card,
            Minor,
            &[(
                "/properties/p/oneOf/0/properties/number/maxLength",
                "constraint_relaxed",
            )],
        ),
        (
            "tagged oneOf branch described",
            tagged(&[]),
            described,
            Patch,
            &[("/properties/p/oneOf/1/description", "annotation")],
        ),
        (
            "allOf branch added",
            json!({"allOf": [{"required": ["a"]}]}),
            json!({"allOf": [{"required": ["a"]}, {"required": ["b"]}]}),
            Major,
            &[("/allOf/1", "branch_added")],
        ),
        (
            "allOf branch removed",
            json!({"allOf": [{"required": ["a"]}, {"required": ["b"]}]}),
            json!({"allOf": [{"required": ["b"]}]}),
            Minor,
            &[("/allOf/0", "branch_removed")],
        ),
        (
            "not widened",
            prop(json!({"not": {"type": "string"}})),
            prop(json!({"not": {"type": ["string", "integer"]}})),
            Major,
            &[("/properties/p/not", "constraint_tightened")],
        ),
        (
            "not narrowed",
            prop(json!({"not": {"type": ["string", "integer"]}})),
            prop(json!({"not": {"type": "string"}})),
            Minor,
            &[("/properties/p/not", "constraint_relaxed")],
        ),
        (
            "then tightened under the same if",
            json!({"if": {"required": ["vat"]}, "then": {"required": ["country"]}}),
            json!({"if": {"required": ["vat"]}, "then": {"required": ["country", "company"]}}),
            Major,
            &[("/then/required", "required_added")],
        ),
        (
            "if changed",
            json!({"if": {"required": ["vat"]}, "then": {"required": ["country"]}}),
            json!({"if": {"required": ["tax_id"]}, "then": {"required": ["country"]}}),
            Major,
            &[("/if", "undecidable")],
        ),
        (
            "condition removed",
            json!({"if": {"required": ["vat"]}, "then": {"required": ["country"]}}),
            json!({}),
            Minor,
            &[("/if", "constraint_relaxed")],
        ),
    ]);
}

#[test]
fn references() {
    let address = |min: u64| json!({"type": "object", "properties": {"city": {"type": "string", "minLength": min}}});
    let with_defs = |min: u64| {
        json!({"type": "object", "properties": {"home": {"$ref": "#/$defs/address"}, "work": {"$ref": "#/$defs/address"}},
               "$defs": {"address": address(min)}})
    };
    let tree = |extra: bool| {
        let mut node = json!({"type": "object", "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}});
        if extra {
            node["properties"]["note"] = json!({"type": "string"});
        }
        json!({"$ref": "#/$defs/node", "$defs": {"node": node}})
    };
    check(vec![
        (
            "$ref into $defs relaxed, reported once",
            with_defs(1),
            with_defs(0),
            Minor,
            &[(
                "/$defs/address/properties/city/minLength",
                "constraint_relaxed",
            )],
        ),
        (
            "inline schema moved into $defs",
            json!({"type": "object", "properties": {"home": address(1)}}),
            json!({"type": "object", "properties": {"home": {"$ref": "#/$defs/address"}}, "$defs": {"address": address(1)}}),
            Patch,
            &[("/$defs", "annotation")],
        ),
        (
            "recursive schema: optional property added to a closed node",
            tree(false),
            tree(true),
            Minor,
            &[("/$defs/node/properties/note", "property_added")],
        ),
        (
            "$ref retargeted to a wider definition",
            json!({"properties": {"a": {"$ref": "#/$defs/short"}},
                   "$defs": {"short": {"maxLength": 5}, "long": {"maxLength": 50}}}),
            json!({"properties": {"a": {"$ref": "#/$defs/long"}},
                   "$defs": {"short": {"maxLength": 5}, "long": {"maxLength": 50}}}),
            Minor,
            &[("/$defs/long/maxLength", "constraint_relaxed")],
        ),
        (
            "$ref by anchor",
            json!({"properties": {"a": {"$ref": "#code"}}, "$defs": {"c": {"$anchor": "code", "type": "string"}}}),
            json!({"properties": {"a": {"$ref": "#code"}}, "$defs": {"c": {"$anchor": "code", "type": ["string", "null"]}}}),
            Minor,
            &[("/$defs/c/type", "type_widened")],
        ),
        (
            "$ref that points to nothing",
            json!({"properties": {"a": {"$ref": "#/$defs/missing"}}}),
            json!({"title": "x", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
            Major,
            &[
                ("/title", "annotation"),
                ("/properties/a/$ref", "undecidable"),
            ],
        ),
        (
            "$dynamicRef changed",
            json!({"properties": {"a": {"$dynamicRef": "#x"}}}),
            json!({"properties": {"a": {"$dynamicRef": "#y"}}}),
            Major,
            &[("/properties/a/$dynamicRef", "undecidable")],
        ),
    ]);
}

#[test]
fn a_comparison_too_deep_to_finish_is_undecidable_and_fits_a_small_stack() {
    let chain = |last: serde_json::Value| {
        let mut defs = serde_json::Map::new();
        for i in 0..300 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"type": "object", "properties": {
                    "x": {"$ref": next}, "y": {"items": {"anyOf": [{"$ref": next}]}}}}),
            );
        }
        defs.insert("d300".into(), last);
        json!({"$ref": "#/$defs/d0", "$defs": defs})
    };
    // Only the last definition differs, and only by widening; it is out of reach.
    let old = chain(json!({"type": "integer"}));
    let new = chain(json!({"type": "number"}));
    let found = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || super::classify(&old, &new))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(found.class, Major);
    let undecided: Vec<&str> = found
        .changes
        .iter()
        .filter_map(|c| match &c.kind {
            super::ChangeKind::Undecidable { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        undecided,
        [
            "subschemas and references nest too deep to compare",
            "the comparison stopped early"
        ]
    );
}
