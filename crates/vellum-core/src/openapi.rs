//! OpenAPI schemas of the core types that appear in the HTTP API (feature `openapi`).
//!
//! Names and versions serialize as strings with a fixed grammar, so their schemas are written
//! by hand: a string with the pattern the parsers enforce.

use utoipa::openapi::{
    ObjectBuilder, RefOr,
    schema::{Schema, Type},
};

use serde_json::json;

use crate::{SchemaId, ServiceName, Version, migration::Operation};

/// One version component: a decimal number without leading zeros, at most 2147483647 (it is
/// stored as a PostgreSQL `integer`).
const COMPONENT: &str = "(0|[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}\
                         |2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}\
                         |21474836[0-3][0-9]|214748364[0-7])";
/// The grammar of [`ServiceName`]: an identifier that is not reserved.
const SERVICE_PATTERN: &str =
    "^(?!(public|information_schema|vellum)$)(?!pg_)(?!vellum_)[a-z][a-z0-9_]{0,47}$";
/// The grammar of [`SchemaId`]: an identifier that is not reserved.
const SCHEMA_ID_PATTERN: &str = "^(?!pg_)(?!vellum_)[a-z][a-z0-9_]{0,47}$";

/// The grammar of [`Version`]: `MAJOR.MINOR.PATCH`.
fn version_pattern() -> String {
    format!(r"^{COMPONENT}\.{COMPONENT}\.{COMPONENT}$")
}

fn string_schema(pattern: &str, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
        .into()
}

impl utoipa::PartialSchema for Version {
    fn schema() -> RefOr<Schema> {
        string_schema(
            &version_pattern(),
            "A semantic version MAJOR.MINOR.PATCH, each component at most 2147483647.",
            "1.0.0",
        )
    }
}

impl utoipa::ToSchema for Version {}

impl utoipa::PartialSchema for ServiceName {
    fn schema() -> RefOr<Schema> {
        string_schema(
            SERVICE_PATTERN,
            "A service name; not public, information_schema or vellum, and not starting with \
             pg_ or vellum_.",
            "orders",
        )
    }
}

impl utoipa::ToSchema for ServiceName {}

impl utoipa::PartialSchema for SchemaId {
    fn schema() -> RefOr<Schema> {
        string_schema(
            SCHEMA_ID_PATTERN,
            "An entity type (schema id) within a service; not starting with pg_ or vellum_.",
            "sales_order",
        )
    }
}

impl utoipa::ToSchema for SchemaId {}

/// The grammar of a JSON Pointer naming a member below the root (`JsonPath`): segments after
/// `/`, `~` only as `~0` or `~1`, no NUL.
const POINTER_PATTERN: &str = "^(/([^~\\u0000]|~[01])*)+$";

/// The schema of [`Operation`], written by hand: each `op` is an object with exactly its fields
/// (the server refuses others), paths are JSON Pointers, values any JSON.
impl utoipa::PartialSchema for Operation {
    fn schema() -> RefOr<Schema> {
        let pointer = |description: &str, example: &str| {
            json!({"type": "string", "pattern": POINTER_PATTERN, "description": description,
                   "examples": [example]})
        };
        let json_type =
            json!({"type": "string", "enum": ["string", "integer", "number", "boolean"]});
        // Any JSON value, spelled out: utoipa reads back only schemas with a `type`.
        let any = |description: &str| {
            json!({"type": ["null", "boolean", "object", "array", "number", "string"],
                   "description": description})
        };
        let variant =
            |op: &str, description: &str, required: &[&str], properties: serde_json::Value| {
                let mut properties = properties;
                properties["op"] = json!({"type": "string", "enum": [op]});
                let mut required: Vec<&str> = required.to_vec();
                required.push("op");
                json!({"type": "object", "title": op, "description": description,
                   "required": required, "properties": properties, "additionalProperties": false})
            };
        let schema = json!({
            "description": "One operation of a migration, by its `op`. Paths are JSON Pointers \
                            (RFC 6901) naming a member below the root.",
            "oneOf": [
                variant("rename", "Moves the value at `from` to `to`, also between objects; \
                         lossless.", &["from", "to"], json!({
                    "from": pointer("Where the value is.", "/customer"),
                    "to": pointer("Where it goes; its object must exist.", "/buyer")})),
                variant("add", "Sets `value` where the path is absent (a default); lossless.",
                        &["path", "value"], json!({
                    "path": pointer("The new member.", "/currency"),
                    "value": any("The default, any JSON value.")})),
                variant("remove", "Removes the value; lossy unless `restore` gives the value \
                         the reverse puts back.", &["path"], json!({
                    "path": pointer("The member removed.", "/legacy"),
                    "restore": any("The value the reverse adds back.")})),
                variant("set", "Sets `value`, present or not; lossy unless `restore` gives the \
                         value the reverse sets.", &["path", "value"], json!({
                    "path": pointer("The member set.", "/kind"),
                    "value": any("The value, any JSON value."),
                    "restore": any("The value the reverse sets.")})),
                variant("cast", "Converts the value to `to`, exactly or not at all; lossless \
                         with `from` (values of another type are refused), lossy without.",
                        &["path", "to"], json!({
                    "path": pointer("The member converted.", "/qty"),
                    "from": {"type": ["string", "null"],
                             "enum": ["string", "integer", "number", "boolean", null],
                             "description": "The type before; null or absent: any (lossy)."},
                    "to": json_type})),
                variant("map", "Replaces the string values named in `values`; lossless when the \
                         mapping is injective and maps to strings.", &["path", "values"], json!({
                    "path": pointer("The member mapped.", "/status"),
                    "values": {"type": "object", "description": "Old value -> new value.",
                               "examples": [{"open": "OPEN", "done": "CLOSED"}]}})),
            ]
        });
        serde_json::from_value(schema).expect("a well-formed schema")
    }
}

impl utoipa::ToSchema for Operation {}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::ToSchema;

    use super::*;

    fn schema_json<T: ToSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    /// The documented pattern accepts exactly what the parser accepts (checked with the
    /// validator vellum uses for documents).
    #[test]
    fn the_version_pattern_agrees_with_the_parser() {
        let schema = schema_json::<Version>();
        assert_eq!(schema["type"], json!("string"));
        assert_eq!(schema["examples"], json!(["1.0.0"]));
        let pattern = json!({"type": "string", "pattern": schema["pattern"]});
        let compiled = crate::CompiledSchema::compile(
            &json!({"type": "object", "properties": {"v": pattern}}),
            &crate::schema::SchemaLimits::default(),
        )
        .unwrap();
        for text in [
            "0.0.0",
            "1.0.0",
            "10.20.30",
            "2147483647.2147483647.2147483647",
            "2147483648.0.0",
            "1.2147483648.0",
            "9999999999.0.0",
            "01.0.0",
            "1.0",
            "1.0.0-beta",
            "1999999999.0.0",
            "2099999999.1.1",
            "2146999999.0.0",
            "2147483639.0.0",
            "-1.0.0",
            "1.0.0 ",
        ] {
            let parses = text.parse::<Version>().is_ok();
            let matches = compiled.validate(&json!({"v": text})).is_ok();
            assert_eq!(
                matches, parses,
                "{text}: pattern {matches}, parser {parses}"
            );
        }
        assert_eq!(Version::name(), "Version");
    }

    /// The documented pointer pattern accepts exactly what the migration grammar accepts.
    #[test]
    fn the_pointer_pattern_agrees_with_the_parser() {
        let schema = schema_json::<Operation>();
        let pattern = &schema["oneOf"][0]["properties"]["from"]["pattern"];
        let compiled = crate::CompiledSchema::compile(
            &json!({"type": "object", "properties": {"p": {"type": "string", "pattern": pattern}}}),
            &crate::schema::SchemaLimits::default(),
        )
        .unwrap();
        for text in [
            "/a", "/", "//", "/a~0b/~1", "/lines/0", "", "a", "/a~", "/a~2", "/a\0b",
        ] {
            let parses = crate::query::JsonPath::parse(text).is_ok();
            let matches = compiled.validate(&json!({"p": text})).is_ok();
            assert_eq!(
                matches, parses,
                "{text:?}: pattern {matches}, parser {parses}"
            );
        }
        let ops: Vec<&str> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["properties"]["op"]["enum"][0].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["rename", "add", "remove", "set", "cast", "map"]);
        assert_eq!(<Operation as ToSchema>::name(), "Operation");
    }

    #[test]
    fn names_are_strings_that_exclude_reserved_words() {
        let service = schema_json::<ServiceName>();
        assert_eq!(service["type"], json!("string"));
        assert_eq!(service["pattern"], json!(SERVICE_PATTERN));
        assert_eq!(
            schema_json::<SchemaId>()["pattern"],
            json!(SCHEMA_ID_PATTERN)
        );
        // Look-ahead is outside the regex crate's grammar, so check the reserved words by the
        // parsers they mirror.
        for reserved in ["public", "information_schema", "vellum", "pg_x", "vellum_x"] {
            assert!(
                ServiceName::new(reserved).is_err()
                    && SERVICE_PATTERN.contains(reserved.trim_end_matches('x'))
            );
        }
        assert_eq!(ServiceName::name(), "ServiceName");
        assert_eq!(SchemaId::name(), "SchemaId");
    }
}
