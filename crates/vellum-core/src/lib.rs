//! Pure logic of vellum, with no I/O: validated identifiers, semantic versions and the entity
//! version rule, JSON Schema (2020-12) compilation and validation, and the schema evolution
//! rules: change classification and compatibility modes ([`compat`]), and the query AST with its
//! compiler to parameterized SQL ([`query`]), and the declarative data migrations between schema
//! versions ([`migration`]).
//!
//! Everything here is deterministic and synchronous, so the storage, server and CLI crates can
//! share one set of rules and test them without a database.
//!
//! Cargo feature `openapi` (off by default) implements `utoipa::ToSchema` for [`Version`],
//! [`ServiceName`], [`SchemaId`] and [`Violation`]: strings with the grammar the parsers enforce;
//! and derives it for the change reports and modes of [`compat`].

pub mod compat;
pub mod migration;
pub mod names;
pub mod query;
pub mod schema;
pub mod version;

mod error;
#[cfg(feature = "openapi")]
mod openapi;

pub use compat::{Change, ChangeClass, ChangeKind, Classification, CompatibilityMode, classify};
pub use error::{Error, Result};
pub use migration::{Migration, MigrationError, Operation, Reversibility};
pub use names::{SchemaId, ServiceName};
pub use query::{
    CompiledQuery, Condition, Direction, Filter, JsonPath, Operator, OrderBy, OrderKey, Query,
    QueryContext, QueryError, RowKeys, SqlParam, ValueKind,
};
pub use schema::{CompiledSchema, Violation};
pub use version::{Bump, Version};
