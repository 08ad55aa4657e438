//! Presenting documents as another version of their schema by composing migrations: the
//! building block of reads as any version and of eager migration jobs.

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;
use vellum_core::migration::plan::{Link, PlanError, Step, plan};
use vellum_core::migration::{Migration, Reversibility, apply_operations};
use vellum_core::{CompiledSchema, SchemaId, Version, Violation};

use crate::{Error, MigrationFn, MigrationInfo, Result, SchemaRegistry, migrations::lossy_reason};

/// Migrates documents of one schema id to one target version, with the migrations and the
/// target's compiled definition loaded once: [`migrate`](Self::migrate) runs without a round
/// trip, so a job can migrate many documents with it. Built by [`SchemaRegistry::migrator`].
///
/// It sees the migrations registered, and the Rust migrations installed in this process, when it
/// was built.
#[derive(Debug, Clone)]
pub struct Migrator {
    schema_id: SchemaId,
    to: Version,
    target: Arc<CompiledSchema>,
    migrations: Vec<MigrationInfo>,
    functions: HashMap<Version, MigrationFn>,
}

impl SchemaRegistry<'_> {
    /// A [`Migrator`] of documents of `schema_id` to version `to`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if `to` is not a registered version (soft-deleted ones count).
    pub async fn migrator(&self, schema_id: &SchemaId, to: Version) -> Result<Migrator> {
        let target = self.compiled(schema_id, to).await?;
        let migrations = self.migrations(schema_id).await?;
        let functions = migrations
            .iter()
            .filter(|m| m.function.is_some())
            .filter_map(|m| {
                let key = (self.service.name.clone(), schema_id.clone(), m.to);
                self.service.store.migration_fn(&key).map(|f| (m.to, f))
            })
            .collect();
        Ok(Migrator {
            schema_id: schema_id.clone(),
            to,
            target,
            migrations,
            functions,
        })
    }

    /// Presents `document`, valid under version `from` of the schema, as version `to`: within a
    /// major line as it is, else through the chain of registered migrations, forward or
    /// reversed; the result is validated against `to`. For many documents, build a
    /// [`migrator`](Self::migrator) once.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if `to` is not a registered version; [`Error::NotConvertible`] as
    /// [`Migrator::migrate`] says.
    pub async fn migrate_document(
        &self,
        schema_id: &SchemaId,
        document: Value,
        from: Version,
        to: Version,
    ) -> Result<Value> {
        if from == to {
            return Ok(document);
        }
        if from.major == to.major {
            // No migration runs within a major line: no need to load them.
            let target = self.compiled(schema_id, to).await?;
            return validated(&target, schema_id, from, to, document);
        }
        self.migrator(schema_id, to).await?.migrate(document, from)
    }
}

impl Migrator {
    /// The version documents are migrated to.
    pub fn target(&self) -> Version {
        self.to
    }

    /// Migrates `document`, valid under version `from`, to the target version, and validates
    /// the result against it (a document already at the target is returned as it is).
    ///
    /// # Errors
    ///
    /// [`Error::NotConvertible`] when no chain of migrations leads from `from` to the target (a
    /// lossy migration on the way back, a major version registered without a migration, a Rust
    /// migration not installed in this process), a migration fails on the document, or the
    /// result does not satisfy the target (with the violations).
    pub fn migrate(&self, document: Value, from: Version) -> Result<Value> {
        let to = self.to;
        if from == to {
            return Ok(document);
        }
        let refuse = |reason: String| Error::NotConvertible {
            schema_id: self.schema_id.to_string(),
            from,
            to,
            reason,
            violations: Vec::new(),
        };
        let links: Vec<Link> = self
            .migrations
            .iter()
            .map(|m| Link {
                from: m.from,
                to: m.to,
                reversible: m.reversibility != Reversibility::Lossy,
            })
            .collect();
        let steps = plan(&links, from, to).map_err(|err| {
            refuse(match err {
                PlanError::NoPath { .. } => format!(
                    "{err} (a major version registered without a migration breaks the chain)"
                ),
                PlanError::Lossy(link) => self
                    .migrations
                    .iter()
                    .find(|m| m.to == link.to)
                    .map_or_else(|| err.to_string(), lossy_reason),
            })
        })?;
        let mut document = document;
        for step in steps {
            let (Step::Forward(i) | Step::Backward(i)) = step;
            let forward = matches!(step, Step::Forward(_));
            document = self
                .run_step(&self.migrations[i], forward, document)
                .map_err(refuse)?;
        }
        validated(&self.target, &self.schema_id, from, to, document)
    }

    /// Applies one migration of a plan, forward or reversed.
    fn run_step(
        &self,
        info: &MigrationInfo,
        forward: bool,
        document: Value,
    ) -> Result<Value, String> {
        let (source, target) = if forward {
            (info.from, info.to)
        } else {
            (info.to, info.from)
        };
        let failed = |err: String| format!("the migration from {source} to {target} failed: {err}");
        if let Some(operations) = &info.operations {
            let operations = if forward {
                operations.clone()
            } else {
                let migration = Migration {
                    from: info.from,
                    operations: operations.clone(),
                };
                migration
                    .reverse(info.to)
                    .ok_or_else(|| lossy_reason(info))?
                    .operations
            };
            return apply_operations(&operations, document).map_err(|e| failed(e.to_string()));
        }
        let name = info.function.as_deref().unwrap_or_default();
        let Some(function) = self.functions.get(&info.to) else {
            return Err(format!(
                "the migration from {} to {} is the Rust function {name:?}, which is not \
                 installed in this process",
                info.from, info.to
            ));
        };
        if forward {
            return function.apply(document).map_err(failed);
        }
        match &function.backward {
            Some(backward) => backward(document).map_err(failed),
            None => Err(lossy_reason(info)),
        }
    }
}

/// `document` if it satisfies `target`, else why not.
fn validated(
    target: &CompiledSchema,
    schema_id: &SchemaId,
    from: Version,
    to: Version,
    document: Value,
) -> Result<Value> {
    target
        .validate(&document)
        .map_err(|violations: Vec<Violation>| Error::NotConvertible {
            schema_id: schema_id.to_string(),
            from,
            to,
            reason: format!("the result does not satisfy version {to}"),
            violations,
        })?;
    Ok(document)
}
