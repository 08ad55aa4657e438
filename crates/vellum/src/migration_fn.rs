//! Migrations written in Rust, and the migration a new major version is registered with.

use std::{fmt, sync::Arc};

use serde_json::Value;
use vellum_core::{Migration, Reversibility, Version};

/// A document transformation written in Rust: takes a document, returns the migrated one or
/// why it cannot.
pub type MigrateDocument = dyn Fn(Value) -> Result<Value, String> + Send + Sync;

/// A migration written in Rust, for what the declarative operations cannot say (splitting a
/// name, computing a total).
///
/// Only its name and `from` are stored with the major version it is registered with; the
/// functions live in the process that installed them ([`SchemaRegistry::register_with_migration`]
/// installs it, [`SchemaRegistry::install_migration_fn`] installs it again in a process that
/// starts later). A process that has not installed it refuses to read entities across it with
/// [`Error::NotConvertible`](crate::Error::NotConvertible), naming the function.
///
/// ```
/// use serde_json::{json, Value};
/// use vellum::{MigrationFn, Version};
///
/// let split = MigrationFn::new("split_name", Version::new(1, 0, 0), |mut doc: Value| {
///     let name = doc["name"].as_str().ok_or("name is not a string")?.to_owned();
///     let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
///     doc["name"] = json!({"first": first, "last": last});
///     Ok(doc)
/// })
/// .with_backward(|mut doc: Value| {
///     let name = format!("{} {}", doc["name"]["first"].as_str().unwrap_or(""),
///                        doc["name"]["last"].as_str().unwrap_or(""));
///     doc["name"] = json!(name.trim());
///     Ok(doc)
/// });
/// assert_eq!(split.apply(json!({"name": "Ada Lovelace"}))?,
///            json!({"name": {"first": "Ada", "last": "Lovelace"}}));
/// # Ok::<(), String>(())
/// ```
///
/// [`SchemaRegistry::register_with_migration`]: crate::SchemaRegistry::register_with_migration
/// [`SchemaRegistry::install_migration_fn`]: crate::SchemaRegistry::install_migration_fn
#[derive(Clone)]
pub struct MigrationFn {
    pub(crate) name: String,
    pub(crate) from: Version,
    pub(crate) forward: Arc<MigrateDocument>,
    pub(crate) backward: Option<Arc<MigrateDocument>>,
}

impl MigrationFn {
    /// A migration named `name` (recorded with the version) from the registered version `from`.
    pub fn new(
        name: impl Into<String>,
        from: Version,
        forward: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        MigrationFn {
            name: name.into(),
            from,
            forward: Arc::new(forward),
            backward: None,
        }
    }

    /// The function that takes a migrated document back to `from`; with it the migration is
    /// recorded as lossless, and entities can be read back as versions of the old major line.
    #[must_use]
    pub fn with_backward(
        mut self,
        backward: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.backward = Some(Arc::new(backward));
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version documents come from.
    pub fn from_version(&self) -> Version {
        self.from
    }

    /// Runs the forward function.
    ///
    /// # Errors
    ///
    /// What the function says.
    pub fn apply(&self, document: Value) -> Result<Value, String> {
        (self.forward)(document)
    }

    /// Lossless with a backward function, else lossy.
    pub fn reversibility(&self) -> Reversibility {
        if self.backward.is_some() {
            Reversibility::Lossless
        } else {
            Reversibility::Lossy
        }
    }
}

impl fmt::Debug for MigrationFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationFn")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("backward", &self.backward.is_some())
            .finish_non_exhaustive()
    }
}

/// The migration a new major version is registered with: declarative operations, stored with
/// the version and usable by every process, or a Rust function.
#[derive(Debug, Clone)]
pub enum SchemaMigration {
    /// Declarative operations (`rename`, `add`, `remove`, `set`, `cast`, `map`).
    Operations(Migration),
    /// A Rust function, installed in this process.
    Function(MigrationFn),
}

impl SchemaMigration {
    /// The version documents come from.
    pub fn from_version(&self) -> Version {
        match self {
            SchemaMigration::Operations(migration) => migration.from,
            SchemaMigration::Function(function) => function.from,
        }
    }

    pub(crate) fn reversibility(&self) -> Reversibility {
        match self {
            SchemaMigration::Operations(migration) => migration.reversibility(),
            SchemaMigration::Function(function) => function.reversibility(),
        }
    }
}

impl From<Migration> for SchemaMigration {
    fn from(migration: Migration) -> Self {
        SchemaMigration::Operations(migration)
    }
}

impl From<MigrationFn> for SchemaMigration {
    fn from(function: MigrationFn) -> Self {
        SchemaMigration::Function(function)
    }
}
