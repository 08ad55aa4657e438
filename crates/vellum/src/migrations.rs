//! Data migrations between the major lines of a schema (SPEC §4.3): the migration each new
//! major version is registered with, checked on the stored documents before it is accepted,
//! stored, and listed. Their composition is in `migrator.rs`.

use std::pin::pin;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Row, types::ToSql};
use vellum_core::migration::{Operation, Reversibility};
use vellum_core::{CompiledSchema, SchemaId, Version, Violation};

use crate::{
    Error, FailingDocument, MigrationFn, Result, SchemaMigration, SchemaRegistry,
    data_check::CHECK_SAMPLES, entity::parse_stored,
};

/// How many current documents of the previous major line a new major version's migration is
/// tried on before the version is registered.
pub const MIGRATION_CHECKED_DOCUMENTS: i64 = 1000;

/// The migration a major version was registered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationInfo {
    /// The version documents come from, in the previous major line.
    pub from: Version,
    /// The version registered with the migration, the first of its major line.
    pub to: Version,
    /// The declarative operations, for a declarative migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
    /// The name of the Rust function, for a migration written in Rust (library only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// How far it can be reversed: entities are read back as versions of the old major line
    /// only through a migration that is not lossy.
    pub reversibility: Reversibility,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

const MIGRATION_COLUMNS: &str =
    "from_version, to_version, operations, function_name, reversibility, created_at";

impl SchemaRegistry<'_> {
    /// Registers a new schema version together with the migration its documents come from
    /// (SPEC §4.3); otherwise exactly like [`register`](Self::register).
    ///
    /// A version that starts a new major line above an existing one must come with a migration
    /// from a registered version of the previous major line (`migration.from_version()`); other
    /// versions are compatible with their major line by classification and take none.
    /// Before anything is registered, the migration is applied to up to
    /// [`MIGRATION_CHECKED_DOCUMENTS`] current documents stored under the previous major line,
    /// and each result is validated against the new definition; if one fails, registration is
    /// refused with [`Error::InvalidMigration`], its samples listing each failing document
    /// with its violations (or the operation that could not be applied).
    ///
    /// A declarative migration is stored with the version. A [`MigrationFn`] is recorded by
    /// name and installed in this process's store; other processes must
    /// [install](Self::install_migration_fn) it before they can read entities across it.
    pub async fn register_with_migration(
        &self,
        schema_id: &SchemaId,
        version: Version,
        definition: Value,
        migration: impl Into<SchemaMigration>,
        activate: bool,
    ) -> Result<crate::SchemaVersion> {
        self.register_checked(
            schema_id,
            version,
            definition,
            Some(migration.into()),
            activate,
        )
        .await
    }

    /// Every migration of a schema id, in the order of the versions they lead to.
    pub async fn migrations(&self, schema_id: &SchemaId) -> Result<Vec<MigrationInfo>> {
        let client = self.service.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {MIGRATION_COLUMNS} FROM vellum.schema_migrations
                     WHERE service = $1 AND schema_id = $2"
                ),
                &[&self.service.name.as_str(), &schema_id.as_str()],
            )
            .await?;
        let mut found = rows.iter().map(info_from_row).collect::<Result<Vec<_>>>()?;
        found.sort_by_key(|m| m.to);
        Ok(found)
    }

    /// The migration `version` was registered with, if any.
    pub(crate) async fn migration_to(
        &self,
        client: &impl GenericClient,
        schema_id: &SchemaId,
        version: Version,
    ) -> Result<Option<MigrationInfo>> {
        client
            .query_opt(
                &format!(
                    "SELECT {MIGRATION_COLUMNS} FROM vellum.schema_migrations
                     WHERE service = $1 AND schema_id = $2 AND to_version = $3"
                ),
                &[
                    &self.service.name.as_str(),
                    &schema_id.as_str(),
                    &version.to_string(),
                ],
            )
            .await?
            .as_ref()
            .map(info_from_row)
            .transpose()
    }

    /// Installs in this process the Rust function of the migration `to` was registered with,
    /// e.g. when a service starts; the name and `from` must be the ones recorded.
    pub async fn install_migration_fn(
        &self,
        schema_id: &SchemaId,
        to: Version,
        function: MigrationFn,
    ) -> Result<()> {
        let client = self.service.client().await?;
        let recorded = self.migration_to(&client, schema_id, to).await?;
        match recorded {
            Some(info)
                if info.function.as_deref() == Some(function.name())
                    && info.from == function.from =>
            {
                self.service.store.install_migration_fn(
                    (self.service.name.clone(), schema_id.clone(), to),
                    function,
                );
                Ok(())
            }
            Some(info) => Err(Error::NotAllowed(format!(
                "schema {schema_id} version {to} was registered with the migration from {} {}, \
                 not the Rust function {:?} from {}",
                info.from,
                describe(&info),
                function.name(),
                function.from
            ))),
            None => Err(Error::NotFound {
                what: format!("migration to schema {schema_id} version {to}"),
            }),
        }
    }

    /// Whether `migration` may come with `version`, which is not the first version of the
    /// schema id (`registered` lists the others); if so, the major line it comes from.
    pub(crate) fn check_migration_rule(
        &self,
        schema_id: &SchemaId,
        version: Version,
        registered: &[Version],
        migration: Option<&SchemaMigration>,
    ) -> Result<Option<u32>> {
        let new_line = !registered.iter().any(|v| v.major == version.major);
        let previous = registered
            .iter()
            .map(|v| v.major)
            .filter(|major| *major < version.major)
            .max();
        let refuse = |reason: String| Error::InvalidMigration {
            schema_id: schema_id.to_string(),
            version,
            reason,
            documents_checked: 0,
            documents_failing: 0,
            samples: Vec::new(),
        };
        match (new_line, previous, migration) {
            (true, Some(previous), None) => Err(refuse(format!(
                "version {version} starts major line {}: it must be registered with a migration \
                 from a version of major line {previous} (\"migration\" in the request, \
                 --migration FILE on the command line)",
                version.major
            ))),
            (true, Some(previous), Some(migration)) => {
                let from = migration.from_version();
                if from.major != previous || !registered.contains(&from) {
                    let mut candidates: Vec<String> = registered
                        .iter()
                        .filter(|v| v.major == previous)
                        .map(ToString::to_string)
                        .collect();
                    candidates.sort();
                    return Err(refuse(format!(
                        "the migration must come from a registered version of major line \
                         {previous} ({}), not {from}",
                        candidates.join(", ")
                    )));
                }
                Ok(Some(previous))
            }
            (_, _, Some(_)) => Err(refuse(format!(
                "version {version} does not start a new major line above another one, so it \
                 takes no migration: its documents are compatible with its major line"
            ))),
            (_, _, None) => Ok(None),
        }
    }

    /// Applies `migration` to up to [`MIGRATION_CHECKED_DOCUMENTS`] current documents stored
    /// under major line `previous` and validates each result against `candidate`, in `tx`.
    pub(crate) async fn check_migration_on_documents(
        &self,
        tx: &impl GenericClient,
        schema_id: &SchemaId,
        version: Version,
        previous: u32,
        migration: &SchemaMigration,
        candidate: &CompiledSchema,
    ) -> Result<()> {
        let sql = format!(
            "SELECT entity_id, entity_version, payload FROM {}
             WHERE is_active AND deleted_at IS NULL AND split_part(schema_version, '.', 1) = $1
             LIMIT $2",
            self.service.idents.entity_table(schema_id)
        );
        let stmt = tx.prepare(&sql).await?;
        let major = previous.to_string();
        let params: [&(dyn ToSql + Sync); 2] = [&major, &MIGRATION_CHECKED_DOCUMENTS];
        let mut rows = pin!(tx.query_raw(&stmt, params).await?);
        let (mut checked, mut failing, mut samples) = (0u64, 0u64, Vec::new());
        while let Some(row) = rows.try_next().await? {
            checked += 1;
            let payload: Value = row.try_get(2)?;
            let violations = migration
                .apply_checked(payload)
                .and_then(|migrated| candidate.validate(&migrated))
                .err();
            if let Some(violations) = violations {
                failing += 1;
                if samples.len() < CHECK_SAMPLES {
                    samples.push(FailingDocument {
                        entity_id: row.try_get(0)?,
                        entity_version: parse_stored(row.try_get(1)?)?,
                        violations,
                    });
                }
            }
        }
        if failing == 0 {
            return Ok(());
        }
        Err(Error::InvalidMigration {
            schema_id: schema_id.to_string(),
            version,
            reason: format!(
                "{failing} of the {checked} current documents of major line {previous} checked \
                 do not satisfy version {version} once migrated"
            ),
            documents_checked: checked,
            documents_failing: failing,
            samples,
        })
    }

    /// Records the migration `version` is registered with, in the registration's `tx`.
    pub(crate) async fn insert_migration(
        &self,
        tx: &impl GenericClient,
        schema_id: &SchemaId,
        version: Version,
        migration: &SchemaMigration,
    ) -> Result<MigrationInfo> {
        let (operations, function) = match migration {
            SchemaMigration::Operations(m) => (
                Some(serde_json::to_value(&m.operations).expect("operations serialize")),
                None,
            ),
            SchemaMigration::Function(f) => (None, Some(f.name.clone())),
        };
        let reversibility = serde_json::to_value(migration.reversibility())
            .expect("a reversibility serializes")
            .as_str()
            .expect("as a string")
            .to_owned();
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO vellum.schema_migrations
                        (service, schema_id, to_version, from_version, operations, function_name,
                         reversibility)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {MIGRATION_COLUMNS}"
                ),
                &[
                    &self.service.name.as_str(),
                    &schema_id.as_str(),
                    &version.to_string(),
                    &migration.from_version().to_string(),
                    &operations,
                    &function,
                    &reversibility,
                ],
            )
            .await?;
        info_from_row(&row)
    }
}

fn info_from_row(row: &Row) -> Result<MigrationInfo> {
    let operations = row
        .try_get::<_, Option<Value>>(2)?
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::Corrupt(format!("stored migration operations: {e}")))?;
    let reversibility = serde_json::from_value(Value::String(row.try_get(4)?))
        .map_err(|e| Error::Corrupt(format!("stored migration reversibility: {e}")))?;
    Ok(MigrationInfo {
        from: parse_stored(row.try_get(0)?)?,
        to: parse_stored(row.try_get(1)?)?,
        operations,
        function: row.try_get(3)?,
        reversibility,
        created_at: row.try_get(5)?,
    })
}

impl SchemaMigration {
    /// Applies the migration to a stored document; an operation that cannot be applied is a
    /// violation of the `migration` keyword, at its pointer.
    pub(crate) fn apply_checked(&self, document: Value) -> Result<Value, Vec<Violation>> {
        match self {
            SchemaMigration::Operations(m) => m
                .apply(document)
                .map_err(|err| vec![violation(err.pointer.clone(), err.to_string())]),
            SchemaMigration::Function(f) => f
                .apply(document)
                .map_err(|err| vec![violation(String::new(), err)]),
        }
    }
}

/// A migration that could not be applied to a stored document, as a violation of the
/// `migration` keyword.
fn violation(pointer: String, message: String) -> Violation {
    Violation {
        pointer,
        keyword: "migration".to_owned(),
        message,
    }
}

fn describe(info: &MigrationInfo) -> String {
    match &info.function {
        Some(name) => format!("written in Rust ({name:?})"),
        None => "made of declarative operations".to_owned(),
    }
}

/// Why a migration cannot be reversed, naming its lossy operations.
pub(crate) fn lossy_reason(info: &MigrationInfo) -> String {
    match &info.operations {
        Some(operations) => {
            let lossy: Vec<String> = operations
                .iter()
                .enumerate()
                .filter(|(_, op)| op.reversibility() == Reversibility::Lossy)
                .map(|(i, op)| format!("operation {i} ({} {})", op.name(), op.pointer()))
                .collect();
            format!(
                "the migration from {} to {} cannot be reversed: it loses information at {} \
                 (reversible forms: remove and set with `restore`, cast with `from`, map with \
                 an injective mapping to strings)",
                info.from,
                info.to,
                lossy.join(", ")
            )
        }
        None => format!(
            "the migration from {} to {} is a Rust function without a backward function",
            info.from, info.to
        ),
    }
}
