//! Reading an entity as any registered version of its schema (SPEC §4.3, migration on read).

use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{Entity, Result, Service};

impl Service {
    /// The current version of an entity, presented as version `schema_version` of its schema;
    /// see [`present_as`](Self::present_as).
    pub async fn get_as_schema_version(
        &self,
        schema_id: &SchemaId,
        entity_id: Uuid,
        schema_version: Version,
    ) -> Result<Entity> {
        let entity = self.get(schema_id, entity_id).await?;
        self.present_as(entity, schema_version).await
    }

    /// Presents an entity version, however it was read (current, by version, as of a time),
    /// as version `schema_version` of its schema, so a client of an older (or newer) major line
    /// keeps reading the shape it knows.
    ///
    /// Within a major line the payload is unchanged; across major lines the registered
    /// migrations are composed, forward (1.x -> 2.0.0 -> 3.0.0) or reversed. The result is
    /// validated against `schema_version` and returned with `schema_version` set to it; every
    /// other field (entity version, revision, times) is the stored version's. Nothing is
    /// written: the stored version keeps its payload and its schema version.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when `schema_version` is not registered;
    /// [`Error::NotConvertible`](crate::Error::NotConvertible) when no chain of migrations
    /// leads there, a migration fails on the payload, or the result does not satisfy
    /// `schema_version` (e.g. an older minor version that does not allow a property the
    /// document has).
    pub async fn present_as(&self, mut entity: Entity, schema_version: Version) -> Result<Entity> {
        entity.payload = self
            .schemas()
            .migrate_document(
                &entity.schema_id,
                entity.payload,
                entity.schema_version,
                schema_version,
            )
            .await?;
        entity.schema_version = schema_version;
        Ok(entity)
    }
}
