//! Checks on a definition that the JSON Schema meta-schema does not make: size and depth limits,
//! the draft, and references that would leave the definition.

use std::io;

use serde_json::Value;

use super::violation::{Violation, push_segment};

/// The only `$schema` accepted.
pub(super) const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords whose values are data, not schemas: a `$ref` inside them is not a reference.
const DATA_KEYWORDS: &[&str] = &["const", "enum", "default", "examples"];

/// Keywords whose value is an object mapping names to schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Keywords whose value is a schema or an array of schemas.
const SUBSCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "prefixItems",
    "additionalItems",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// A pointer to the first container nested deeper than `max_depth` levels (the root container
/// is level 1), if any. Recursion stops at the limit, so any depth is safe to check.
pub(super) fn too_deep(definition: &Value, max_depth: usize) -> Option<String> {
    fn visit(value: &Value, levels_left: usize, pointer: &mut String) -> bool {
        let children: Box<dyn Iterator<Item = (String, &Value)>> = match value {
            Value::Object(map) => Box::new(map.iter().map(|(k, v)| (k.clone(), v))),
            Value::Array(items) => {
                Box::new(items.iter().enumerate().map(|(i, v)| (i.to_string(), v)))
            }
            _ => return false,
        };
        if levels_left == 0 {
            return true;
        }
        for (segment, child) in children {
            let len = pointer.len();
            push_segment(pointer, &segment);
            if visit(child, levels_left - 1, pointer) {
                return true;
            }
            pointer.truncate(len);
        }
        false
    }
    let mut pointer = String::new();
    visit(definition, max_depth, &mut pointer).then_some(pointer)
}

/// Whether `definition`, serialized as JSON, is longer than `max_bytes`. Serialization stops as
/// soon as the limit is passed.
pub(super) fn too_big(definition: &Value, max_bytes: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.left = self
                .left
                .checked_sub(buf.len())
                .ok_or_else(|| io::Error::other("size limit exceeded"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Counter { left: max_bytes }, definition).is_err()
}

/// Every `$schema` other than 2020-12 and every `$ref` or `$dynamicRef` that is not local
/// (starting with `#`), anywhere in the definition.
pub(super) fn foreign_references(definition: &Value) -> Vec<Violation> {
    let mut walk = Walk {
        pointer: String::new(),
        problems: Vec::new(),
    };
    walk.schema(definition);
    walk.problems
}

struct Walk {
    pointer: String,
    problems: Vec<Violation>,
}

impl Walk {
    /// A value in schema position: its keywords are known, so data keywords can be skipped.
    fn schema(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (keyword, value) in map {
                    if DATA_KEYWORDS.contains(&keyword.as_str()) {
                        continue;
                    }
                    self.enter(keyword, |walk| {
                        let keyword = keyword.as_str();
                        if SCHEMA_MAP_KEYWORDS.contains(&keyword) {
                            match value {
                                Value::Object(schemas) => {
                                    for (name, schema) in schemas {
                                        walk.enter(name, |walk| walk.schema(schema));
                                    }
                                }
                                other => walk.any(other),
                            }
                        } else if SUBSCHEMA_KEYWORDS.contains(&keyword) {
                            walk.schema(value);
                        } else {
                            walk.check(keyword, value);
                            walk.any(value);
                        }
                    });
                }
            }
            Value::Array(schemas) => self.each(schemas, Self::schema),
            _ => {}
        }
    }

    /// A value of unknown meaning: every `$schema`, `$ref` and `$dynamicRef` in it is checked,
    /// in case the engine reads it as a schema.
    fn any(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    self.enter(key, |walk| {
                        walk.check(key, value);
                        walk.any(value);
                    });
                }
            }
            Value::Array(values) => self.each(values, Self::any),
            _ => {}
        }
    }

    fn each(&mut self, values: &[Value], visit: fn(&mut Self, &Value)) {
        for (index, value) in values.iter().enumerate() {
            self.enter(&index.to_string(), |walk| visit(walk, value));
        }
    }

    fn enter(&mut self, segment: &str, visit: impl FnOnce(&mut Self)) {
        let len = self.pointer.len();
        push_segment(&mut self.pointer, segment);
        visit(self);
        self.pointer.truncate(len);
    }

    /// Checks the value of `key`, whose pointer is the current one.
    fn check(&mut self, key: &str, value: &Value) {
        let message = match (key, value) {
            ("$schema", Value::String(uri)) if uri == DRAFT_2020_12 => return,
            ("$schema", other) => format!(
                "unsupported $schema {other}: only {DRAFT_2020_12:?} (JSON Schema 2020-12) is accepted"
            ),
            ("$ref" | "$dynamicRef", Value::String(reference)) if !reference.starts_with('#') => {
                format!("remote {key} is not allowed: {reference}")
            }
            _ => return,
        };
        self.problems
            .push(Violation::new(self.pointer.clone(), key, message));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn depth_counts_containers_from_the_root() {
        let three = json!({"a": [{"b": 1}]});
        assert_eq!(too_deep(&three, 3), None);
        assert_eq!(too_deep(&three, 2).as_deref(), Some("/a/0"));
        assert_eq!(too_deep(&json!(1), 0), None);
    }

    #[test]
    fn size_is_the_serialized_length() {
        let value = json!({"a": 1});
        let len = value.to_string().len();
        assert!(!too_big(&value, len));
        assert!(too_big(&value, len - 1));
    }

    #[test]
    fn references_inside_data_keywords_are_data() {
        let definition = json!({
            "const": {"$ref": "https://example.com/a"},
            "properties": {
                "const": {"$ref": "https://example.com/b"},
                "x": {"default": {"$ref": "https://example.com/c"}}
            },
            "x-vendor": {"$ref": "https://example.com/d"}
        });
        let mut pointers: Vec<_> = foreign_references(&definition)
            .into_iter()
            .map(|v| v.pointer)
            .collect();
        pointers.sort();
        assert_eq!(pointers, ["/properties/const/$ref", "/x-vendor/$ref"]);
    }
}
