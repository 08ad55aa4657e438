//! vellum's own keywords in a schema definition: `x-vellum-index` and `x-vellum-ref` (SPEC §8).
//!
//! Both sit on a property schema reached from the root through `properties` only (objects within
//! objects): that is where a document has one value per entity, which an index or a foreign key
//! needs. A keyword anywhere else (under `items`, `$defs`, a combinator, or on the root) is refused
//! rather than silently ignored.

use serde::Serialize;
use serde_json::{Map, Value};

use super::violation::{Violation, push_segment};
use crate::SchemaId;

const INDEX: &str = "x-vellum-index";
const REFERENCE: &str = "x-vellum-ref";

/// What a definition asks of the store besides validation: indexes and references.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Annotations {
    /// Indexed paths, in document order. A referencing property is indexed too.
    pub indexes: Vec<PathIndex>,
    /// References to entities of another (or the same) type of the service.
    pub references: Vec<Reference>,
}

/// An index over the active documents for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathIndex {
    /// The RFC 6901 pointer of the property.
    pub pointer: String,
    /// The pointer's unescaped segments.
    pub segments: Vec<String>,
    /// Whether the value must be unique among active documents (`"x-vellum-index": "unique"`).
    pub unique: bool,
    /// Whether the property is a `format: date-time` string, indexed (and compared) as a
    /// timestamp rather than as JSON.
    pub date_time: bool,
}

/// A property whose value is the id of an entity of `target`, checked on every write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The RFC 6901 pointer of the property.
    pub pointer: String,
    /// The pointer's unescaped segments.
    pub segments: Vec<String>,
    /// The referenced entity type.
    pub target: SchemaId,
}

impl Annotations {
    /// Reads the annotations of `definition`, or every misplaced or malformed one, each with a
    /// pointer into the definition.
    pub(super) fn read(definition: &Value) -> Result<Annotations, Vec<Violation>> {
        let mut reader = Reader::default();
        if let Some(root) = definition.as_object() {
            for keyword in [INDEX, REFERENCE] {
                if root.contains_key(keyword) {
                    reader.misplaced(&format!("/{keyword}"), keyword);
                }
            }
            reader.properties(root, &mut String::new(), &mut Vec::new());
        }
        reader.stray(definition, &mut String::new(), true);
        if reader.problems.is_empty() {
            Ok(reader.found)
        } else {
            super::violation::sort(&mut reader.problems);
            Err(reader.problems)
        }
    }

    /// The index on `pointer`, if there is one.
    pub fn index_on(&self, pointer: &str) -> Option<&PathIndex> {
        self.indexes.iter().find(|index| index.pointer == pointer)
    }
}

#[derive(Default)]
struct Reader {
    found: Annotations,
    problems: Vec<Violation>,
    /// Pointers (into the definition) of the property schemas read as annotated.
    read_at: Vec<String>,
}

impl Reader {
    /// Reads the annotations of the `properties` of an object schema, recursively.
    fn properties(
        &mut self,
        object: &Map<String, Value>,
        at: &mut String,
        segments: &mut Vec<String>,
    ) {
        let Some(properties) = object.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, property) in properties {
            let Some(property) = property.as_object() else {
                continue;
            };
            let len = at.len();
            push_segment(at, "properties");
            push_segment(at, name);
            segments.push(name.clone());
            self.property(property, at, segments);
            self.properties(property, at, segments);
            segments.pop();
            at.truncate(len);
        }
    }

    fn property(&mut self, property: &Map<String, Value>, at: &str, segments: &[String]) {
        let mut pointer = String::new();
        for segment in segments {
            push_segment(&mut pointer, segment);
        }
        let index = property.get(INDEX);
        let reference = property.get(REFERENCE);
        if index.is_none() && reference.is_none() {
            return;
        }
        self.read_at.push(at.to_string());
        let date_time = is_date_time(property);
        let unique = match index {
            None | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(false),
            Some(Value::String(s)) if s == "unique" => Some(true),
            Some(_) => {
                self.problem(
                    &format!("{at}/{INDEX}"),
                    INDEX,
                    "x-vellum-index must be true, false or \"unique\"",
                );
                None
            }
        };
        if let Some(target) = reference {
            match target.as_str().map(SchemaId::new) {
                Some(Ok(target)) if is_string(property) => {
                    self.found.references.push(Reference {
                        pointer: pointer.clone(),
                        segments: segments.to_vec(),
                        target,
                    })
                }
                Some(Ok(_)) => self.problem(
                    &format!("{at}/{REFERENCE}"),
                    REFERENCE,
                    "a referencing property must be declared \"type\": \"string\" (it holds an entity id)",
                ),
                Some(Err(err)) => self.problem(
                    &format!("{at}/{REFERENCE}"),
                    REFERENCE,
                    &format!("x-vellum-ref must name an entity type: {err}"),
                ),
                None => self.problem(
                    &format!("{at}/{REFERENCE}"),
                    REFERENCE,
                    "x-vellum-ref must be a schema id string",
                ),
            }
        }
        // "Find by reference" is indexed: a referencing property gets a plain index unless
        // it asks for more.
        let unique = unique.or(reference.is_some().then_some(false));
        if let Some(unique) = unique {
            self.found.indexes.push(PathIndex {
                pointer,
                segments: segments.to_vec(),
                unique,
                date_time,
            });
        }
    }

    /// Refuses the keywords found anywhere other than where [`Reader::properties`] reads them.
    fn stray(&mut self, value: &Value, at: &mut String, root: bool) {
        let Value::Object(map) = value else {
            return self.stray_in_list(value, at);
        };
        if !root && !self.read_at.iter().any(|read| read == at) {
            for keyword in [INDEX, REFERENCE] {
                if map.contains_key(keyword) {
                    self.misplaced(&format!("{at}/{keyword}"), keyword);
                }
            }
        }
        for (key, child) in map {
            let len = at.len();
            push_segment(at, key);
            match key.as_str() {
                // Data, not schemas.
                "const" | "enum" | "default" | "examples" | "dependentRequired" | "required" => {}
                // Maps from names to schemas: the names are not keywords.
                "properties" | "patternProperties" | "$defs" | "definitions"
                | "dependentSchemas" => {
                    if let Value::Object(schemas) = child {
                        for (name, schema) in schemas {
                            let len = at.len();
                            push_segment(at, name);
                            self.stray(schema, at, false);
                            at.truncate(len);
                        }
                    }
                }
                _ => self.stray(child, at, false),
            }
            at.truncate(len);
        }
    }

    /// `prefixItems`, `allOf`, `anyOf`, `oneOf`: lists of schemas.
    fn stray_in_list(&mut self, value: &Value, at: &mut String) {
        if let Value::Array(items) = value {
            for (i, child) in items.iter().enumerate() {
                let len = at.len();
                push_segment(at, &i.to_string());
                self.stray(child, at, false);
                at.truncate(len);
            }
        }
    }

    fn misplaced(&mut self, pointer: &str, keyword: &str) {
        self.problem(
            pointer,
            keyword,
            &format!(
                "{keyword} is only read on a property reached from the root through \
                 \"properties\" (not under items, $defs, combinators or the root itself)"
            ),
        );
    }

    fn problem(&mut self, pointer: &str, keyword: &str, message: &str) {
        self.problems
            .push(Violation::new(pointer, keyword, message.to_string()));
    }
}

/// Whether a property schema declares a string (possibly nullable).
fn is_string(property: &Map<String, Value>) -> bool {
    match property.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => {
            types.iter().any(|t| t == "string")
                && types.iter().all(|t| t == "string" || t == "null")
        }
        _ => false,
    }
}

fn is_date_time(property: &Map<String, Value>) -> bool {
    is_string(property) && property.get("format").and_then(Value::as_str) == Some("date-time")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(definition: Value) -> Result<Annotations, Vec<(String, String)>> {
        Annotations::read(&definition).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| (p.pointer, p.keyword))
                .collect()
        })
    }

    #[test]
    fn reads_indexes_and_references_through_nested_properties() {
        let found = read(json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "x-vellum-index": "unique"},
                "total": {"type": "number", "x-vellum-index": true},
                "placed_at": {"type": "string", "format": "date-time", "x-vellum-index": true},
                "customer": {"type": "string", "format": "uuid", "x-vellum-ref": "customer"},
                "shipping": {"type": "object", "properties": {
                    "city/zip": {"type": "string", "x-vellum-index": true},
                    "plain": {"type": "string", "x-vellum-index": false}
                }}
            }
        }))
        .unwrap();
        let indexes: Vec<_> = found
            .indexes
            .iter()
            .map(|i| (i.pointer.as_str(), i.unique, i.date_time))
            .collect();
        assert_eq!(
            indexes,
            [
                ("/email", true, false),
                ("/total", false, false),
                ("/placed_at", false, true),
                ("/customer", false, false),
                ("/shipping/city~1zip", false, false),
            ]
        );
        assert_eq!(
            found.indexes[4].segments,
            ["shipping".to_string(), "city/zip".to_string()]
        );
        assert_eq!(found.references.len(), 1);
        assert_eq!(found.references[0].pointer, "/customer");
        assert_eq!(found.references[0].target.as_str(), "customer");
        assert!(found.index_on("/email").unwrap().unique);
    }

    #[test]
    fn a_unique_reference_keeps_its_unique_index() {
        let found = read(json!({"properties": {
            "account": {"type": "string", "x-vellum-ref": "account", "x-vellum-index": "unique"}
        }}))
        .unwrap();
        assert_eq!(found.indexes.len(), 1);
        assert!(found.indexes[0].unique);
    }

    #[test]
    fn refuses_misplaced_and_malformed_keywords() {
        let problems = read(json!({
            "x-vellum-index": true,
            "properties": {
                "a": {"type": "string", "x-vellum-index": "yes"},
                "b": {"type": "integer", "x-vellum-ref": "customer"},
                "c": {"type": "string", "x-vellum-ref": "Customer"},
                "d": {"type": "string", "x-vellum-ref": 7},
                "lines": {"type": "array", "items": {"properties": {
                    "sku": {"type": "string", "x-vellum-index": true}
                }}}
            },
            "$defs": {"m": {"type": "string", "x-vellum-ref": "customer"}},
            "anyOf": [{"properties": {"e": {"x-vellum-index": true}}}]
        }))
        .unwrap_err();
        let expected = [
            ("/$defs/m/x-vellum-ref", REFERENCE),
            ("/anyOf/0/properties/e/x-vellum-index", INDEX),
            ("/properties/a/x-vellum-index", INDEX),
            ("/properties/b/x-vellum-ref", REFERENCE),
            ("/properties/c/x-vellum-ref", REFERENCE),
            ("/properties/d/x-vellum-ref", REFERENCE),
            (
                "/properties/lines/items/properties/sku/x-vellum-index",
                INDEX,
            ),
            ("/x-vellum-index", INDEX),
        ]
        .map(|(p, k)| (p.to_string(), k.to_string()));
        assert_eq!(problems, expected);
    }

    #[test]
    fn keyword_names_as_property_names_or_data_are_not_annotations() {
        let found = read(json!({"properties": {
            "x-vellum-index": {"type": "object", "default": {"x-vellum-ref": "customer"}},
            "tags": {"enum": [{"x-vellum-index": true}]}
        }}))
        .unwrap();
        assert_eq!(found, Annotations::default());
    }

    #[test]
    fn no_annotations_is_empty() {
        assert_eq!(
            read(json!({"properties": {"a": {"type": "string"}}})).unwrap(),
            Annotations::default()
        );
    }
}
