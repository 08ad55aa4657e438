//! Order keys and their JSON grammar.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{JsonPath, QueryError};

/// One key of a query's order: what to sort by, and in which direction.
///
/// In JSON `{"path": "/total", "direction": "desc"}` or `{"field": "created_at"}` (direction
/// defaults to `"asc"`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// What to sort by.
    pub by: OrderBy,
    /// Ascending or descending.
    pub direction: Direction,
}

impl OrderKey {
    /// Ascending by `by`.
    pub fn asc(by: OrderBy) -> Self {
        OrderKey {
            by,
            direction: Direction::Asc,
        }
    }

    /// Descending by `by`.
    pub fn desc(by: OrderBy) -> Self {
        OrderKey {
            by,
            direction: Direction::Desc,
        }
    }
}

/// What a query sorts by.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderBy {
    /// A document path, in `jsonb` order (timestamp order for date-time paths).
    Path(JsonPath),
    /// The commit time of the version read (JSON `"field": "created_at"`).
    CreatedAt,
    /// The last change of the version read (`"updated_at"`).
    UpdatedAt,
    /// The entity id (`"entity_id"`).
    EntityId,
    /// The entity version, in semantic version order (`"entity_version"`).
    EntityVersion,
}

impl OrderBy {
    /// Sort by the document path `pointer`, e.g. `"/total"`.
    pub fn path(pointer: &str) -> Result<Self, QueryError> {
        JsonPath::parse(pointer).map(OrderBy::Path)
    }

    fn field_name(&self) -> Option<&'static str> {
        match self {
            OrderBy::Path(_) => None,
            OrderBy::CreatedAt => Some("created_at"),
            OrderBy::UpdatedAt => Some("updated_at"),
            OrderBy::EntityId => Some("entity_id"),
            OrderBy::EntityVersion => Some("entity_version"),
        }
    }
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Smallest first; documents missing a path key come last.
    #[default]
    Asc,
    /// Largest first; documents missing a path key come first.
    Desc,
}

impl Serialize for OrderKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match (&self.by, self.by.field_name()) {
            (OrderBy::Path(path), _) => map.serialize_entry("path", path)?,
            (_, Some(field)) => map.serialize_entry("field", field)?,
            (_, None) => unreachable!("only paths have no field name"),
        }
        map.serialize_entry("direction", &self.direction)?;
        map.end()
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an order key: {\"path\": \"/a/b\", \"direction\": ..} or {\"field\": .., \"direction\": ..}"
)]
struct RawOrderKey {
    path: Option<JsonPath>,
    field: Option<Field>,
    #[serde(default)]
    direction: Direction,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Field {
    CreatedAt,
    UpdatedAt,
    EntityId,
    EntityVersion,
}

impl<'de> Deserialize<'de> for OrderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawOrderKey::deserialize(deserializer)?;
        let by = match (raw.path, raw.field) {
            (Some(path), None) => OrderBy::Path(path),
            (None, Some(Field::CreatedAt)) => OrderBy::CreatedAt,
            (None, Some(Field::UpdatedAt)) => OrderBy::UpdatedAt,
            (None, Some(Field::EntityId)) => OrderBy::EntityId,
            (None, Some(Field::EntityVersion)) => OrderBy::EntityVersion,
            _ => {
                return Err(de::Error::custom(
                    "an order key has exactly one of \"path\" (a JSON pointer) or \"field\" \
                     (created_at, updated_at, entity_id, entity_version)",
                ));
            }
        };
        Ok(OrderKey {
            by,
            direction: raw.direction,
        })
    }
}
