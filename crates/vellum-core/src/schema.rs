//! JSON Schema definitions: checked against the 2020-12 meta-schema, compiled once, then used to
//! validate documents.
//!
//! Compilation never touches the network or the file system: references must be local (`#...`),
//! and patterns use the linear-time `regex` engine, so a definition cannot make validation hang.

mod annotations;
mod definition;
mod storable;
mod violation;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

use crate::{Error, Result};

pub use annotations::{Annotations, PathIndex, Reference};
pub use violation::Violation;

/// Limits applied when compiling a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaLimits {
    /// The longest definition accepted, in bytes of its serialized JSON. Default 256 KiB.
    pub max_definition_bytes: usize,
    /// The deepest nesting of objects and arrays accepted, the root counting as one level.
    /// Default 64.
    pub max_depth: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        SchemaLimits {
            max_definition_bytes: 256 * 1024,
            max_depth: 64,
        }
    }
}

/// A schema definition checked against the JSON Schema 2020-12 meta-schema and compiled once.
///
/// Compile it when it is registered or first loaded, keep it (it is `Send + Sync`, share it in
/// an `Arc`), and validate every document written under that schema version with it.
///
/// ```
/// use serde_json::json;
/// use vellum_core::schema::{CompiledSchema, SchemaLimits};
///
/// let schema = CompiledSchema::compile(
///     &json!({
///         "type": "object",
///         "required": ["sku"],
///         "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}
///     }),
///     &SchemaLimits::default(),
/// )?;
///
/// assert!(schema.validate(&json!({"sku": "A-1", "qty": 2})).is_ok());
///
/// let violations = schema.validate(&json!({"qty": "two"})).unwrap_err();
/// let found: Vec<_> = violations.iter().map(|v| (v.pointer.as_str(), v.keyword.as_str())).collect();
/// assert_eq!(found, [("", "required"), ("/qty", "type")]);
/// # Ok::<(), vellum_core::Error>(())
/// ```
pub struct CompiledSchema {
    definition: Value,
    validator: Validator,
    annotations: Annotations,
}

// Compiled schemas are cached and shared between requests.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<CompiledSchema>();
};

impl CompiledSchema {
    /// Checks `definition` and compiles it.
    ///
    /// The definition must be a JSON object within `limits`; its `$schema`, if present, must be
    /// `https://json-schema.org/draft/2020-12/schema`; it must be valid against the 2020-12
    /// meta-schema; every `$ref` and `$dynamicRef` must be local (start with `#`); and every
    /// `pattern` must be a regular expression the `regex` crate accepts. Formats (`date-time`,
    /// `email`, ...) are asserted, not just annotated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchema`] listing every problem found, each with a JSON pointer into
    /// `definition`, sorted by pointer then keyword. A definition over the limits is refused
    /// before anything else is checked.
    pub fn compile(definition: &Value, limits: &SchemaLimits) -> Result<CompiledSchema> {
        let refuse = |problems: Vec<Violation>| Error::InvalidSchema { problems };
        if !definition.is_object() {
            return Err(refuse(vec![Violation::new(
                "",
                "type",
                "a schema definition must be a JSON object",
            )]));
        }
        // Depth first: it is checked without deep recursion, which the size check relies on.
        if let Some(pointer) = definition::too_deep(definition, limits.max_depth) {
            return Err(refuse(vec![Violation::new(
                pointer,
                "",
                format!(
                    "the definition nests deeper than {} levels",
                    limits.max_depth
                ),
            )]));
        }
        if definition::too_big(definition, limits.max_definition_bytes) {
            return Err(refuse(vec![Violation::new(
                "",
                "",
                format!(
                    "the definition is larger than {} bytes",
                    limits.max_definition_bytes
                ),
            )]));
        }

        let mut problems = definition::foreign_references(definition);
        problems.extend(storable::nul_characters(definition));
        problems.extend(
            jsonschema::draft202012::meta::validator()
                .iter_errors(definition)
                .map(|error| Violation::from_error(&error)),
        );
        let annotations = match Annotations::read(definition) {
            Ok(annotations) => annotations,
            Err(found) => {
                problems.extend(found);
                Annotations::default()
            }
        };
        if !problems.is_empty() {
            violation::sort(&mut problems);
            return Err(refuse(problems));
        }

        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_pattern_options(PatternOptions::regex())
            .offline()
            .build(definition)
            .map_err(|error| refuse(vec![build_problem(&error)]))?;
        Ok(CompiledSchema {
            definition: definition.clone(),
            validator,
            annotations,
        })
    }

    /// The definition, as given to [`CompiledSchema::compile`].
    pub fn definition(&self) -> &Value {
        &self.definition
    }

    /// The indexes and references the definition declares (`x-vellum-index`, `x-vellum-ref`).
    pub fn annotations(&self) -> &Annotations {
        &self.annotations
    }

    /// Ok, or every violation (all of them, not just the first), sorted by pointer then keyword.
    ///
    /// A document must be a JSON object; anything else is a single violation at the root. Strings
    /// and keys containing U+0000 are violations too: PostgreSQL cannot store them.
    ///
    /// # Errors
    ///
    /// The violations, each with a JSON pointer into `document`.
    pub fn validate(&self, document: &Value) -> Result<(), Vec<Violation>> {
        if !document.is_object() {
            return Err(vec![Violation::new(
                "",
                "type",
                "a document must be a JSON object",
            )]);
        }
        // A document PostgreSQL cannot store is refused like an invalid one, with the pointer.
        let mut violations = storable::nul_characters(document);
        // Most documents are valid: the boolean check stops at nothing and builds no errors,
        // and only an invalid document pays for collecting every violation.
        if violations.is_empty() && self.validator.is_valid(document) {
            return Ok(());
        }
        violations.extend(
            self.validator
                .iter_errors(document)
                .map(|error| Violation::from_error(&error)),
        );
        if violations.is_empty() {
            return Ok(());
        }
        violation::sort(&mut violations);
        Err(violations)
    }
}

/// The problem the compiler found in a definition the meta-schema accepted.
fn build_problem(error: &jsonschema::ValidationError<'_>) -> Violation {
    let mut problem = Violation::from_error(error);
    // A `pattern` the engine cannot compile surfaces as a failed "regex" format; say why.
    if let ValidationErrorKind::Format { format } = error.kind()
        && format == "regex"
    {
        problem.message = format!(
            "invalid regular expression {}: patterns use the syntax of the Rust regex crate, \
             without look-around or backreferences",
            error.instance()
        );
    }
    problem
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(definition: Value) -> Result<CompiledSchema> {
        CompiledSchema::compile(&definition, &SchemaLimits::default())
    }

    fn problems(definition: Value) -> Vec<Violation> {
        match compile(definition) {
            Err(Error::InvalidSchema { problems }) => problems,
            other => panic!("expected InvalidSchema, got {other:?}"),
        }
    }

    fn pointers(violations: &[Violation]) -> Vec<(&str, &str)> {
        violations
            .iter()
            .map(|v| (v.pointer.as_str(), v.keyword.as_str()))
            .collect()
    }

    #[test]
    fn refuses_a_definition_that_is_not_an_object() {
        for definition in [json!(true), json!([]), json!("string")] {
            let found = problems(definition);
            assert_eq!(pointers(&found), [("", "type")]);
        }
    }

    #[test]
    fn reports_every_meta_schema_error() {
        let found = problems(json!({
            "type": 12,
            "properties": {"name": {"minLength": -1}}
        }));
        let at: Vec<_> = found.iter().map(|v| v.pointer.as_str()).collect();
        assert!(at.contains(&"/type"), "{found:?}");
        assert!(at.contains(&"/properties/name/minLength"), "{found:?}");
    }

    #[test]
    fn refuses_other_drafts() {
        let found = problems(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object"
        }));
        assert_eq!(pointers(&found), [("/$schema", "$schema")]);
        assert!(
            found[0]
                .message
                .contains("https://json-schema.org/draft/2020-12/schema"),
            "{}",
            found[0].message
        );
        assert!(
            compile(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object"
            }))
            .is_ok()
        );
    }

    #[test]
    fn refuses_remote_references_anywhere() {
        let found = problems(json!({
            "$ref": "https://example.com/root.json",
            "properties": {
                "customer": {"$ref": "https://example.com/customer.json#/x"},
                "lines": {"items": {"$dynamicRef": "other.json#node"}}
            }
        }));
        assert_eq!(
            pointers(&found),
            [
                ("/$ref", "$ref"),
                ("/properties/customer/$ref", "$ref"),
                ("/properties/lines/items/$dynamicRef", "$dynamicRef"),
            ]
        );
        assert_eq!(
            found[1].message,
            "remote $ref is not allowed: https://example.com/customer.json#/x"
        );
    }

    #[test]
    fn resolves_local_references_to_defs() {
        let schema = compile(json!({
            "type": "object",
            "properties": {"home": {"$ref": "#/$defs/address"}},
            "$defs": {
                "address": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {"city": {"type": "string"}}
                }
            }
        }))
        .unwrap();
        assert!(schema.validate(&json!({"home": {"city": "Lyon"}})).is_ok());
        let violations = schema.validate(&json!({"home": {}})).unwrap_err();
        assert_eq!(pointers(&violations), [("/home", "required")]);
    }

    #[test]
    fn catastrophic_patterns_run_in_linear_time() {
        let schema = compile(json!({
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}
        }))
        .unwrap();
        let evil = format!("{}!", "a".repeat(49));
        let violations = schema.validate(&json!({ "code": evil })).unwrap_err();
        assert_eq!(pointers(&violations), [("/code", "pattern")]);
        assert!(schema.validate(&json!({"code": "a".repeat(50)})).is_ok());
    }

    #[test]
    fn refuses_invalid_patterns() {
        for (definition, pointer) in [
            (
                json!({"properties": {"code": {"pattern": "(unclosed"}}}),
                "/properties/code/pattern",
            ),
            (
                json!({"patternProperties": {"[z-a]": {}}}),
                "/patternProperties/[z-a]",
            ),
            (json!({"pattern": "^(?=a)"}), "/pattern"),
        ] {
            let found = problems(definition);
            assert_eq!(pointers(&found), [(pointer, "format")]);
            assert!(
                found[0].message.starts_with("invalid regular expression"),
                "{}",
                found[0].message
            );
        }
    }

    #[test]
    fn refuses_definitions_over_the_limits() {
        let limits = SchemaLimits::default();
        let mut deep = json!({"type": "string"});
        for _ in 0..70 {
            deep = json!({ "items": deep });
        }
        let found = problems(deep);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("deeper than 64"), "{found:?}");
        assert!(found[0].pointer.starts_with("/items/items/"));

        let big = json!({
            "type": "object",
            "description": "x".repeat(limits.max_definition_bytes)
        });
        let found = problems(big);
        assert_eq!(pointers(&found), [("", "")]);
        assert!(found[0].message.contains("262144 bytes"), "{found:?}");
    }

    #[test]
    fn reports_every_violation_with_its_pointer() {
        let schema = compile(json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "qty": {"type": "integer"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"sku": {"type": "string", "minLength": 3}}
                    }
                }
            }
        }))
        .unwrap();
        let violations = schema
            .validate(&json!({
                "qty": "three",
                "items": [{"sku": "ABC"}, {"sku": "A"}]
            }))
            .unwrap_err();
        assert_eq!(
            pointers(&violations),
            [
                ("", "required"),
                ("/items/1/sku", "minLength"),
                ("/qty", "type")
            ]
        );
        assert!(
            violations[0].message.contains("name"),
            "{}",
            violations[0].message
        );
    }

    #[test]
    fn validates_formats() {
        let schema = compile(json!({
            "properties": {"at": {"type": "string", "format": "date-time"}}
        }))
        .unwrap();
        assert!(
            schema
                .validate(&json!({"at": "2024-05-01T12:30:00Z"}))
                .is_ok()
        );
        let violations = schema.validate(&json!({"at": "yesterday"})).unwrap_err();
        assert_eq!(pointers(&violations), [("/at", "format")]);
    }

    #[test]
    fn documents_must_be_objects() {
        let schema = compile(json!({})).unwrap();
        let violations = schema.validate(&json!([1, 2])).unwrap_err();
        assert_eq!(
            violations,
            [Violation::new(
                "",
                "type",
                "a document must be a JSON object"
            )]
        );
    }

    #[test]
    fn keeps_the_definition() {
        let definition = json!({"type": "object", "title": "Order"});
        let schema = compile(definition.clone()).unwrap();
        assert_eq!(schema.definition(), &definition);
        assert!(format!("{schema:?}").contains("Order"));
    }
}
