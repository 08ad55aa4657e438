//! Property: a change classified minor or patch keeps every document valid under the old
//! version valid under the new one (and a patch admits no new document).
//!
//! Schemas come from a small generator (objects, arrays, `anyOf`, scalars with bounds, lengths
//! and enums), the new version from random mutations of the old one, and documents from a
//! generator that follows the schema but also strays (undeclared keys, wrong types), so that
//! narrowing changes are caught. Validity is decided by [`CompiledSchema`], not by the rules
//! under test.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::{ChangeClass, classify};
use crate::schema::{CompiledSchema, SchemaLimits};

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
const WORDS: [&str; 5] = ["", "x", "ab", "xyz", "abcd"];

fn scalar() -> impl Strategy<Value = Value> {
    let bound = || proptest::option::of(-2i64..4);
    let length = || proptest::option::of(0u64..4);
    prop_oneof![
        (
            prop::sample::select(vec!["integer", "number"]),
            bound(),
            bound(),
            proptest::option::of(1u64..4)
        )
            .prop_map(|(kind, min, max, step)| {
                let mut schema = json!({"type": kind});
                if let Some(min) = min {
                    schema["minimum"] = json!(min);
                }
                if let Some(max) = max {
                    schema["maximum"] = json!(max);
                }
                if let Some(step) = step {
                    schema["multipleOf"] = json!(step);
                }
                schema
            }),
        (length(), length(), any::<bool>()).prop_map(|(min, max, nullable)| {
            let mut schema =
                json!({"type": if nullable { json!(["string", "null"]) } else { json!("string") }});
            if let Some(min) = min {
                schema["minLength"] = json!(min);
            }
            if let Some(max) = max {
                schema["maxLength"] = json!(max);
            }
            schema
        }),
        prop::sample::subsequence(WORDS.to_vec(), 1..4).prop_map(|words| json!({"enum": words})),
        Just(json!({"type": "boolean"})),
        Just(json!({})),
        Just(json!({"description": "anything"})),
    ]
}

fn object(inner: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), inner.clone(), 0..4),
        prop::sample::subsequence(NAMES.to_vec(), 0..3),
        prop_oneof![
            Just(None),
            Just(Some(json!(false))),
            Just(Some(json!(true))),
            inner.prop_map(Some)
        ],
    )
        .prop_map(|(properties, required, rest)| {
            let mut schema = json!({"type": "object", "properties": properties});
            let required: Vec<&str> = required
                .into_iter()
                .filter(|r| properties.contains_key(*r))
                .collect();
            if !required.is_empty() {
                schema["required"] = json!(required);
            }
            if let Some(rest) = rest {
                schema["additionalProperties"] = rest;
            }
            schema
        })
}

fn schema() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                object(inner.clone()),
                (
                    inner.clone(),
                    proptest::option::of(0u64..2),
                    proptest::option::of(1u64..4)
                )
                    .prop_map(|(items, min, max)| {
                        let mut schema = json!({"type": "array", "items": items});
                        if let Some(min) = min {
                            schema["minItems"] = json!(min);
                        }
                        if let Some(max) = max {
                            schema["maxItems"] = json!(max);
                        }
                        schema
                    }),
                prop::collection::vec(inner, 1..3).prop_map(|branches| json!({"anyOf": branches})),
            ]
        })
        .boxed()
}

/// One random edit of a subschema.
#[derive(Debug, Clone)]
enum Mutation {
    AddProperty(&'static str, Value),
    RemoveProperty(Index),
    ToggleRequired(&'static str),
    SetRest(Option<bool>),
    SetType(&'static str),
    RemoveKeyword(Index),
    SetNumber(&'static str, i64),
    SetCount(&'static str, u64),
    AddEnumValue(&'static str),
    RemoveEnumValue(Index),
    AddBranch(Value),
    Replace(Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (prop::sample::select(NAMES.to_vec()), scalar())
            .prop_map(|(n, s)| Mutation::AddProperty(n, s)),
        any::<Index>().prop_map(Mutation::RemoveProperty),
        prop::sample::select(NAMES.to_vec()).prop_map(Mutation::ToggleRequired),
        prop_oneof![Just(None), Just(Some(false)), Just(Some(true))].prop_map(Mutation::SetRest),
        prop::sample::select(vec![
            "integer", "number", "string", "null", "object", "array"
        ])
        .prop_map(Mutation::SetType),
        any::<Index>().prop_map(Mutation::RemoveKeyword),
        (
            prop::sample::select(vec![
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum"
            ]),
            -2i64..4
        )
            .prop_map(|(k, v)| Mutation::SetNumber(k, v)),
        (
            prop::sample::select(vec![
                "minLength",
                "maxLength",
                "minItems",
                "maxItems",
                "multipleOf"
            ]),
            0u64..4
        )
            .prop_map(|(k, v)| Mutation::SetCount(k, v)),
        prop::sample::select(WORDS.to_vec()).prop_map(Mutation::AddEnumValue),
        any::<Index>().prop_map(Mutation::RemoveEnumValue),
        scalar().prop_map(Mutation::AddBranch),
        scalar().prop_map(Mutation::Replace),
    ]
}

/// Pointers to every subschema of `schema` the generator makes.
fn subschemas(schema: &Value, pointer: String, out: &mut Vec<String>) {
    out.push(pointer.clone());
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            subschemas(child, format!("{pointer}/properties/{name}"), out);
        }
    }
    if let Some(rest @ Value::Object(_)) = schema.get("additionalProperties") {
        subschemas(rest, format!("{pointer}/additionalProperties"), out);
    }
    if let Some(items) = schema.get("items") {
        subschemas(items, format!("{pointer}/items"), out);
    }
    if let Some(Value::Array(branches)) = schema.get("anyOf") {
        for (i, branch) in branches.iter().enumerate() {
            subschemas(branch, format!("{pointer}/anyOf/{i}"), out);
        }
    }
}

fn apply(node: &mut Map<String, Value>, mutation: Mutation) {
    match mutation {
        Mutation::AddProperty(name, schema) => {
            node.entry("properties").or_insert_with(|| json!({}))[name] = schema;
        }
        Mutation::RemoveProperty(index) => {
            if let Some(Value::Object(properties)) = node.get_mut("properties")
                && !properties.is_empty()
            {
                let name = properties
                    .keys()
                    .nth(index.index(properties.len()))
                    .unwrap()
                    .clone();
                properties.shift_remove(&name);
            }
        }
        Mutation::ToggleRequired(name) => {
            let mut required: Vec<Value> = node
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match required.iter().position(|r| r == name) {
                Some(at) => {
                    required.remove(at);
                }
                None => required.push(json!(name)),
            }
            node.insert("required".into(), json!(required));
        }
        Mutation::SetRest(rest) => {
            match rest {
                Some(rest) => node.insert("additionalProperties".into(), json!(rest)),
                None => node.shift_remove("additionalProperties"),
            };
        }
        Mutation::SetType(kind) => {
            node.insert("type".into(), json!(kind));
        }
        Mutation::RemoveKeyword(index) => {
            if !node.is_empty() {
                let keyword = node.keys().nth(index.index(node.len())).unwrap().clone();
                node.shift_remove(&keyword);
            }
        }
        Mutation::SetNumber(keyword, value) => {
            node.insert(keyword.into(), json!(value));
        }
        Mutation::SetCount(keyword, value) => {
            let value = if keyword == "multipleOf" {
                value.max(1)
            } else {
                value
            };
            node.insert(keyword.into(), json!(value));
        }
        Mutation::AddEnumValue(word) => {
            if let Some(Value::Array(values)) = node.get_mut("enum")
                && !values.contains(&json!(word))
            {
                values.push(json!(word));
            }
        }
        Mutation::RemoveEnumValue(index) => {
            if let Some(Value::Array(values)) = node.get_mut("enum")
                && values.len() > 1
            {
                values.remove(index.index(values.len()));
            }
        }
        Mutation::AddBranch(branch) => {
            if let Some(Value::Array(branches)) = node.get_mut("anyOf") {
                branches.push(branch);
            }
        }
        Mutation::Replace(schema) => {
            *node = schema.as_object().unwrap().clone();
        }
    }
}

fn mutate(old: &Value, edits: Vec<(Index, Mutation)>) -> Value {
    let mut new = old.clone();
    for (at, mutation) in edits {
        let mut pointers = Vec::new();
        subschemas(&new, String::new(), &mut pointers);
        let pointer = &pointers[at.index(pointers.len())];
        let Some(Value::Object(node)) = new.pointer_mut(pointer) else {
            continue;
        };
        // The root stays an object schema: documents are objects.
        if pointer.is_empty() && matches!(mutation, Mutation::Replace(_) | Mutation::SetType(_)) {
            continue;
        }
        apply(node, mutation);
    }
    new
}

/// A small deterministic generator (xorshift), so one seed gives many documents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn anything(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.below(7) as i64 - 2),
        3 => json!(rng.below(7) as f64 - 1.5),
        4 | 5 => json!(WORDS[rng.below(WORDS.len())]),
        6 => Value::Array(
            (0..rng.below(3))
                .map(|_| anything(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(3))
                .map(|_| {
                    (
                        NAMES[rng.below(NAMES.len())].to_owned(),
                        anything(rng, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

/// A document shaped by `schema`, often valid, sometimes not.
fn instance(schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 || rng.chance(12) {
        return anything(rng, depth.min(1));
    }
    let Some(map) = schema.as_object() else {
        return anything(rng, 1);
    };
    if let Some(Value::Array(values)) = map.get("enum") {
        return values[rng.below(values.len())].clone();
    }
    if let Some(Value::Array(branches)) = map.get("anyOf") {
        return instance(&branches[rng.below(branches.len())], rng, depth);
    }
    let kind = match map.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds[rng.below(kinds.len())].as_str().unwrap_or("null"),
        _ => return anything(rng, 2),
    };
    let number = |key: &str| map.get(key).and_then(Value::as_i64);
    match kind {
        "integer" | "number" => {
            let low = number("minimum").unwrap_or(-2);
            let high = number("maximum").unwrap_or(low + 6).max(low);
            let step = number("multipleOf").unwrap_or(1).max(1);
            let value = (low + rng.below((high - low + 1) as usize) as i64) / step * step;
            if kind == "number" && rng.chance(3) {
                json!(value as f64 + 0.5)
            } else {
                json!(value)
            }
        }
        "string" => {
            let min = number("minLength").unwrap_or(0) as usize;
            let max = number("maxLength").map_or(5, |m| m as usize).max(min);
            json!("q".repeat(min + rng.below(max - min + 1)))
        }
        "boolean" => json!(rng.chance(2)),
        "null" => Value::Null,
        "array" => {
            let min = number("minItems").unwrap_or(0) as usize;
            let max = number("maxItems").map_or(3, |m| m as usize).max(min);
            let items = map.get("items").unwrap_or(&Value::Bool(true));
            Value::Array(
                (0..min + rng.below(max - min + 1))
                    .map(|_| instance(items, rng, depth - 1))
                    .collect(),
            )
        }
        _ => {
            let mut document = Map::new();
            let required: Vec<&str> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (name, schema) in properties {
                    if required.contains(&name.as_str()) || rng.chance(2) {
                        document.insert(name.clone(), instance(schema, rng, depth - 1));
                    }
                }
            }
            // Undeclared keys, valid or not for the rest schema: they catch narrowing changes.
            let rest = map
                .get("additionalProperties")
                .unwrap_or(&Value::Bool(true));
            for _ in 0..rng.below(3) {
                let name = NAMES[rng.below(NAMES.len())];
                if !document.contains_key(name) {
                    document.insert(name.to_owned(), instance(rest, rng, depth - 1));
                }
            }
            Value::Object(document)
        }
    }
}

fn compile(definition: &Value) -> CompiledSchema {
    CompiledSchema::compile(definition, &SchemaLimits::default())
        .unwrap_or_else(|e| panic!("generated an invalid schema {definition}: {e}"))
}

/// The documents of `seed` that `schema` accepts.
fn valid_documents(schema: &Value, compiled: &CompiledSchema, seed: u64) -> Vec<Value> {
    let mut rng = Rng(seed | 1);
    (0..60)
        .map(|_| {
            let mut document = instance(schema, &mut rng, 4);
            if !document.is_object() {
                document = json!({});
            }
            document
        })
        .filter(|d| compiled.validate(d).is_ok())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn minor_and_patch_changes_keep_documents_valid(
        old in object(schema()),
        edits in prop::collection::vec((any::<Index>(), mutation()), 1..4),
        seed in any::<u64>(),
    ) {
        let new = mutate(&old, edits);
        let found = classify(&old, &new);
        let (old_schema, new_schema) = (compile(&old), compile(&new));
        if found.class <= ChangeClass::Minor {
            for document in valid_documents(&old, &old_schema, seed) {
                prop_assert!(
                    new_schema.validate(&document).is_ok(),
                    "{document} is valid under\n{old}\nbut not under\n{new}\nclassified {:#?}",
                    found
                );
            }
        }
        if found.class == ChangeClass::Patch {
            for document in valid_documents(&new, &new_schema, seed) {
                prop_assert!(
                    old_schema.validate(&document).is_ok(),
                    "{document} is valid under\n{new}\nbut not under\n{old}\nclassified patch: {:#?}",
                    found
                );
            }
        }
    }
}
