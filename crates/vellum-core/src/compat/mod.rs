//! Schema evolution rules (SPEC §4.2): what changed between two versions of a schema, what
//! each change does to document validity, and whether a registry accepts the new version.
//!
//! [`classify`] compares two definitions and lists every [`Change`], each with its directions:
//! `backward` (every document valid under the old version stays valid) and `forward` (every
//! document valid under the new version was valid under the old). A change that keeps both is a
//! patch, one that keeps only `backward` a minor change, anything else major. When a rule cannot
//! decide (a changed `pattern`, overlapping `oneOf` branches, `patternProperties`,
//! `$dynamicRef`...), the change is [`ChangeKind::Undecidable`] and major.
//!
//! [`assess`] applies the registration rule: the declared bump must cover the detected class,
//! and within a major line the [`CompatibilityMode`] must hold.
//!
//! ```
//! use serde_json::json;
//! use vellum_core::compat::{classify, ChangeClass, ChangeKind};
//!
//! let v1 = json!({
//!     "type": "object",
//!     "properties": {"status": {"enum": ["open", "done"]}},
//!     "additionalProperties": false
//! });
//! let v2 = json!({
//!     "type": "object",
//!     "properties": {"status": {"enum": ["open", "done", "held"]}, "note": {"type": "string"}},
//!     "additionalProperties": false
//! });
//! let found = classify(&v1, &v2);
//! assert_eq!(found.class, ChangeClass::Minor);
//! let kinds: Vec<_> = found.changes.iter().map(|c| (c.path.as_str(), &c.kind)).collect();
//! assert_eq!(kinds, [
//!     ("/properties/status/enum", &ChangeKind::EnumValueAdded { value: json!("held") }),
//!     ("/properties/note", &ChangeKind::PropertyAdded { property: "note".into() }),
//! ]);
//! ```

mod arrays;
mod assess;
mod change;
mod combinators;
mod compare;
mod document;
mod mode;
mod objects;
mod scalars;
mod values;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod cases_structure;
#[cfg(test)]
mod properties;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use assess::{Assessment, Incompatibility, assess, declared_bump};
pub use change::{Change, ChangeClass, ChangeKind};
pub use mode::CompatibilityMode;

use compare::Comparer;
use document::Document;

/// Every change from one definition to another, and the class of the whole: the greatest class
/// of its changes, patch when there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Classification {
    /// Every change, in the order of the new definition.
    pub changes: Vec<Change>,
    /// The class of the whole change.
    pub class: ChangeClass,
}

/// Compares definition `new` with definition `old` and classifies every change (SPEC §4.2).
///
/// Pure and total: any two JSON values can be compared; what cannot be decided is reported as
/// [`ChangeKind::Undecidable`]. Local `$ref`s (`#/...`, `#anchor`) are followed within each
/// definition, recursive ones included.
pub fn classify(old: &Value, new: &Value) -> Classification {
    if old == new {
        return Classification {
            changes: Vec::new(),
            class: ChangeClass::Patch,
        };
    }
    let (old_document, new_document) = (Document::new(old), Document::new(new));
    let mut comparer = Comparer::new(&old_document, &new_document);
    comparer.schema(old, new, "");
    let mut changes = comparer.changes;
    if comparer.exhausted {
        changes.push(Change::new(
            "",
            ChangeKind::Undecidable {
                reason: "the comparison stopped early".to_owned(),
            },
            false,
            false,
            "cannot decide: the comparison stopped early; the definitions are too large or nest \
             too deep",
        ));
    }
    if old.get("$defs") != new.get("$defs")
        && !changes.iter().any(|c| c.path.starts_with("/$defs/"))
    {
        changes.push(Change::new(
            "/$defs",
            ChangeKind::Annotation {
                keyword: "$defs".to_owned(),
            },
            true,
            true,
            "definitions in $defs changed without changing which documents are valid",
        ));
    }
    // A definition reached through several references reports its changes once.
    let mut seen = HashSet::new();
    changes.retain(|change| seen.insert((change.path.clone(), format!("{:?}", change.kind))));
    let class = changes
        .iter()
        .map(|c| c.class)
        .max()
        .unwrap_or(ChangeClass::Patch);
    Classification { changes, class }
}
