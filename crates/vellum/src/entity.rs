//! Entity versions as read back from the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use tokio_postgres::{
    Row,
    types::{FromSql, Type},
};
use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{Error, Result, known::KnownVersion};

/// One immutable version of an entity: the document and its metadata.
///
/// Serializes to the entity JSON of the HTTP API and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entity {
    /// The entity (document lineage); never reused.
    pub entity_id: Uuid,
    /// Semantic version of this entity version (see SPEC §5 for how it moves).
    pub entity_version: Version,
    /// 1, 2, 3… per entity: the order of its versions.
    pub revision: i64,
    /// The entity type.
    pub schema_id: SchemaId,
    /// The schema version the payload was validated against.
    pub schema_version: Version,
    /// The document.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    /// Commit time of the unit of work that wrote this version.
    pub created_at: DateTime<Utc>,
    /// When this row last changed state (superseded or deleted); `created_at` otherwise.
    pub updated_at: DateTime<Utc>,
    /// When the entity was soft-deleted at this version.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Whether this is the entity's current version.
    pub is_active: bool,
    /// The unit of work that wrote this version.
    pub uow_id: Uuid,
}

/// One entry of an entity's history: the version and who wrote (and deleted) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// The entity version.
    #[serde(flatten)]
    pub entity: Entity,
    /// The actor of the unit of work that wrote it.
    pub actor: String,
    /// The correlation id of that unit of work, if it had one.
    pub correlation_id: Option<String>,
    /// The unit of work that deleted the entity at this version.
    pub deleted_uow_id: Option<Uuid>,
    /// The actor who deleted it.
    pub deleted_by: Option<String>,
}

/// The columns every entity read selects, in the order [`Entity::from_row`] reads them.
pub(crate) const COLUMNS: &str = "e.entity_id, e.entity_version, e.revision, e.schema_id, \
     e.schema_version, e.payload, e.created_at, e.updated_at, e.deleted_at, e.is_active, e.uow_id";

/// How many columns [`COLUMNS`] lists: the index of the first column a read adds after them.
pub(crate) const COLUMN_COUNT: usize = 11;

impl Entity {
    pub(crate) fn from_row(row: &Row) -> Result<Entity> {
        Ok(Entity {
            entity_id: row.try_get(0)?,
            entity_version: parse_stored(row.try_get::<_, &str>(1)?)?,
            revision: row.try_get(2)?,
            schema_id: SchemaId::new(row.try_get::<_, String>(3)?)
                .map_err(|e| Error::Corrupt(e.to_string()))?,
            schema_version: parse_stored(row.try_get::<_, &str>(4)?)?,
            payload: row.try_get(5)?,
            created_at: row.try_get(6)?,
            updated_at: row.try_get(7)?,
            deleted_at: row.try_get(8)?,
            is_active: row.try_get(9)?,
            uow_id: row.try_get(10)?,
        })
    }

    /// Whether the entity reads as deleted at this version.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// An entity version as the entity JSON that [`Entity`] serializes to, made straight from the
/// stored row: the payload is copied as PostgreSQL returns it (valid JSON, spacing aside), never
/// built into a tree and written out again. For a server answering with the entity unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityJson {
    /// The entity version (an HTTP ETag, say).
    pub entity_version: Version,
    /// The entity JSON.
    pub json: Vec<u8>,
}

/// The fields of [`Entity`], in its order and with its names, borrowing from the row.
#[derive(Serialize)]
struct EntityFields<'a> {
    entity_id: Uuid,
    entity_version: &'a str,
    revision: i64,
    schema_id: &'a str,
    schema_version: &'a str,
    payload: &'a RawValue,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    is_active: bool,
    uow_id: Uuid,
}

/// A `jsonb` (or `json`) value as the text PostgreSQL sent, unparsed.
struct JsonText<'a>(&'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = match (ty, raw.split_first()) {
            // The binary form of jsonb is a format version (1) and the text.
            (&Type::JSONB, Some((1, text))) => text,
            (&Type::JSONB, _) => return Err("unknown jsonb binary format".into()),
            _ => raw,
        };
        Ok(Self(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }
}

impl EntityJson {
    /// From a row of [`COLUMNS`].
    pub(crate) fn from_row(row: &Row) -> Result<EntityJson> {
        let entity_version: &str = row.try_get(1)?;
        let JsonText(payload) = row.try_get(5)?;
        let fields = EntityFields {
            entity_id: row.try_get(0)?,
            entity_version,
            revision: row.try_get(2)?,
            schema_id: row.try_get(3)?,
            schema_version: row.try_get(4)?,
            payload: serde_json::from_str(payload)
                .map_err(|e| Error::Corrupt(format!("a stored payload: {e}")))?,
            created_at: row.try_get(6)?,
            updated_at: row.try_get(7)?,
            deleted_at: row.try_get(8)?,
            is_active: row.try_get(9)?,
            uow_id: row.try_get(10)?,
        };
        let json = serde_json::to_vec(&fields)
            .map_err(|e| Error::Corrupt(format!("an entity as JSON: {e}")))?;
        Ok(EntityJson {
            entity_version: parse_stored(entity_version)?,
            json,
        })
    }
}

/// What an update needs to know of the version in a row of [`COLUMNS`].
pub(crate) fn known_version(row: &Row) -> Result<KnownVersion> {
    Ok(KnownVersion {
        entity_version: parse_stored(row.try_get::<_, &str>(1)?)?,
        revision: row.try_get(2)?,
        schema_version: parse_stored(row.try_get::<_, &str>(4)?)?,
    })
}

pub(crate) fn parse_stored(text: &str) -> Result<Version> {
    text.parse()
        .map_err(|e: vellum_core::Error| Error::Corrupt(e.to_string()))
}

#[cfg(all(test, feature = "openapi"))]
mod openapi_tests {
    use serde_json::json;
    use utoipa::{PartialSchema, ToSchema};

    use super::*;

    #[test]
    fn a_history_entry_is_the_entity_schema_and_its_audit_fields() {
        let schema = serde_json::to_value(HistoryEntry::schema()).unwrap();
        assert_eq!(
            schema["allOf"][0]["$ref"],
            json!("#/components/schemas/Entity")
        );
        assert_eq!(schema["allOf"][1]["required"], json!(["actor"]));
        let mut referenced = Vec::new();
        HistoryEntry::schemas(&mut referenced);
        let names: Vec<_> = referenced.iter().map(|(name, _)| name.as_str()).collect();
        for name in ["Entity", "Version", "SchemaId"] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let entity = serde_json::to_value(Entity::schema()).unwrap();
        assert_eq!(entity["properties"]["payload"]["type"], json!("object"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_is_the_number_of_columns_listed() {
        assert_eq!(COLUMNS.split(',').count(), COLUMN_COUNT);
    }
}
