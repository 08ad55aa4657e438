//! OpenAPI schemas of the core types that appear in the HTTP API (feature `openapi`).
//!
//! Names and versions serialize as strings with a fixed grammar, so their schemas are written
//! by hand: a string with the pattern the parsers enforce.

use utoipa::openapi::{
    ObjectBuilder, RefOr,
    schema::{Schema, Type},
};

use crate::{SchemaId, ServiceName, Version};

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
