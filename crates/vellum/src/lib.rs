//! # vellum
//!
//! A document store with strict schema governance on PostgreSQL. Every document belongs to an
//! entity type whose shape is a versioned JSON Schema; every write is validated and appends a new
//! immutable version, so any earlier state can be read back and audited; writes commit together
//! in a [`UnitOfWork`].
//!
//! ```no_run
//! use serde_json::json;
//! use vellum::{SchemaId, ServiceName, Store, StoreOptions, Version, WriteOptions};
//!
//! # async fn tour(config: tokio_postgres::Config) -> vellum::Result<()> {
//! let store = Store::connect(config, StoreOptions::default()).await?;
//! let orders = store.create_service(&ServiceName::new("orders")?).await?;
//! let orders = store.service(&orders.name).await?;
//!
//! let order = SchemaId::new("sales_order")?;
//! let definition = json!({
//!     "type": "object",
//!     "required": ["customer"],
//!     "properties": {"customer": {"type": "string"}, "total": {"type": "number"}}
//! });
//! orders.schemas().register(&order, "1.0.0".parse()?, definition, false).await?;
//!
//! let mut uow = orders.begin("alice").await?;
//! let staged = uow.create(&order, json!({"customer": "ACME"}), WriteOptions::default()).await?;
//! let committed = uow.commit().await?;
//!
//! let current = orders.get(&order, staged.entity_id).await?;
//! assert_eq!(current.entity_version, Version::INITIAL);
//! let then = orders.get_as_of(&order, staged.entity_id, committed.committed_at).await?;
//! assert_eq!(then, current);
//! # Ok(())
//! # }
//! ```
//!
//! Open a store on any PostgreSQL 13+ with [`Store::connect`], or on a private cluster in a data
//! directory with [`EmbeddedCluster`] and [`Store::open_embedded`].
//!
//! A unit of work also emits [`Event`]s ([`UnitOfWork::emit`]): they are written to the service's
//! outbox in the same transaction, come back in [`Committed::events`] with their positions, and
//! are read in commit order with [`Service::events_after`] and [`Service::subscribe`], or
//! published to NATS JetStream by an [`OutboxRelay`] (see `docs/events.md`).
//!
//! Per-service API tokens with scopes are issued, checked and revoked with
//! [`Store::issue_token`], [`Store::authenticate`] and [`Store::revoke_token`]; only their
//! SHA-256 is stored.
//!
//! Cargo feature `openapi` (off by default) derives `utoipa::ToSchema` for the types the HTTP
//! API returns.

mod compatibility;
mod data_check;
mod embedded;
mod entity;
mod error;
mod events;
mod health;
mod import;
mod indexes;
mod known;
mod migrate;
mod migration_fn;
mod migration_job;
mod migrations;
mod migrator;
mod pool;
pub mod query;
mod raw;
mod read_as;
mod registry;
mod schema_files;
mod service;
mod sql;
mod store;
mod tokens;
pub mod typed;
mod uow;

pub use data_check::{CHECK_SAMPLES, CheckReport, FailingDocument};
pub use embedded::{ClusterStatus, EmbeddedCluster, RunningCluster};
pub use entity::{Entity, EntityJson, HistoryEntry};
pub use error::{Error, Result};
pub use events::{
    CloudEvent, Event, EventSubscription, FEED_MAX_LIMIT, FeedCursor, OutboxEvent, OutboxRelay,
    RelayOptions, RelayStatus,
};
pub use health::PoolStatus;
pub use import::Imported;
pub use migration_fn::{MigrateDocument, MigrationFn, SchemaMigration};
pub use migration_job::{
    FailedMigration, MIGRATION_SAMPLES, MigrationJobOptions, MigrationProgress, MigrationReport,
};
pub use migrations::{MIGRATION_CHECKED_DOCUMENTS, MigrationInfo};
pub use migrator::Migrator;
pub use query::Page;
pub use raw::RawSql;
pub use registry::{SchemaRegistry, SchemaSummary, SchemaVersion, SchemaVersionInfo};
pub use schema_files::{Drift, DriftKind, Plan, PlannedVersion, SchemaFile, read_schema_files};
pub use service::Service;
pub use store::{ServiceInfo, Store, StoreOptions};
pub use tokens::{IssuedToken, Scope, TokenInfo};
pub use uow::{Committed, Staged, UnitOfWork, UowOptions, UowStats, WriteOptions};
/// Malformed names, versions and schema definitions, as [`Error::InvalidInput`] carries them.
pub use vellum_core::Error as CoreError;
pub use vellum_core::compat::{
    Assessment, Change, ChangeClass, ChangeKind, Classification, CompatibilityMode,
    Incompatibility, classify,
};
pub use vellum_core::migration::{JsonType, Migration, MigrationError, Operation, Reversibility};
pub use vellum_core::{Bump, SchemaId, ServiceName, Version, Violation, schema::SchemaLimits};

/// The NATS client the [`OutboxRelay`] publishes through.
pub use async_nats;

/// The PostgreSQL driver types that appear in vellum's API (raw SQL rows and parameters).
pub mod pg {
    pub use tokio_postgres::{Config, Row, types::ToSql};
}
