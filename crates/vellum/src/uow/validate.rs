//! Which schema version a write is validated against, and the validation itself.

use std::sync::Arc;

use serde_json::Value;
use vellum_core::{CompiledSchema, SchemaId, Version};

use super::UnitOfWork;
use crate::{Error, Result, entity::parse_stored};

impl UnitOfWork {
    /// Validates `payload` against the requested schema version, or the active one; returns
    /// the version it was validated against.
    pub(super) async fn validate(
        &mut self,
        schema_id: &SchemaId,
        requested: Option<Version>,
        payload: &Value,
    ) -> Result<Version> {
        let active = self.active_schema(schema_id).await?;
        let version = requested.unwrap_or(active);
        if version.major != active.major {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {version} is not in the active major line {}.x",
                active.major
            )));
        }
        let compiled = self.schema(schema_id, version, version == active).await?;
        compiled
            .validate(payload)
            .map_err(|violations| Error::Validation {
                schema_id: schema_id.to_string(),
                schema_version: version,
                violations,
            })?;
        Ok(version)
    }

    /// The active version of a schema id, read once per unit of work.
    async fn active_schema(&mut self, schema_id: &SchemaId) -> Result<Version> {
        if let Some(version) = self.active_schemas.get(schema_id) {
            return Ok(*version);
        }
        let sql = format!(
            "SELECT schema_version FROM {} WHERE schema_id = $1 AND is_active",
            self.service.idents.fixed("schemas")
        );
        let rows = self.query(&sql, &[&schema_id.as_str()], schema_id).await?;
        let Some(row) = rows.first() else {
            return Err(Error::NotFound {
                what: format!("entity type {schema_id} in service {}", self.service.name),
            });
        };
        let version = parse_stored(row.try_get(0)?)?;
        self.active_schemas.insert(schema_id.clone(), version);
        Ok(version)
    }

    /// The compiled validator of a live (not deleted) schema version, checked once per unit of
    /// work. Definitions never change, so validators are compiled once per store; whether a
    /// version is deleted can change at any time, so it is read unless the version is the active
    /// one (an active version cannot be deleted).
    async fn schema(
        &mut self,
        schema_id: &SchemaId,
        version: Version,
        active: bool,
    ) -> Result<Arc<CompiledSchema>> {
        if let Some(compiled) = self.schemas.get(&(schema_id.clone(), version)) {
            return Ok(compiled.clone());
        }
        let key = (self.service.name.clone(), schema_id.clone(), version);
        let cached = self.service.store.cached_validator(&key);
        let compiled = match cached {
            Some(compiled) if active => compiled,
            cached => {
                let sql = format!(
                    "SELECT deleted_at IS NOT NULL, CASE WHEN $3 THEN schema_definition END
                     FROM {} WHERE schema_id = $1 AND schema_version = $2",
                    self.service.idents.fixed("schemas")
                );
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&schema_id.as_str(), &version.to_string(), &cached.is_none()];
                let rows = self.query(&sql, &params, schema_id).await?;
                let row = rows.first().ok_or_else(|| Error::NotFound {
                    what: format!("schema {schema_id} version {version}"),
                })?;
                if row.try_get::<_, bool>(0)? {
                    return Err(Error::NotAllowed(format!(
                        "schema {schema_id} version {version} is deleted"
                    )));
                }
                match cached {
                    Some(compiled) => compiled,
                    None => {
                        let definition: Value = row.try_get(1)?;
                        let limits = self.service.store.schema_limits();
                        let compiled = Arc::new(CompiledSchema::compile(&definition, limits)?);
                        self.service.store.cache_validator(key, compiled.clone());
                        compiled
                    }
                }
            }
        };
        self.schemas
            .insert((schema_id.clone(), version), compiled.clone());
        Ok(compiled)
    }
}
