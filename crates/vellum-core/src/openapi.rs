//! OpenAPI schemas of the core types that appear in the HTTP API (feature `openapi`).
//!
//! Names and versions serialize as strings with a fixed grammar, so their schemas are written
//! by hand: a string with the pattern the parsers enforce.

use utoipa::openapi::{
    ObjectBuilder, RefOr,
    schema::{Schema, Type},
};

use crate::{SchemaId, ServiceName, Version};

/// The grammar of [`Version`]: three decimal numbers without leading zeros.
const VERSION_PATTERN: &str = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$";
/// The grammar shared by [`ServiceName`] and [`SchemaId`].
const IDENTIFIER_PATTERN: &str = "^[a-z][a-z0-9_]{0,47}$";

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
            VERSION_PATTERN,
            "A semantic version MAJOR.MINOR.PATCH, each component at most 2147483647.",
            "1.0.0",
        )
    }
}

impl utoipa::ToSchema for Version {}

impl utoipa::PartialSchema for ServiceName {
    fn schema() -> RefOr<Schema> {
        string_schema(
            IDENTIFIER_PATTERN,
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
            IDENTIFIER_PATTERN,
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

    #[test]
    fn version_is_a_string_with_the_parser_grammar() {
        let schema = schema_json::<Version>();
        assert_eq!(schema["type"], json!("string"));
        assert_eq!(
            schema["pattern"],
            json!(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
        );
        assert_eq!(schema["examples"], json!(["1.0.0"]));
        assert_eq!(Version::name(), "Version");
    }

    #[test]
    fn names_are_strings_with_the_identifier_grammar() {
        for (schema, name) in [
            (schema_json::<ServiceName>(), ServiceName::name()),
            (schema_json::<SchemaId>(), SchemaId::name()),
        ] {
            assert_eq!(schema["type"], json!("string"), "{name}");
            assert_eq!(schema["pattern"], json!("^[a-z][a-z0-9_]{0,47}$"), "{name}");
        }
        assert_eq!(ServiceName::name(), "ServiceName");
        assert_eq!(SchemaId::name(), "SchemaId");
    }
}
