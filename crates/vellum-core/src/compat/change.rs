//! One difference between two schema versions, and the class it implies.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Bump;

/// How much a change matters, ordered `Patch < Minor < Major` (SPEC §4.2).
///
/// - `Patch`: no change to which documents are valid (titles, descriptions, examples, indexing
///   annotations);
/// - `Minor`: backward compatible only: every document valid before stays valid;
/// - `Major`: anything else.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    /// Which documents are valid did not change.
    Patch,
    /// Every document valid before stays valid; some new ones are valid too.
    Minor,
    /// Some document valid before is no longer valid, or whether it is cannot be decided.
    Major,
}

impl ChangeClass {
    /// The class of a change with these compatibility directions.
    pub const fn of(backward: bool, forward: bool) -> ChangeClass {
        match (backward, forward) {
            (true, true) => ChangeClass::Patch,
            (true, false) => ChangeClass::Minor,
            (false, _) => ChangeClass::Major,
        }
    }
}

impl From<Bump> for ChangeClass {
    fn from(bump: Bump) -> Self {
        match bump {
            Bump::Patch => ChangeClass::Patch,
            Bump::Minor => ChangeClass::Minor,
            Bump::Major => ChangeClass::Major,
        }
    }
}

impl From<ChangeClass> for Bump {
    fn from(class: ChangeClass) -> Self {
        match class {
            ChangeClass::Patch => Bump::Patch,
            ChangeClass::Minor => Bump::Minor,
            ChangeClass::Major => Bump::Major,
        }
    }
}

impl fmt::Display for ChangeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeClass::Patch => "patch",
            ChangeClass::Minor => "minor",
            ChangeClass::Major => "major",
        })
    }
}

/// What changed. Serialized with a `kind` tag in snake case, e.g.
/// `{"kind": "constraint_tightened", "keyword": "minimum"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A property appeared in `properties`.
    PropertyAdded {
        /// The property name.
        property: String,
    },
    /// A property disappeared from `properties`.
    PropertyRemoved {
        /// The property name.
        property: String,
    },
    /// A property became required.
    RequiredAdded {
        /// The property name.
        property: String,
    },
    /// A property is no longer required.
    RequiredRemoved {
        /// The property name.
        property: String,
    },
    /// `type` accepts more (e.g. `integer` to `number`, or `type` removed).
    TypeWidened,
    /// `type` accepts less (e.g. `number` to `integer`, or `type` added).
    TypeNarrowed,
    /// `type` accepts other types, neither more nor less.
    TypeChanged,
    /// A value was added to `enum` (or a `const` became an `enum` containing it).
    EnumValueAdded {
        /// The value.
        value: Value,
    },
    /// A value was removed from `enum` or `const`.
    EnumValueRemoved {
        /// The value.
        value: Value,
    },
    /// A validation keyword accepts more (a lower `minimum`, a removed `pattern`...).
    ConstraintRelaxed {
        /// The keyword.
        keyword: String,
    },
    /// A validation keyword accepts less (a higher `minimum`, an added `format`...).
    ConstraintTightened {
        /// The keyword.
        keyword: String,
    },
    /// A validation keyword accepts something else, neither more nor less (a `multipleOf` of 2
    /// became 3, a `format` changed).
    ConstraintChanged {
        /// The keyword.
        keyword: String,
    },
    /// `additionalProperties` went from `false` to accepting undeclared properties.
    AdditionalPropertiesOpened,
    /// `additionalProperties` became `false`: undeclared properties are refused.
    AdditionalPropertiesClosed,
    /// A subschema that was `false` (accepting nothing) now accepts something.
    SchemaOpened,
    /// A subschema became `false`: it accepts nothing.
    SchemaClosed,
    /// A branch was added to `anyOf`, `oneOf` or `allOf`.
    BranchAdded {
        /// The combinator.
        keyword: String,
    },
    /// A branch was removed from `anyOf`, `oneOf` or `allOf`.
    BranchRemoved {
        /// The combinator.
        keyword: String,
    },
    /// A keyword that does not take part in validation changed: `title`, `description`,
    /// `examples`, `default`, `$comment`, `x-vellum-index`, unknown keywords.
    Annotation {
        /// The keyword.
        keyword: String,
    },
    /// The rules cannot decide whether the change keeps documents valid (a changed `pattern`,
    /// `oneOf` branches that may overlap, `patternProperties`, `$dynamicRef`...): classified as
    /// major, to be safe.
    Undecidable {
        /// Why it cannot be decided.
        reason: String,
    },
}

/// One difference between two versions of a schema, with what it does to document validity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// JSON pointer into the new definition (into the old one for something removed), e.g.
    /// `/properties/total/minimum`; inside a `$ref` target, the pointer of the target.
    pub path: String,
    /// What changed.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Every document valid under the old version stays valid under the new one.
    pub backward: bool,
    /// Every document valid under the new version was valid under the old one.
    pub forward: bool,
    /// The class this change implies: patch if both directions hold, minor if only `backward`,
    /// major otherwise; a removed property is major whatever its directions (SPEC §4.2).
    pub class: ChangeClass,
    /// What changed, for a human.
    pub description: String,
}

impl Change {
    /// A change whose class follows from its directions.
    pub fn new(
        path: impl Into<String>,
        kind: ChangeKind,
        backward: bool,
        forward: bool,
        description: impl Into<String>,
    ) -> Change {
        Change {
            path: path.into(),
            kind,
            backward,
            forward,
            class: ChangeClass::of(backward, forward),
            description: description.into(),
        }
    }

    /// A change that accepts more: backward compatible only.
    pub(super) fn relaxing(path: String, kind: ChangeKind, description: String) -> Change {
        Change::new(path, kind, true, false, description)
    }

    /// A change that accepts less: forward compatible only.
    pub(super) fn tightening(path: String, kind: ChangeKind, description: String) -> Change {
        Change::new(path, kind, false, true, description)
    }

    /// A change that accepts other documents, neither more nor less.
    pub(super) fn different(path: String, kind: ChangeKind, description: String) -> Change {
        Change::new(path, kind, false, false, description)
    }

    /// A change that cannot be decided: neither direction is claimed.
    pub(super) fn undecidable(path: String, reason: impl Into<String>) -> Change {
        let reason = reason.into();
        Change::new(
            path,
            ChangeKind::Undecidable {
                reason: reason.clone(),
            },
            false,
            false,
            format!("cannot decide: {reason}"),
        )
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{} at {at}: {}", self.class, self.description)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn class_follows_the_directions() {
        assert_eq!(ChangeClass::of(true, true), ChangeClass::Patch);
        assert_eq!(ChangeClass::of(true, false), ChangeClass::Minor);
        assert_eq!(ChangeClass::of(false, true), ChangeClass::Major);
        assert_eq!(ChangeClass::of(false, false), ChangeClass::Major);
        assert!(ChangeClass::Patch < ChangeClass::Minor && ChangeClass::Minor < ChangeClass::Major);
        assert_eq!(ChangeClass::from(Bump::Minor), ChangeClass::Minor);
        assert_eq!(Bump::from(ChangeClass::Major), Bump::Major);
    }

    #[test]
    fn serializes_flat_with_a_kind_tag() {
        let change = Change::tightening(
            "/properties/total/minimum".into(),
            ChangeKind::ConstraintTightened {
                keyword: "minimum".into(),
            },
            "minimum raised from 0 to 1".into(),
        );
        let value = serde_json::to_value(&change).unwrap();
        assert_eq!(
            value,
            json!({
                "path": "/properties/total/minimum",
                "kind": "constraint_tightened",
                "keyword": "minimum",
                "backward": false,
                "forward": true,
                "class": "major",
                "description": "minimum raised from 0 to 1"
            })
        );
        let back: Change = serde_json::from_value(value).unwrap();
        assert_eq!(back, change);
        assert_eq!(
            change.to_string(),
            "major at /properties/total/minimum: minimum raised from 0 to 1"
        );
        let unit = serde_json::to_value(ChangeKind::TypeWidened).unwrap();
        assert_eq!(unit, json!({"kind": "type_widened"}));
    }
}
