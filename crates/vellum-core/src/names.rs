//! Identifiers that come from users and end up quoted in SQL: service names and schema ids.
//!
//! Both follow `[a-z][a-z0-9_]{0,47}` (so they fit PostgreSQL's 63-byte identifiers with room
//! for prefixes and suffixes) and must not collide with names PostgreSQL or vellum reserve.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The longest identifier accepted, in characters (all of them ASCII).
const MAX_LEN: usize = 48;

/// What makes one kind of identifier valid, beyond the shared character rules.
struct IdentifierRules {
    kind: &'static str,
    reserved: &'static [&'static str],
    reserved_prefixes: &'static [&'static str],
}

const SERVICE_NAME: IdentifierRules = IdentifierRules {
    kind: "service name",
    reserved: &["public", "information_schema", "vellum"],
    reserved_prefixes: &["pg_", "vellum_"],
};

const SCHEMA_ID: IdentifierRules = IdentifierRules {
    kind: "schema id",
    reserved: &[],
    reserved_prefixes: &["pg_", "vellum_"],
};

/// Checks `value` against `[a-z][a-z0-9_]{0,47}` and the reserved names of `rules`.
fn check_identifier(rules: &IdentifierRules, value: String) -> Result<String> {
    let reason = if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase letter")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("may contain only lowercase letters, digits and _")
    } else if value.len() > MAX_LEN {
        Some("is at most 48 characters")
    } else if rules.reserved.contains(&value.as_str())
        || rules.reserved_prefixes.iter().any(|p| value.starts_with(p))
    {
        Some("is reserved")
    } else {
        None
    };
    match reason {
        None => Ok(value),
        Some(reason) => Err(Error::InvalidName {
            kind: rules.kind,
            value,
            reason: reason.to_owned(),
        }),
    }
}

/// The name of a service: it names the service's PostgreSQL schema and its API scope.
///
/// Valid names match `[a-z][a-z0-9_]{0,47}` and are not `public`, `information_schema`,
/// `vellum`, nor start with `pg_` or `vellum_`.
///
/// ```
/// use vellum_core::ServiceName;
///
/// let orders: ServiceName = "orders".parse()?;
/// assert_eq!(orders.as_str(), "orders");
/// assert!(ServiceName::new("pg_catalog").is_err());
/// # Ok::<(), vellum_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// Validates `name` as a service name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] if `name` is malformed or reserved.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        check_identifier(&SERVICE_NAME, name.into()).map(Self)
    }
}

/// The id of a schema within a service: it names the table holding the schema's entities.
///
/// Valid ids match `[a-z][a-z0-9_]{0,47}` and do not start with `pg_` or `vellum_`.
///
/// ```
/// use vellum_core::SchemaId;
///
/// let order: SchemaId = "order_line".parse()?;
/// assert_eq!(order.to_string(), "order_line");
/// assert!(SchemaId::new("OrderLine").is_err());
/// # Ok::<(), vellum_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaId(String);

impl SchemaId {
    /// Validates `id` as a schema id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] if `id` is malformed or reserved.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        check_identifier(&SCHEMA_ID, id.into()).map(Self)
    }
}

/// The conversions both identifiers share: they behave as a validated `str`.
macro_rules! identifier_impls {
    ($name:ident) => {
        impl $name {
            /// The identifier, as validated.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier_impls!(ServiceName);
identifier_impls!(SchemaId);

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<impl fmt::Debug>) -> String {
        match result {
            Err(Error::InvalidName { reason, .. }) => reason,
            other => panic!("expected InvalidName, got {other:?}"),
        }
    }

    #[test]
    fn accepts_valid_identifiers() {
        for name in ["a", "orders", "order_lines_2", "x_", &"a".repeat(48)] {
            assert_eq!(ServiceName::new(name).unwrap().as_str(), name);
            assert_eq!(SchemaId::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn explains_malformed_identifiers() {
        let start = "must start with a lowercase letter";
        let chars = "may contain only lowercase letters, digits and _";
        for (value, expected) in [
            ("", start),
            ("Orders", start),
            ("1orders", start),
            ("_orders", start),
            ("é", start),
            ("orDers", chars),
            ("order-lines", chars),
            ("order lines", chars),
            ("ordersé", chars),
            (&"a".repeat(49), "is at most 48 characters"),
        ] {
            assert_eq!(reason(ServiceName::new(value)), expected, "{value:?}");
            assert_eq!(reason(SchemaId::new(value)), expected, "{value:?}");
        }
    }

    #[test]
    fn refuses_reserved_service_names() {
        for name in [
            "public",
            "information_schema",
            "vellum",
            "pg_catalog",
            "pg_",
            "vellum_system",
        ] {
            assert_eq!(reason(ServiceName::new(name)), "is reserved", "{name}");
        }
        assert!(ServiceName::new("publication").is_ok());
        assert!(ServiceName::new("vellumx").is_ok());
    }

    #[test]
    fn refuses_reserved_schema_ids() {
        for id in ["pg_class", "vellum_meta"] {
            assert_eq!(reason(SchemaId::new(id)), "is reserved", "{id}");
        }
        for id in ["public", "information_schema", "vellum", "pgx"] {
            assert!(SchemaId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn error_names_the_kind() {
        assert_eq!(
            ServiceName::new("Orders").unwrap_err().to_string(),
            r#"invalid service name "Orders": must start with a lowercase letter"#
        );
        assert_eq!(
            SchemaId::new("pg_x").unwrap_err().to_string(),
            r#"invalid schema id "pg_x": is reserved"#
        );
    }

    #[test]
    fn serializes_as_a_string_and_validates_on_deserialize() {
        let id = SchemaId::new("order").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""order""#);
        assert_eq!(serde_json::from_str::<SchemaId>(r#""order""#).unwrap(), id);
        let error = serde_json::from_value::<ServiceName>("vellum".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"invalid service name "vellum": is reserved"#
        );
    }

    #[test]
    fn parses_displays_and_orders_like_strings() {
        let a: ServiceName = "alpha".parse().unwrap();
        let b: ServiceName = "beta".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "alpha");
        assert_eq!(AsRef::<str>::as_ref(&b), "beta");
    }
}
