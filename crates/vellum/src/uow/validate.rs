//! Which schema version a write is validated against, and the validation itself.

use std::{sync::Arc, time::Instant};

use serde_json::Value;
use uuid::Uuid;
use vellum_core::{CompiledSchema, SchemaId, Version, Violation};

use super::UnitOfWork;
use crate::{Error, Result, Store, entity::parse_stored, store::SeenActive};

/// A document that passed validation: the schema version it was validated against, and the
/// entities its `x-vellum-ref` properties name, to be checked at commit.
#[derive(Debug)]
pub(super) struct Validated {
    pub(super) schema_version: Version,
    pub(super) references: Vec<ReferenceCheck>,
}

/// One reference of a staged write: checked in the commit pipeline, after the writes staged
/// before it, so an entity created earlier in the same unit of work can be referenced.
#[derive(Debug, Clone)]
pub(crate) struct ReferenceCheck {
    pub(super) pointer: String,
    pub(super) target: SchemaId,
    pub(super) target_id: Uuid,
}

impl UnitOfWork {
    /// Validates `payload` against the requested schema version, or the active one, including
    /// the form of its references (entity ids).
    pub(super) async fn validate(
        &mut self,
        schema_id: &SchemaId,
        requested: Option<Version>,
        payload: &Value,
    ) -> Result<Validated> {
        let active = self.active_schema(schema_id).await?;
        let version = requested.unwrap_or(active);
        if version.major != active.major {
            return Err(Error::NotAllowed(format!(
                "schema {schema_id} version {version} is not in the active major line {}.x",
                active.major
            )));
        }
        let compiled = self.schema(schema_id, version, version == active).await?;
        let invalid = |violations| Error::Validation {
            schema_id: schema_id.to_string(),
            schema_version: version,
            violations,
        };
        let references = check(&self.service.store, &compiled, payload).map_err(invalid)?;
        Ok(Validated {
            schema_version: version,
            references,
        })
    }

    /// The active version of a schema id, once per unit of work: as this process last saw it
    /// (to be confirmed at commit: `unconfirmed_active`), or read in the
    /// transaction.
    async fn active_schema(&mut self, schema_id: &SchemaId) -> Result<Version> {
        if let Some(version) = self.active_schemas.get(schema_id) {
            return Ok(*version);
        }
        let key = (self.service.name.clone(), schema_id.clone());
        if let Some(seen) = self.service.store.cached_active(&key) {
            self.active_schemas.insert(schema_id.clone(), seen.version);
            self.unconfirmed_active
                .push((schema_id.clone(), seen.generation));
            return Ok(seen.version);
        }
        let sql = format!(
            "SELECT a.schema_version, s.registry_generation FROM {} a, {} s
             WHERE a.schema_id = $1 AND a.is_active",
            self.service.idents.fixed("schemas"),
            self.service.idents.fixed("event_settings"),
        );
        let rows = self.query(&sql, &[&schema_id.as_str()], schema_id).await?;
        let Some(row) = rows.first() else {
            return Err(Error::NotFound {
                what: format!("entity type {schema_id} in service {}", self.service.name),
            });
        };
        let version = parse_stored(row.try_get(0)?)?;
        self.active_schemas.insert(schema_id.clone(), version);
        let generation = row.try_get(1)?;
        self.service.store.cache_active(
            key,
            SeenActive {
                version,
                generation,
            },
        );
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

/// Checks `payload` against `compiled`, then reads the references it makes (see
/// [`reference_checks`]), counting the time in `store`'s unit-of-work statistics
/// ([`UowStats::validation_time`](crate::UowStats::validation_time)).
pub(crate) fn check(
    store: &Store,
    compiled: &CompiledSchema,
    payload: &Value,
) -> Result<Vec<ReferenceCheck>, Vec<Violation>> {
    let started = Instant::now();
    let checked = compiled
        .validate(payload)
        .and_then(|()| reference_checks(compiled, payload));
    store.counters().validated(started.elapsed());
    checked
}

/// The references a valid document makes; a referencing value that is not an entity id is a
/// violation. Absent and `null` values reference nothing.
fn reference_checks(
    compiled: &CompiledSchema,
    payload: &Value,
) -> Result<Vec<ReferenceCheck>, Vec<Violation>> {
    let mut checks = Vec::new();
    let mut violations = Vec::new();
    for reference in &compiled.annotations().references {
        let value = reference
            .segments
            .iter()
            .try_fold(payload, |value, segment| value.get(segment));
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) if Uuid::try_parse(id).is_ok() => checks.push(ReferenceCheck {
                pointer: reference.pointer.clone(),
                target: reference.target.clone(),
                target_id: Uuid::try_parse(id).expect("checked by the guard"),
            }),
            Some(_) => violations.push(Violation {
                pointer: reference.pointer.clone(),
                keyword: "x-vellum-ref".into(),
                message: format!("must be the id (a UUID) of a {} entity", reference.target),
            }),
        }
    }
    if violations.is_empty() {
        Ok(checks)
    } else {
        Err(violations)
    }
}
