//! One reason a document or a schema definition is invalid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One reason a document (or a schema definition) is invalid.
///
/// Displayed as `at "<pointer>": <message>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    /// RFC 6901 JSON pointer to the offending value in the instance (the document, or the
    /// definition being compiled); `""` for the root.
    pub pointer: String,
    /// The JSON Schema keyword that failed, e.g. `"required"`, `"type"`, `"$ref"`; empty for the
    /// size and depth limits of a definition, which no keyword expresses.
    pub keyword: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl Violation {
    pub(super) fn new(
        pointer: impl Into<String>,
        keyword: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            pointer: pointer.into(),
            keyword: keyword.into(),
            message: message.into(),
        }
    }

    pub(super) fn from_error(error: &jsonschema::ValidationError<'_>) -> Self {
        Violation::new(
            error.instance_path().as_str(),
            error.kind().keyword(),
            error.to_string(),
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {:?}: {}", self.pointer, self.message)
    }
}

/// Sorts by pointer then keyword, keeping the engine's order among equals.
pub(super) fn sort(violations: &mut [Violation]) {
    violations.sort_by(|a, b| (&a.pointer, &a.keyword).cmp(&(&b.pointer, &b.keyword)));
}

/// Appends `segment` to the JSON pointer `pointer`, escaping it as RFC 6901 requires.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_segments_are_escaped() {
        let mut pointer = String::new();
        push_segment(&mut pointer, "a/b");
        push_segment(&mut pointer, "m~n");
        push_segment(&mut pointer, "0");
        assert_eq!(pointer, "/a~1b/m~0n/0");
    }

    #[test]
    fn sorts_by_pointer_then_keyword() {
        let mut violations = vec![
            Violation::new("/b", "type", "1"),
            Violation::new("", "required", "2"),
            Violation::new("/a", "type", "3"),
            Violation::new("/a", "minLength", "4"),
        ];
        sort(&mut violations);
        let order: Vec<_> = violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(order, ["2", "4", "3", "1"]);
    }
}
