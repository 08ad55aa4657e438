//! The operations of a declarative migration, their effect on a document, and their reverse.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::cast::{JsonType, convert};
use super::document::{describe, last, object_mut, value_mut};
use crate::query::JsonPath;

/// One step of a migration. Paths are JSON Pointers (RFC 6901) naming a member below the root.
///
/// Serialized with its `op` as a tag, e.g. `{"op": "rename", "from": "/customer", "to": "/buyer"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Operation {
    /// Moves the value at `from` to `to`, within an object or between objects. Nothing happens
    /// when `from` is absent; the object holding `to` must exist and must not have `to` yet.
    Rename {
        /// Where the value is.
        from: JsonPath,
        /// Where it goes.
        to: JsonPath,
    },
    /// Adds `value` at `path` when nothing is there: a default for a new property.
    Add {
        /// The new member.
        path: JsonPath,
        /// The default.
        value: Value,
    },
    /// Removes the value at `path`. With `restore`, the reverse puts that value back;
    /// without, the removal is lossy and the migration cannot be reversed.
    Remove {
        /// The member removed.
        path: JsonPath,
        /// The value the reverse adds back.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        restore: Option<Value>,
    },
    /// Sets `value` at `path`, replacing what is there. With `restore`, the reverse sets that
    /// value; without, it is lossy.
    Set {
        /// The member set.
        path: JsonPath,
        /// The value.
        value: Value,
        /// The value the reverse sets.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        restore: Option<Value>,
    },
    /// Converts the value at `path` to type `to` (`null` and absent values stay as they are).
    /// With `from`, only values of that type are accepted and the reverse converts back;
    /// without, any string, number or boolean is converted and the cast is lossy.
    Cast {
        /// The member converted.
        path: JsonPath,
        /// The type the values have before the migration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<JsonType>,
        /// The type they have after.
        to: JsonType,
    },
    /// Replaces each string value found in `values` by what it maps to; other values stay. When
    /// the mapping is injective and maps to strings, the reverse applies the inverse mapping,
    /// and a value that is not mapped but is a target of the mapping is refused (it would come
    /// back as another value).
    Map {
        /// The member mapped.
        path: JsonPath,
        /// Old value -> new value.
        values: Map<String, Value>,
    },
}

/// How far an operation, or a migration, can be undone; ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Reversibility {
    /// The reverse gives back the original document.
    Lossless,
    /// The reverse gives back a document of the old shape, with declared values put back.
    Restoring,
    /// Information is lost: there is no reverse.
    Lossy,
}

/// Keeps a `null` given for an optional field (`"restore": null` restores `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Operation {
    /// The `op` of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Rename { .. } => "rename",
            Operation::Add { .. } => "add",
            Operation::Remove { .. } => "remove",
            Operation::Set { .. } => "set",
            Operation::Cast { .. } => "cast",
            Operation::Map { .. } => "map",
        }
    }

    /// The path the operation works on (for a rename, its `from`), as a JSON Pointer.
    pub fn pointer(&self) -> String {
        match self {
            Operation::Rename { from: path, .. }
            | Operation::Add { path, .. }
            | Operation::Remove { path, .. }
            | Operation::Set { path, .. }
            | Operation::Cast { path, .. }
            | Operation::Map { path, .. } => path.to_string(),
        }
    }

    /// Whether the operation makes sense on its own.
    pub(super) fn check(&self) -> Result<(), String> {
        match self {
            Operation::Rename { from, to } => {
                if from == to {
                    return Err("a rename needs two different paths".to_owned());
                }
                if to.segments().starts_with(from.segments()) {
                    return Err(format!("cannot move {from} into itself ({to})"));
                }
                Ok(())
            }
            Operation::Cast {
                from: Some(from),
                to,
                ..
            } if from == to => Err(format!("a cast from {from} to {to} does nothing")),
            _ => Ok(()),
        }
    }

    /// How far this operation can be undone.
    pub fn reversibility(&self) -> Reversibility {
        match self {
            Operation::Rename { .. } | Operation::Add { .. } => Reversibility::Lossless,
            Operation::Remove { restore, .. } | Operation::Set { restore, .. } => {
                if restore.is_some() {
                    Reversibility::Restoring
                } else {
                    Reversibility::Lossy
                }
            }
            Operation::Cast { from, .. } => {
                if from.is_some() {
                    Reversibility::Lossless
                } else {
                    Reversibility::Lossy
                }
            }
            Operation::Map { values, .. } => {
                if inverse(values).is_some() {
                    Reversibility::Lossless
                } else {
                    Reversibility::Lossy
                }
            }
        }
    }

    /// The operation that undoes this one; `None` when it is lossy.
    pub fn reverse(&self) -> Option<Operation> {
        Some(match self {
            Operation::Rename { from, to } => Operation::Rename {
                from: to.clone(),
                to: from.clone(),
            },
            Operation::Add { path, value } => Operation::Remove {
                path: path.clone(),
                restore: Some(value.clone()),
            },
            Operation::Remove { path, restore } => Operation::Add {
                path: path.clone(),
                value: restore.clone()?,
            },
            Operation::Set {
                path,
                value,
                restore,
            } => Operation::Set {
                path: path.clone(),
                value: restore.clone()?,
                restore: Some(value.clone()),
            },
            Operation::Cast { path, from, to } => Operation::Cast {
                path: path.clone(),
                from: Some(*to),
                to: (*from)?,
            },
            Operation::Map { path, values } => Operation::Map {
                path: path.clone(),
                values: inverse(values)?,
            },
        })
    }

    /// Applies the operation to `document`; the error says why it cannot be applied.
    pub(super) fn apply(&self, mut document: Value) -> Result<Value, String> {
        match self {
            Operation::Rename { from, to } => {
                let Some(source) = object_mut(&mut document, from)? else {
                    return Ok(document);
                };
                let Some(value) = source.remove(last(from)) else {
                    return Ok(document);
                };
                let Some(target) = object_mut(&mut document, to)? else {
                    return Err(format!(
                        "cannot move it to {to}: the object that would hold it is absent (add it \
                         first, e.g. with a value of {{}})"
                    ));
                };
                if target.contains_key(last(to)) {
                    return Err(format!("cannot move it to {to}: a value is already there"));
                }
                target.insert(last(to).to_owned(), value);
            }
            Operation::Add { path, value } => {
                if let Some(object) = object_mut(&mut document, path)? {
                    object
                        .entry(last(path).to_owned())
                        .or_insert_with(|| value.clone());
                }
            }
            Operation::Remove { path, .. } => {
                if let Some(object) = object_mut(&mut document, path)? {
                    object.remove(last(path));
                }
            }
            Operation::Set { path, value, .. } => {
                if let Some(object) = object_mut(&mut document, path)? {
                    object.insert(last(path).to_owned(), value.clone());
                }
            }
            Operation::Cast { path, from, to } => {
                if let Some(slot) = value_mut(&mut document, path)?
                    && !slot.is_null()
                {
                    if let Some(from) = from
                        && !from.holds(slot)
                    {
                        return Err(format!("expected a {from}, found {}", describe(slot)));
                    }
                    *slot = convert(slot.take(), *to)?;
                }
            }
            Operation::Map { path, values } => {
                if let Some(slot) = value_mut(&mut document, path)?
                    && let Value::String(text) = slot
                {
                    if let Some(mapped) = values.get(text.as_str()) {
                        *slot = mapped.clone();
                    } else if inverse(values).is_some()
                        && values.values().any(|target| target.as_str() == Some(text))
                    {
                        return Err(format!(
                            "{text:?} is not mapped but is a target of the mapping; it would \
                             read back as another value"
                        ));
                    }
                }
            }
        }
        Ok(document)
    }
}

/// The inverse of a mapping, when it is injective and maps to strings.
fn inverse(values: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut seen = HashSet::new();
    values
        .iter()
        .map(|(old, new)| {
            let new = new.as_str()?;
            seen.insert(new)
                .then(|| (new.to_owned(), Value::String(old.clone())))
        })
        .collect()
}
