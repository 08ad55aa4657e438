//! The one error type of the library.

use uuid::Uuid;
use vellum_core::compat::{Change, ChangeClass, CompatibilityMode};
use vellum_core::{Bump, Violation, version::Version};

use crate::FailingDocument;

/// `Result` with vellum's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in vellum, named by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name, version, id or other argument is malformed; nothing was done.
    #[error(transparent)]
    InvalidInput(#[from] vellum_core::Error),

    /// A schema definition was refused (not valid JSON Schema 2020-12, remote `$ref`, too large).
    #[error("invalid schema definition: {0}")]
    InvalidSchema(String),

    /// A document does not satisfy its schema; every violation is listed with its JSON pointer.
    #[error("document does not match schema {schema_id} {schema_version}: {}", display_violations(.violations))]
    Validation {
        /// The entity type the document was written to.
        schema_id: String,
        /// The schema version it was validated against.
        schema_version: Version,
        /// Every violation, in document order.
        violations: Vec<Violation>,
    },

    /// A new schema version breaks the evolution rules (SPEC §4.2): its declared bump is
    /// smaller than the change detected from its predecessor, or, within a major line, the
    /// schema id's compatibility mode refuses a change. Nothing was registered.
    #[error(
        "schema {schema_id} version {version} is incompatible with {against} \
         (compatibility mode {mode}): {reason}: {}",
        display_changes(.changes, *.declared, *.detected, *.mode)
    )]
    IncompatibleSchema {
        /// The entity type.
        schema_id: String,
        /// The version refused.
        version: Version,
        /// The registered version it was compared with.
        against: Version,
        /// The compatibility mode of the schema id.
        mode: CompatibilityMode,
        /// The bump the version numbers declare from `against`.
        declared: Bump,
        /// The class of the change detected from `against`.
        detected: ChangeClass,
        /// The rule that refused it.
        reason: String,
        /// Every change from `against`, each with its directions and class.
        changes: Vec<Change>,
    },

    /// The migration of a new schema version was refused (SPEC §4.3): a new major version
    /// without one, one from a version that is not in the previous major line, one with a
    /// version that takes none, or one that turns current documents into documents the new
    /// version refuses (`samples`). Nothing was registered.
    #[error("schema {schema_id} version {version}: migration refused: {reason}{}", display_samples(.samples))]
    InvalidMigration {
        /// The entity type.
        schema_id: String,
        /// The version refused.
        version: Version,
        /// Why, for a human.
        reason: String,
        /// How many current documents the migration was tried on.
        documents_checked: u64,
        /// How many of them failed.
        documents_failing: u64,
        /// Up to 20 failing documents, each with its violations (keyword `migration` when an
        /// operation could not be applied).
        samples: Vec<FailingDocument>,
    },

    /// A document cannot be presented as the schema version asked for: no chain of migrations
    /// leads there (a lossy migration on the way back, a major version registered without a
    /// migration, a Rust migration not installed in this process), a migration fails on it, or
    /// the result does not satisfy that version (`violations`). Nothing was changed.
    #[error("schema {schema_id}: a document of version {from} cannot be read as version {to}: {reason}{}",
            if violations.is_empty() { String::new() } else { format!(": {}", display_violations(violations)) })]
    NotConvertible {
        /// The entity type.
        schema_id: String,
        /// The schema version the document is stored under.
        from: Version,
        /// The schema version asked for.
        to: Version,
        /// Why, for a human.
        reason: String,
        /// When the migrated document does not satisfy `to`: every violation.
        violations: Vec<Violation>,
    },

    /// The thing asked for does not exist (or is soft-deleted and was not asked for).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `entity sales_order/0190…`.
        what: String,
    },

    /// The thing being created exists already.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What was being created.
        what: String,
    },

    /// An optimistic-locking conflict: the entity's active version is not the one expected, or
    /// another unit of work changed it first. The whole unit of work was rolled back.
    #[error("version conflict on {schema_id}/{entity_id}: expected {expected}, found {found}")]
    VersionConflict {
        /// The entity type.
        schema_id: String,
        /// The entity.
        entity_id: Uuid,
        /// The version the writer expected (or read), as text.
        expected: String,
        /// The version found active, or `changed concurrently` when another writer got there first.
        found: String,
    },

    /// A value of an `"x-vellum-index": "unique"` property is already held by another active
    /// entity of the type. The whole unit of work was rolled back.
    #[error(
        "unique value conflict on {schema_id}{pointer}: another active entity holds the same value"
    )]
    UniqueViolation {
        /// The entity type.
        schema_id: String,
        /// The JSON pointer of the unique property.
        pointer: String,
        /// The entity whose write was refused (not known for a bulk import).
        entity_id: Option<Uuid>,
    },

    /// A property annotated `"x-vellum-ref"` names an entity that does not exist or is deleted.
    /// The whole unit of work was rolled back.
    #[error(
        "{schema_id}/{entity_id} at {pointer} references {target}/{target_id}, which does not exist or is deleted"
    )]
    InvalidReference {
        /// The entity type written.
        schema_id: String,
        /// The entity written.
        entity_id: Uuid,
        /// The JSON pointer of the referencing property.
        pointer: String,
        /// The referenced entity type.
        target: String,
        /// The referenced entity id.
        target_id: Uuid,
    },

    /// A query is malformed, names a path the schema does not have, or compares a path with a
    /// value of the wrong type. Nothing was read.
    #[error("invalid query at {pointer:?}: {message}")]
    InvalidQuery {
        /// JSON pointer into the query (`/filter/and/0/path`, `/cursor`, ...); `""` for the whole.
        pointer: String,
        /// What is wrong, for a human.
        message: String,
    },

    /// A stored document does not decode into the Rust type it was read as (see
    /// [`typed::Entities`](crate::typed::Entities)): it was written under a schema the type does
    /// not follow.
    #[error(
        "{schema_id}/{entity_id} version {entity_version} does not decode into the requested type: {message}"
    )]
    Decode {
        /// The entity type.
        schema_id: String,
        /// The entity.
        entity_id: Uuid,
        /// The entity version read.
        entity_version: Version,
        /// What serde said.
        message: String,
    },

    /// A value could not be serialized to JSON (a map with non-string keys, say).
    #[error("the value does not serialize to a JSON document: {0}")]
    Encode(String),

    /// A bulk import stopped at a document: nothing was imported.
    #[error("document {document} of the import: {reason}")]
    ImportRefused {
        /// Its position in the import, from 1.
        document: u64,
        /// Why: a validation error, or the error reading it.
        reason: Box<Error>,
    },

    /// A rule refused the operation in the current state (schema version ordering, deleting the
    /// active schema version, undeleting an entity that is not deleted…). Nothing was changed.
    #[error("{0}")]
    NotAllowed(String),

    /// Something tried to change immutable history; the database refused it.
    #[error("history is immutable: {0}")]
    Immutable(String),

    /// Stored data is not what vellum writes (edited outside vellum?).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// The unit of work cannot be used any more: an earlier operation in it failed.
    #[error("unit of work {uow_id} failed earlier and can only be dropped: {reason}")]
    UnitOfWorkFailed {
        /// The unit of work.
        uow_id: Uuid,
        /// The first error it hit.
        reason: String,
    },

    /// An event cannot be emitted as it is (a name breaks the subject grammar, an id is too
    /// long); nothing was staged.
    #[error("invalid event: {0}")]
    InvalidEvent(String),

    /// The outbox relay could not publish (NATS unreachable, no acknowledgement); it retries,
    /// and nothing was marked published.
    #[error("outbox relay: {0}")]
    Relay(String),

    /// The embedded PostgreSQL cluster could not be created, started or stopped.
    #[error("embedded PostgreSQL: {0}")]
    Embedded(String),

    /// A connection could not be taken from the pool.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),

    /// A statement ran longer than [`StoreOptions::statement_timeout`](crate::StoreOptions)
    /// (or was cancelled by a cancel request); its transaction was rolled back and nothing it
    /// did was kept.
    #[error("the statement took longer than the configured statement timeout")]
    Timeout,

    /// PostgreSQL reported an error that has no domain meaning.
    #[error("database: {}", describe_db_error(.0))]
    Database(#[source] tokio_postgres::Error),

    /// An I/O error outside the database (files, processes).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The changes that made a version incompatible: those above the declared bump, or else those
/// in a direction the mode refuses.
fn display_changes(
    changes: &[Change],
    declared: Bump,
    detected: ChangeClass,
    mode: CompatibilityMode,
) -> String {
    let declared = ChangeClass::from(declared);
    changes
        .iter()
        .filter(|c| {
            if detected > declared {
                c.class > declared
            } else {
                (mode.backward() && !c.backward) || (mode.forward() && !c.forward)
            }
        })
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn display_samples(samples: &[FailingDocument]) -> String {
    samples
        .iter()
        .take(3)
        .map(|sample| {
            format!(
                "; entity {} {}: {}",
                sample.entity_id,
                sample.entity_version,
                display_violations(&sample.violations)
            )
        })
        .collect()
}

fn display_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            format!(
                "{} {}",
                if v.pointer.is_empty() {
                    "/"
                } else {
                    &v.pointer
                },
                v.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The server's message (and detail) when there is one: `tokio_postgres::Error`'s own
/// Display says only "db error".
fn describe_db_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

/// Every database error passes through here, so a statement stopped by the statement timeout
/// is [`Error::Timeout`] wherever it happens.
impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        match crate::sql::db_error(&err) {
            Some((crate::sql::state::QUERY_CANCELED, _)) => Error::Timeout,
            _ => Error::Database(err),
        }
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
