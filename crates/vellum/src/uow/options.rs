//! What a caller tells a unit of work, and what it gets back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use vellum_core::{SchemaId, Version};

use crate::{Entity, Error, Result};

/// Who runs a unit of work, and why; see [`Service::begin_with`](crate::Service::begin_with).
#[derive(Debug, Clone)]
pub struct UowOptions {
    pub(crate) actor: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) metadata: Value,
}

impl UowOptions {
    /// A unit of work on behalf of `actor` (a user, a service, a job).
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            correlation_id: None,
            metadata: Value::Object(Default::default()),
        }
    }

    /// Ties the unit of work to a request or a saga.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Free-form audit metadata stored with the unit of work (a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::NotAllowed(reason.to_string()));
        if self.actor.trim().is_empty() {
            return bad("a unit of work needs an actor");
        }
        if self.actor.len() > 256 || self.correlation_id.as_ref().is_some_and(|c| c.len() > 256) {
            return bad("actor and correlation id are at most 256 bytes");
        }
        if self.actor.contains('\0')
            || self
                .correlation_id
                .as_ref()
                .is_some_and(|c| c.contains('\0'))
        {
            return bad("actor and correlation id cannot contain U+0000");
        }
        if !self.metadata.is_object() {
            return bad("unit of work metadata must be a JSON object");
        }
        Ok(())
    }
}

/// Options of one write in a unit of work.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// For a create: the entity id to use instead of a fresh UUIDv7.
    pub entity_id: Option<Uuid>,
    /// Optimistic locking: the write fails with [`Error::VersionConflict`] unless this is the
    /// entity's active version. Without it, the write locks the entity until commit.
    pub expected_version: Option<Version>,
    /// The schema version to validate and store under, instead of the active one. It must be a
    /// non-deleted version of the active version's major.
    pub schema_version: Option<Version>,
}

impl WriteOptions {
    /// Expect `version` to be the active entity version.
    pub fn expect(version: Version) -> Self {
        Self {
            expected_version: Some(version),
            ..Self::default()
        }
    }

    /// Create the entity with this id.
    pub fn with_id(entity_id: Uuid) -> Self {
        Self {
            entity_id: Some(entity_id),
            ..Self::default()
        }
    }

    /// Write under this schema version.
    pub fn under_schema(mut self, version: Version) -> Self {
        self.schema_version = Some(version);
        self
    }
}

/// A write staged in a unit of work: what it will store when the unit of work commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Staged {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The entity.
    pub entity_id: Uuid,
    /// The entity version the write creates (for a delete: the version that gets deleted).
    pub entity_version: Version,
    /// Its revision.
    pub revision: i64,
    /// The schema version the payload was validated against.
    pub schema_version: Version,
}

/// The outcome of a committed unit of work.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Committed {
    /// The unit of work, as recorded in the audit trail.
    pub uow_id: Uuid,
    /// The commit time: `created_at` of every version it wrote.
    pub committed_at: DateTime<Utc>,
    /// Every entity version written (or deleted) in staging order.
    pub entities: Vec<Entity>,
}
