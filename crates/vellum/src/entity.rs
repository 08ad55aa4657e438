//! Entity versions as read back from the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    /// From a row of [`COLUMNS`], with the fields of [`Entity`] in its order. The payload goes
    /// in as the text PostgreSQL sent: the text of a `jsonb` (or `json`) value is JSON by
    /// construction, so it is neither parsed nor checked again.
    pub(crate) fn from_row(row: &Row) -> Result<EntityJson> {
        let entity_version: &str = row.try_get(1)?;
        let JsonText(payload) = row.try_get(5)?;
        let mut object = JsonObject::with_capacity(payload.len() + 384);
        object.field("entity_id", &row.try_get::<_, Uuid>(0)?)?;
        object.field("entity_version", entity_version)?;
        object.field("revision", &row.try_get::<_, i64>(2)?)?;
        object.field("schema_id", row.try_get::<_, &str>(3)?)?;
        object.field("schema_version", row.try_get::<_, &str>(4)?)?;
        object.json_field("payload", payload);
        object.field("created_at", &row.try_get::<_, DateTime<Utc>>(6)?)?;
        object.field("updated_at", &row.try_get::<_, DateTime<Utc>>(7)?)?;
        object.field("deleted_at", &row.try_get::<_, Option<DateTime<Utc>>>(8)?)?;
        object.field("is_active", &row.try_get::<_, bool>(9)?)?;
        object.field("uow_id", &row.try_get::<_, Uuid>(10)?)?;
        Ok(EntityJson {
            entity_version: parse_stored(entity_version)?,
            json: object.finish(),
        })
    }
}

/// A JSON object written field by field, so that a field already holding JSON text goes in
/// as it is.
struct JsonObject(Vec<u8>);

impl JsonObject {
    fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// Opens the object or separates the field from the one before, then writes `"key":`.
    /// Keys are the field names of [`Entity`]: nothing in them needs escaping.
    fn key(&mut self, key: &'static str) {
        self.0.push(if self.0.is_empty() { b'{' } else { b',' });
        self.0.push(b'"');
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn field(&mut self, key: &'static str, value: &(impl Serialize + ?Sized)) -> Result<()> {
        self.key(key);
        serde_json::to_writer(&mut self.0, value)
            .map_err(|e| Error::Corrupt(format!("an entity as JSON ({key}): {e}")))
    }

    /// A field whose value is `json`, valid JSON text.
    fn json_field(&mut self, key: &'static str, json: &str) {
        self.key(key);
        self.0.extend_from_slice(json.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
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
