//! Data migrations between schema versions (SPEC §4.3): declarative operations on documents,
//! addressed by JSON Pointers, each reversible where it can be.
//!
//! A [`Migration`] leads documents from a registered version (`from`) to the version it is
//! registered with, the first version of a new major line. Its [`Operation`]s run in order:
//!
//! | op | effect | reverse | [`Reversibility`] |
//! |---|---|---|---|
//! | `rename {from, to}` | moves the value, also between objects | `rename {to, from}` | lossless |
//! | `add {path, value}` | sets `value` where the path is absent (a default) | `remove {path, restore: value}` | lossless |
//! | `remove {path}` | removes the value | none | lossy |
//! | `remove {path, restore}` | removes the value | `add {path, value: restore}` | restoring |
//! | `set {path, value}` | sets `value`, present or not | none | lossy |
//! | `set {path, value, restore}` | sets `value` | `set {path, value: restore, restore: value}` | restoring |
//! | `cast {path, to}` | converts a string, number or boolean | none (the old type is unknown) | lossy |
//! | `cast {path, from, to}` | converts a value of type `from`; refuses others | `cast {path, from: to, to: from}` | lossless |
//! | `map {path, values}` | replaces string values by the mapping | the inverse mapping, when injective to strings | lossless or lossy |
//!
//! Lossless means `reverse(apply(d)) == d` for every document `d` the operation accepts in which
//! each `add` path is absent (the property is new in the target version); numbers compare by
//! value, as PostgreSQL's `jsonb` does. Restoring means the reverse gives back a document of the
//! old shape with a declared value put back, not necessarily the original. Entity versions are
//! never rewritten, so the original of a migrated document is always in its history; reversing
//! serves documents written under the new version to readers of the old one.
//!
//! Where a path's parent is absent (or `null`), every operation leaves the document as it is: an
//! optional object that is not there needs no migration. A conversion that cannot be made is an
//! error naming the operation and the pointer, never a silent change.
//!
//! ```
//! use serde_json::json;
//! use vellum_core::migration::{Migration, Reversibility};
//!
//! let migration: Migration = serde_json::from_value(json!({
//!     "from": "1.1.0",
//!     "operations": [
//!         {"op": "rename", "from": "/customer", "to": "/buyer"},
//!         {"op": "add", "path": "/currency", "value": "EUR"},
//!         {"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}},
//!         {"op": "cast", "path": "/qty", "from": "string", "to": "integer"}
//!     ]
//! }))?;
//! let old = json!({"customer": "ACME", "status": "done", "qty": "3"});
//! let new = migration.apply(old.clone())?;
//! assert_eq!(new, json!({"buyer": "ACME", "currency": "EUR", "status": "CLOSED", "qty": 3}));
//!
//! assert_eq!(migration.reversibility(), Reversibility::Lossless);
//! let back = migration.reverse("2.0.0".parse()?).expect("reversible");
//! assert_eq!(back.apply(new)?, old);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cast;
mod document;
mod error;
mod operation;
pub mod plan;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use cast::JsonType;
pub use error::MigrationError;
pub use operation::{Operation, Reversibility};

use crate::Version;

/// A declarative migration: the operations that turn a document valid under `from` into one
/// valid under the version the migration is registered with.
///
/// Deserializing checks the grammar of every operation (a known `op`, its fields, well-formed
/// pointers) and names the index of the one at fault; [`Migration::check`] then checks that each
/// makes sense (a rename not into itself).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Migration {
    /// The registered version the documents come from (a version of the previous major line).
    pub from: Version,
    /// The operations, applied in order.
    pub operations: Vec<Operation>,
}

impl Migration {
    /// A migration from `from`, after checking each operation.
    ///
    /// # Errors
    ///
    /// The first operation that is not well formed, with its index.
    pub fn new(from: Version, operations: Vec<Operation>) -> Result<Self, MigrationError> {
        let migration = Migration { from, operations };
        migration.check()?;
        Ok(migration)
    }

    /// Whether every operation makes sense on its own: a rename between two different paths,
    /// not into itself; a cast between two different types.
    ///
    /// # Errors
    ///
    /// The first operation that does not, with its index.
    pub fn check(&self) -> Result<(), MigrationError> {
        for (index, operation) in self.operations.iter().enumerate() {
            operation.check().map_err(|message| {
                MigrationError::new(index, operation.name(), operation.pointer(), message)
            })?;
        }
        Ok(())
    }

    /// Applies every operation in order to `document`.
    ///
    /// # Errors
    ///
    /// The first operation that cannot be applied (a value of the wrong type for a cast, a
    /// rename onto an existing value, a path through a scalar...), with its index and pointer.
    pub fn apply(&self, document: Value) -> Result<Value, MigrationError> {
        apply_operations(&self.operations, document)
    }

    /// How far the migration can be reversed: the least reversible of its operations
    /// ([`Reversibility::Lossless`] when it has none).
    pub fn reversibility(&self) -> Reversibility {
        self.operations
            .iter()
            .map(Operation::reversibility)
            .max()
            .unwrap_or(Reversibility::Lossless)
    }

    /// The migration back from `to`, the version this migration leads to, to `self.from`: the
    /// reverse of each operation, last first. `None` when an operation is lossy.
    pub fn reverse(&self, to: Version) -> Option<Migration> {
        let operations = self
            .operations
            .iter()
            .rev()
            .map(Operation::reverse)
            .collect::<Option<Vec<_>>>()?;
        Some(Migration {
            from: to,
            operations,
        })
    }
}

/// Applies `operations` in order, naming the index of the one that fails.
pub fn apply_operations(
    operations: &[Operation],
    document: Value,
) -> Result<Value, MigrationError> {
    operations
        .iter()
        .enumerate()
        .try_fold(document, |document, (index, operation)| {
            operation.apply(document).map_err(|message| {
                MigrationError::new(index, operation.name(), operation.pointer(), message)
            })
        })
}

impl<'de> Deserialize<'de> for Migration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            from: Version,
            operations: Vec<Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let operations = raw
            .operations
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                serde_json::from_value::<Operation>(value)
                    .map_err(|err| serde::de::Error::custom(format!("operations/{index}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Migration {
            from: raw.from,
            operations,
        })
    }
}
