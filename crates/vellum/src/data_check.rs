//! Checking a candidate schema version before registering it: would the registry accept it, how
//! does it compare with its predecessor, and which stored documents would it refuse.

use std::pin::pin;

use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use vellum_core::{
    CompiledSchema, Reversibility, SchemaId, Version, Violation, compat::Assessment,
};

use crate::{
    Error, Result, SchemaMigration, SchemaRegistry, entity::parse_stored,
    registry::check_new_version,
};

/// How many failing documents a check reports in full.
pub const CHECK_SAMPLES: usize = 20;

/// The outcome of [`SchemaRegistry::check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckReport {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The candidate version.
    pub version: Version,
    /// Why registering the candidate would be refused (an existing version, the ordering rule,
    /// the compatibility rules), each as registration would say it; empty when it would be
    /// accepted.
    pub registration_problems: Vec<String>,
    /// The classification against the predecessor (`predecessor`, `declared`, `class`,
    /// `changes`) and the verdict of the compatibility rules (`mode`, `compatible`,
    /// `incompatibility`), as registration would decide them.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// Active, non-deleted documents of the entity type that were validated.
    pub documents_checked: u64,
    /// How many of them the candidate refuses.
    pub documents_failing: u64,
    /// Up to 20 of the failing documents, with every violation.
    pub samples: Vec<FailingDocument>,
    /// With a migration: how far it can be reversed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_reversibility: Option<Reversibility>,
}

/// A stored document the candidate schema refuses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailingDocument {
    /// The entity.
    pub entity_id: Uuid,
    /// Its current version.
    pub entity_version: Version,
    /// Every violation, with its JSON pointer.
    pub violations: Vec<Violation>,
}

impl SchemaRegistry<'_> {
    /// Checks a candidate version without registering anything: the definition must be a valid
    /// schema (else the same error as [`register`](Self::register)); the report says whether
    /// registration would be accepted, classifies the change from the predecessor under the
    /// schema id's compatibility mode exactly as registration would, and validates every
    /// current document of the entity type against the candidate, streaming them, so memory
    /// stays flat however many there are.
    pub async fn check(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: &Value,
    ) -> Result<CheckReport> {
        self.check_with_migration(schema_id, version, definition, None)
            .await
    }

    /// [`check`](Self::check) of a candidate registered with a migration, as
    /// [`register_with_migration`](Self::register_with_migration) would take it: the report
    /// also says whether the migration is acceptable, and the current documents of the major
    /// line it comes from are migrated before they are validated (a migration that cannot be
    /// applied to one is a violation with keyword `migration`). Unlike registration, every
    /// current document is checked, not only the first 1000.
    pub async fn check_with_migration(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: &Value,
        migration: Option<SchemaMigration>,
    ) -> Result<CheckReport> {
        let service = self.service;
        let candidate = CompiledSchema::compile(definition, service.store.schema_limits())?;
        let registered: Vec<Version> = match self.versions(schema_id).await {
            Ok(versions) => versions
                .into_iter()
                .map(|info| info.schema_version)
                .collect(),
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut registration_problems = match check_new_version(schema_id, &registered, version) {
            Ok(()) => Vec::new(),
            Err(problem) => vec![problem.to_string()],
        };
        let mut client = service.client().await?;
        let assessment = self
            .assess_in(&client, schema_id, version, definition)
            .await?;
        if let Some(incompatibility) = assessment.incompatibility.clone() {
            registration_problems
                .push(Error::incompatible(schema_id, version, incompatibility).to_string());
        }
        let migration_rule = if let Some(SchemaMigration::Operations(m)) = &migration
            && let Err(err) = m.check()
        {
            Err(err.to_string())
        } else if registered.is_empty() {
            if migration.is_some() {
                Err("the first version of a schema id takes no migration".to_owned())
            } else {
                Ok(None)
            }
        } else {
            self.check_migration_rule(schema_id, version, &registered, migration.as_ref())
                .map_err(|err| err.to_string())
        };
        // The major line whose documents are migrated before they are validated.
        let migrated_line = match migration_rule {
            Ok(line) => line,
            Err(problem) => {
                registration_problems.push(problem);
                None
            }
        };
        let mut report = CheckReport {
            schema_id: schema_id.clone(),
            version,
            registration_problems,
            assessment,
            documents_checked: 0,
            documents_failing: 0,
            samples: Vec::new(),
            migration_reversibility: migration.as_ref().map(SchemaMigration::reversibility),
        };
        if registered.is_empty() {
            return Ok(report); // no entity table yet: no documents
        }

        // A transaction guard: dropped unfinished, it rolls back before the connection is reused.
        let tx = client.transaction().await?;
        tx.batch_execute(&service.begin_sql("SET TRANSACTION READ ONLY"))
            .await?;
        let sql = format!(
            "SELECT entity_id, entity_version, payload, schema_version FROM {}
             WHERE is_active AND deleted_at IS NULL",
            service.idents.entity_table(schema_id)
        );
        let stmt = tx.prepare_cached(&sql).await?;
        let no_params: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];
        let mut rows = pin!(tx.query_raw(&stmt, no_params).await?);
        while let Some(row) = rows.try_next().await? {
            report.documents_checked += 1;
            let payload: Value = row.try_get(2)?;
            let stored: Version = parse_stored(row.try_get(3)?)?;
            let outcome = match (&migration, migrated_line) {
                (Some(migration), Some(line)) if stored.major == line => {
                    migration.apply_checked(payload)
                }
                _ => Ok(payload),
            };
            if let Err(violations) = outcome.and_then(|payload| candidate.validate(&payload)) {
                report.documents_failing += 1;
                if report.samples.len() < CHECK_SAMPLES {
                    report.samples.push(FailingDocument {
                        entity_id: row.try_get(0)?,
                        entity_version: parse_stored(row.try_get(1)?)?,
                        violations,
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(report)
    }
}
