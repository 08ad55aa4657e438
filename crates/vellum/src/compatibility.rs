//! Compatibility modes per schema id, and the assessment of a candidate version against the
//! registered ones (SPEC §4.2). The rules themselves are pure, in `vellum_core::compat`.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use vellum_core::compat::{Assessment, CompatibilityMode, Incompatibility, assess};
use vellum_core::{SchemaId, Version};

use crate::{Error, Result, SchemaRegistry, entity::parse_stored};

/// The non-deleted versions lower than the candidate that the rules compare it with: the
/// greatest one (its predecessor, whatever its major) and, for a transitive mode, every one of
/// the candidate's major.
const EARLIER_VERSIONS: &str = "
    SELECT schema_version, schema_definition FROM (
        SELECT schema_version, schema_definition, major,
               row_number() OVER (ORDER BY major DESC, minor DESC, patch DESC) AS rank
        FROM {table}
        WHERE schema_id = $1 AND deleted_at IS NULL AND (major, minor, patch) < ($2, $3, $4)
    ) earlier
    WHERE rank = 1 OR ($5 AND major = $2)";

impl SchemaRegistry<'_> {
    /// The compatibility mode of a schema id: `BACKWARD` unless another was set, also for a
    /// schema id with no version yet.
    pub async fn compatibility(&self, schema_id: &SchemaId) -> Result<CompatibilityMode> {
        let client = self.service.client().await?;
        self.mode_in(&client, schema_id).await
    }

    /// Sets the compatibility mode of a schema id, which the next registrations of it obey. It
    /// may be set before the first version is registered.
    pub async fn set_compatibility(
        &self,
        schema_id: &SchemaId,
        mode: CompatibilityMode,
    ) -> Result<()> {
        let mut client = self.service.client().await?;
        let tx = client.transaction().await?;
        // Serialized with registrations of the schema id, which read the mode under this lock.
        self.lock_schema_id(&tx, schema_id).await?;
        tx.execute(
            "INSERT INTO vellum.schema_compatibility (service, schema_id, mode) VALUES ($1, $2, $3)
             ON CONFLICT (service, schema_id)
             DO UPDATE SET mode = EXCLUDED.mode, updated_at = clock_timestamp()",
            &[
                &self.service.name.as_str(),
                &schema_id.as_str(),
                &mode.as_str(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn mode_in(
        &self,
        client: &impl GenericClient,
        schema_id: &SchemaId,
    ) -> Result<CompatibilityMode> {
        let row = client
            .query_opt(
                "SELECT mode FROM vellum.schema_compatibility WHERE service = $1 AND schema_id = $2",
                &[&self.service.name.as_str(), &schema_id.as_str()],
            )
            .await?;
        match row {
            None => Ok(CompatibilityMode::default()),
            Some(row) => row
                .try_get::<_, &str>(0)?
                .parse()
                .map_err(|e: vellum_core::Error| Error::Corrupt(e.to_string())),
        }
    }

    /// Classifies `definition` as `version` against the registered versions and applies the
    /// schema id's mode, reading through `client` (a registration's locked transaction, or a
    /// plain connection for a check).
    pub(crate) async fn assess_in(
        &self,
        client: &impl GenericClient,
        schema_id: &SchemaId,
        version: Version,
        definition: &Value,
    ) -> Result<Assessment> {
        let mode = self.mode_in(client, schema_id).await?;
        let sql = EARLIER_VERSIONS.replace("{table}", &self.service.idents.fixed("schemas"));
        let rows = client
            .query(
                &sql,
                &[
                    &schema_id.as_str(),
                    &(version.major as i32),
                    &(version.minor as i32),
                    &(version.patch as i32),
                    &mode.transitive(),
                ],
            )
            .await?;
        let earlier: Vec<(Version, Value)> = rows
            .iter()
            .map(|row| Ok((parse_stored(row.try_get(0)?)?, row.try_get(1)?)))
            .collect::<Result<_>>()?;
        let earlier: Vec<(Version, &Value)> = earlier.iter().map(|(v, d)| (*v, d)).collect();
        Ok(assess(mode, version, definition, &earlier))
    }
}

impl Error {
    /// The refusal of `version` of `schema_id` for `incompatibility`.
    pub(crate) fn incompatible(
        schema_id: &SchemaId,
        version: Version,
        incompatibility: Incompatibility,
    ) -> Error {
        Error::IncompatibleSchema {
            schema_id: schema_id.to_string(),
            version,
            against: incompatibility.against,
            mode: incompatibility.mode,
            declared: incompatibility.declared,
            detected: incompatibility.detected,
            reason: incompatibility.reason,
            changes: incompatibility.changes,
        }
    }
}
