//! Pure logic of vellum, with no I/O: validated identifiers, semantic versions and the entity
//! version rule, and JSON Schema (2020-12) compilation and validation.
//!
//! Everything here is deterministic and synchronous, so the storage, server and CLI crates can
//! share one set of rules and test them without a database.
//!
//! Cargo feature `openapi` (off by default) implements `utoipa::ToSchema` for [`Version`],
//! [`ServiceName`], [`SchemaId`] and [`Violation`]: strings with the grammar the parsers enforce.

pub mod names;
pub mod schema;
pub mod version;

mod error;
#[cfg(feature = "openapi")]
mod openapi;

pub use error::{Error, Result};
pub use names::{SchemaId, ServiceName};
pub use schema::{CompiledSchema, Violation};
pub use version::{Bump, Version};
