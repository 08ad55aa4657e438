//! One side of a comparison: a definition with its local references indexed, so `$ref` can be
//! followed without fetching anything.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

/// Keywords whose values are data, not schemas: nothing in them is a keyword.
const DATA_KEYWORDS: &[&str] = &["const", "enum", "default", "examples"];

/// Keywords that refer to another part of the definition.
pub(super) const REFERENCE_KEYWORDS: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];

/// A definition, indexed once.
pub(super) struct Document<'a> {
    pub(super) root: &'a Value,
    /// `$anchor` name -> (pointer, schema).
    anchors: HashMap<&'a str, (String, &'a Value)>,
    /// `$dynamicAnchor` name -> schema.
    pub(super) dynamic_anchors: HashMap<&'a str, &'a Value>,
    /// Addresses of the values whose subtree holds a reference: equal subtrees without one are
    /// equal in meaning too, so they need no comparison.
    with_references: HashSet<usize>,
    /// Whether a subschema below the root has an `$id`, which would change what its
    /// references resolve against.
    nested_id: bool,
}

/// The address of a value inside a definition: its identity during one comparison.
pub(super) fn address(value: &Value) -> usize {
    std::ptr::from_ref(value) as usize
}

impl<'a> Document<'a> {
    pub(super) fn new(root: &'a Value) -> Document<'a> {
        let mut document = Document {
            root,
            anchors: HashMap::new(),
            dynamic_anchors: HashMap::new(),
            with_references: HashSet::new(),
            nested_id: false,
        };
        let mut pointer = String::new();
        document.index(root, &mut pointer, true);
        document
    }

    /// Indexes `value` and everything under it; whether its subtree holds a reference.
    fn index(&mut self, value: &'a Value, pointer: &mut String, is_root: bool) -> bool {
        let mut has_reference = false;
        match value {
            Value::Object(map) => {
                self.index_keywords(value, map, pointer, is_root);
                for (key, child) in map {
                    if REFERENCE_KEYWORDS.contains(&key.as_str()) {
                        has_reference = true;
                    }
                    if DATA_KEYWORDS.contains(&key.as_str()) {
                        continue;
                    }
                    let len = pointer.len();
                    push_segment(pointer, key);
                    has_reference |= self.index(child, pointer, false);
                    pointer.truncate(len);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    let len = pointer.len();
                    push_segment(pointer, &index.to_string());
                    has_reference |= self.index(child, pointer, false);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
        if has_reference {
            self.with_references.insert(address(value));
        }
        has_reference
    }

    fn index_keywords(
        &mut self,
        schema: &'a Value,
        map: &'a Map<String, Value>,
        pointer: &str,
        is_root: bool,
    ) {
        if let Some(Value::String(name)) = map.get("$anchor") {
            self.anchors
                .entry(name)
                .or_insert_with(|| (pointer.to_owned(), schema));
        }
        if let Some(Value::String(name)) = map.get("$dynamicAnchor") {
            self.dynamic_anchors.entry(name).or_insert(schema);
        }
        if !is_root && map.contains_key("$id") {
            self.nested_id = true;
        }
    }

    /// Whether `value`'s subtree holds a `$ref`, `$dynamicRef` or `$recursiveRef`.
    pub(super) fn has_references(&self, value: &Value) -> bool {
        self.with_references.contains(&address(value))
    }

    /// The schema a local reference names, with its pointer; or why it cannot be followed.
    pub(super) fn resolve(&self, reference: &str) -> Result<(&'a Value, String), String> {
        if self.nested_id {
            return Err(format!(
                "{reference:?} may resolve against a nested $id, which is not followed"
            ));
        }
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(format!("{reference:?} is not a local reference"));
        };
        let fragment = percent_decode(fragment);
        if fragment.is_empty() {
            return Ok((self.root, String::new()));
        }
        if fragment.starts_with('/') {
            return self
                .root
                .pointer(&fragment)
                .map(|target| (target, fragment.clone()))
                .ok_or_else(|| format!("{reference:?} points to nothing"));
        }
        self.anchors
            .get(fragment.as_str())
            .map(|(pointer, target)| (*target, pointer.clone()))
            .ok_or_else(|| format!("no $anchor named {fragment:?}"))
    }
}

/// Appends `segment` to a JSON pointer, escaped as RFC 6901 requires.
pub(super) fn push_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `pointer` with `segments` appended.
pub(super) fn child(pointer: &str, segments: &[&str]) -> String {
    let mut pointer = pointer.to_owned();
    for segment in segments {
        push_segment(&mut pointer, segment);
    }
    pointer
}

/// Decodes `%XX` escapes of a URI fragment; malformed escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resolves_pointers_anchors_and_the_root() {
        let definition = json!({
            "$defs": {
                "a b": {"type": "string"},
                "named": {"$anchor": "node", "type": "integer"}
            },
            "properties": {"x": {"$ref": "#/$defs/a%20b"}}
        });
        let document = Document::new(&definition);
        let (target, pointer) = document.resolve("#/$defs/a%20b").unwrap();
        assert_eq!(
            (target, pointer.as_str()),
            (&json!({"type": "string"}), "/$defs/a b")
        );
        let (target, pointer) = document.resolve("#node").unwrap();
        assert_eq!(target["type"], "integer");
        assert_eq!(pointer, "/$defs/named");
        assert_eq!(document.resolve("#").unwrap().0, &definition);
        assert!(document.resolve("#/$defs/missing").is_err());
        assert!(document.resolve("#nothing").is_err());
        assert!(document.resolve("other.json#/a").is_err());
    }

    #[test]
    fn knows_which_subtrees_hold_references() {
        let definition = json!({
            "properties": {"x": {"$ref": "#/$defs/a"}, "y": {"type": "string"}},
            "const": {"$ref": "data, not a reference"},
            "$defs": {"a": {}}
        });
        let document = Document::new(&definition);
        assert!(document.has_references(&definition));
        assert!(document.has_references(&definition["properties"]));
        assert!(!document.has_references(&definition["properties"]["y"]));
        assert!(!document.has_references(&definition["const"]));
    }

    #[test]
    fn a_nested_id_stops_resolution() {
        let definition =
            json!({"$defs": {"a": {"$id": "https://example.com/a", "type": "string"}}});
        assert!(Document::new(&definition).resolve("#/$defs/a").is_err());
        let root_id = json!({"$id": "https://example.com/root", "$defs": {"a": {}}});
        assert!(Document::new(&root_id).resolve("#/$defs/a").is_ok());
    }

    #[test]
    fn pointers_are_escaped() {
        assert_eq!(
            child("/properties", &["a/b", "m~n"]),
            "/properties/a~1b/m~0n"
        );
    }
}
