//! The error type of vellum-core.

use crate::schema::Violation;

/// Everything that can go wrong in vellum-core: a value supplied by a caller is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (service name, schema id) is malformed or reserved.
    ///
    /// For example kind `"service name"`, value `"Orders"`, reason `"must start with a lowercase
    /// letter"`.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// What the identifier names, e.g. `"service name"` or `"schema id"`.
        kind: &'static str,
        /// The rejected value, as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A semantic version string is not a strict `MAJOR.MINOR.PATCH`.
    #[error("invalid version {value:?}: {reason}")]
    InvalidVersion {
        /// The rejected value, as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The definition is not an acceptable schema; `problems` lists each problem, with a JSON
    /// pointer into the definition.
    #[error("invalid schema definition: {}", join(problems))]
    InvalidSchema {
        /// Every problem found, each pointing into the definition.
        problems: Vec<Violation>,
    },
    /// A document is malformed in a way that is not a schema violation.
    #[error("invalid document: {reason}")]
    InvalidDocument {
        /// Why it was rejected.
        reason: String,
    },
}

/// A `Result` whose error defaults to vellum-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn join(problems: &[Violation]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_schema_lists_every_problem() {
        let error = Error::InvalidSchema {
            problems: vec![
                Violation {
                    pointer: "/type".into(),
                    keyword: "anyOf".into(),
                    message: "12 is not valid".into(),
                },
                Violation {
                    pointer: String::new(),
                    keyword: "$schema".into(),
                    message: "unsupported draft".into(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            r#"invalid schema definition: at "/type": 12 is not valid; at "": unsupported draft"#
        );
    }

    #[test]
    fn invalid_name_names_kind_value_and_reason() {
        let error = Error::InvalidName {
            kind: "service name",
            value: "Orders".into(),
            reason: "must start with a lowercase letter".into(),
        };
        assert_eq!(
            error.to_string(),
            r#"invalid service name "Orders": must start with a lowercase letter"#
        );
    }
}
