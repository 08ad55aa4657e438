//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;
use vellum::{CompatibilityMode, SchemaId, ServiceName, Version};

/// vellum: a document store with strict schema governance on PostgreSQL.
///
/// Every document belongs to an entity type whose shape is a versioned JSON Schema. Every write
/// is validated and appends a new immutable version, so any earlier state can be read back.
///
/// Without --database-url, vellum uses an embedded PostgreSQL cluster in the data directory
/// (created on first use with the system's initdb; reused while it runs; stopped when the
/// command that started it exits, unless started with `vellum db start`).
///
/// Data goes to stdout as JSON; errors go to stderr. Exit codes: 0 success, 1 other error,
/// 2 bad usage, 3 not found, 4 conflict (stale version, already exists, not allowed, not
/// convertible to the schema version asked for), 5 invalid input (document, schema, name,
/// version, migration).
#[derive(Debug, Parser)]
#[command(name = "vellum", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// PostgreSQL to use instead of the embedded cluster (postgres://user@host:port/db).
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub(crate) database_url: Option<String>,

    /// Data directory: the embedded cluster (when no database URL is given) and the server's
    /// admin-token file.
    #[arg(
        long,
        global = true,
        env = "VELLUM_DATA_DIR",
        default_value = ".vellum"
    )]
    pub(crate) data_dir: PathBuf,

    /// Log format on stderr (filter with VELLUM_LOG, e.g. VELLUM_LOG=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Threads running requests, queries and the relay (default: one per CPU). Where PostgreSQL
    /// shares a small machine, one can be faster for light requests and slower for large pages:
    /// see docs/operations.md.
    #[arg(
        long,
        global = true,
        env = "VELLUM_WORKERS",
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub(crate) workers: Option<u16>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP API server (see docs/http-api.md) until SIGINT or SIGTERM.
    ///
    /// The admin token is VELLUM_ADMIN_TOKEN, or the one in <data dir>/admin-token, generated
    /// (mode 0600) on first start. Service tokens come from POST /v1/{service}/tokens.
    Serve(ServeArgs),
    /// Publish every service's outbox to NATS JetStream until SIGINT or SIGTERM (see
    /// docs/events.md).
    ///
    /// One relay per service leads at a time (an advisory lock), so several may run; the others
    /// stand by. Services provisioned later are picked up. Logs each service's lag periodically.
    Relay(RelayArgs),
    /// Manage the embedded PostgreSQL cluster.
    #[command(subcommand)]
    Db(DbCommand),
    /// Provision and list services (each owns a PostgreSQL schema and role).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Register, inspect, activate and soft-delete schema versions.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Create, read, update, delete entities and read their history.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Bring stored entities to a new major schema version (see docs/schema-evolution.md).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Measure vellum against hand-written SQL on the same PostgreSQL (see docs/BENCHMARKS.md).
    ///
    /// Runs in a fresh database it creates and drops. Prints a table (or JSON with --json) of
    /// operations per second through vellum and through the raw-SQL baseline, their ratio,
    /// vellum's latencies, and where the targets of issue 7 stand; progress goes to stderr.
    Bench(BenchArgs),
}

/// Options of `vellum bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Shorter rounds: the whole suite in under a minute.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print JSON instead of the table: {"workloads": [...], "peak_rss_mib": ...}, then "soak",
    /// "validation" and "history_growth" when measured, and "targets" (see docs/BENCHMARKS.md).
    #[arg(long)]
    pub(crate) json: bool,
    /// Run only this workload (repeatable): create, update, get_latest, get_version, get_as_of,
    /// get_many, query, query_next, bulk_import, http_get, http_create, as_of_depth_10,
    /// as_of_depth_1000, as_of_depth_10000, latest_depth_10, latest_depth_1000,
    /// latest_depth_10000.
    #[arg(long = "workload", value_name = "NAME")]
    pub(crate) workloads: Vec<vellum_bench::Workload>,
    /// Concurrent clients per side, comma-separated; each workload runs at each count.
    #[arg(long, value_delimiter = ',', default_value = "1,8",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub(crate) clients: Vec<u16>,
    /// Measured runs of each side per cell (default 9, 4 with --quick). The sides alternate
    /// round by round, so more rounds share the machine's passing states (disk latency,
    /// checkpoints) out between them more evenly: a steadier ratio for a longer run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1_000))]
    pub(crate) rounds: Option<u16>,
    /// Length of one round of one side, in milliseconds (default 500, 120 with --quick).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub(crate) round_ms: Option<u64>,
    /// Memory soak: drive the in-process HTTP server for SECONDS (300 for the target) with a
    /// mixed load from the largest --clients count, sampling the process's RSS, and judge
    /// whether it stays flat. Without --workload only the soak runs; with --workload the
    /// soak runs first, then those workloads.
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) soak: Option<u64>,
}

/// Options of `vellum relay`.
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// The NATS server to publish to (nats://host:port).
    #[arg(long, env = "VELLUM_NATS_URL")]
    pub(crate) nats_url: String,
    /// Relay only these services (repeatable); all of them, new ones included, by default.
    #[arg(long = "service", value_name = "NAME")]
    pub(crate) services: Vec<ServiceName>,
    /// Seconds between two status lines (lag, published, duplicates) per service.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) status_interval: u64,
}

/// Options of `vellum serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VELLUM_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub(crate) max_body_bytes: usize,
    /// Deepest JSON nesting accepted in a body (at most 128).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub(crate) max_json_depth: u16,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) request_timeout: u64,
    /// Milliseconds a database statement may take (PostgreSQL statement_timeout).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) statement_timeout: u64,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) pool_size: u64,
    /// NATS server the outbox relay publishes to; without it the relay does not run (the HTTP
    /// feed, the event stream and in-process subscribers read the outbox without it).
    #[arg(long, env = "VELLUM_NATS_URL")]
    pub(crate) nats_url: Option<String>,
    /// Do not run the outbox relay in this process (run `vellum relay` elsewhere).
    #[arg(long)]
    pub(crate) no_relay: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create the cluster if needed and start it; it keeps running until `vellum db stop`.
    Start,
    /// Stop the cluster (fast shutdown: open transactions roll back, then a clean checkpoint).
    Stop,
    /// Show whether the cluster exists and runs.
    Status,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// Provision a service: its schema, role and fixed tables.
    Create {
        /// Service name: [a-z][a-z0-9_]{0,47}.
        name: ServiceName,
    },
    /// List the provisioned services.
    List,
    /// Show a service's event settings; with --change-events, change them first.
    Events {
        /// The service.
        name: ServiceName,
        /// Write entity.created / updated / undeleted / deleted events for every entity write.
        #[arg(long, value_name = "true|false")]
        change_events: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Register a new schema version (JSON Schema draft 2020-12).
    ///
    /// The first version of a schema id becomes active and creates the entity table; later
    /// versions become active only with --activate. A new version must be greater than every
    /// version already registered in its major line, and is refused (exit code 4, with the
    /// changes) when its declared bump is smaller than the change from its predecessor or its
    /// compatibility mode refuses it.
    ///
    /// A version that starts a new major line needs --migration: a JSON file
    /// {"from": "<version of the previous major>", "operations": [...]} with the operations
    /// rename, add, remove, set, cast and map on JSON Pointers (docs/schema-evolution.md). It
    /// is tried on current documents first; if a migrated document fails the new definition,
    /// nothing is registered (exit code 5, with samples).
    #[command(after_help = "Example migration file:\n  \
        {\"from\": \"1.1.0\", \"operations\": [\n    \
        {\"op\": \"rename\", \"from\": \"/customer\", \"to\": \"/buyer\"},\n    \
        {\"op\": \"add\", \"path\": \"/currency\", \"value\": \"EUR\"},\n    \
        {\"op\": \"map\", \"path\": \"/status\", \"values\": {\"open\": \"OPEN\", \"done\": \"CLOSED\"}}]}")]
    Register {
        /// The service.
        service: ServiceName,
        /// The entity type: [a-z][a-z0-9_]{0,47}.
        schema_id: SchemaId,
        /// MAJOR.MINOR.PATCH.
        version: Version,
        /// The definition, a JSON file; - reads standard input.
        #[arg(long, short)]
        file: PathBuf,
        /// The migration from the previous major line, a JSON file (a new major version only).
        #[arg(long)]
        migration: Option<PathBuf>,
        /// Make this version the one writes use.
        #[arg(long)]
        activate: bool,
    },
    /// List the migrations of a schema id: from which version to which, their operations and
    /// how far they can be reversed.
    Migrations {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
    },
    /// List the entity types of a service with their active version.
    List {
        /// The service.
        service: ServiceName,
    },
    /// List every version of a schema, soft-deleted ones included.
    Versions {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
    },
    /// Show a schema version with its definition (the active one if no version is given).
    Show {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
        /// MAJOR.MINOR.PATCH; the active version if omitted.
        version: Option<Version>,
        /// Also show a soft-deleted version.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Check a candidate version without registering it: its classification against the
    /// predecessor (every change, its class, the declared bump), whether the compatibility
    /// mode accepts it, and how many current documents it would refuse, with samples.
    Check {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
        /// MAJOR.MINOR.PATCH it would be registered as.
        version: Version,
        /// The definition, a JSON file; - reads standard input.
        #[arg(long, short)]
        file: PathBuf,
        /// The migration it would be registered with, a JSON file (a new major version only);
        /// the documents it applies to are migrated before they are validated.
        #[arg(long)]
        migration: Option<PathBuf>,
    },
    /// Compare the schema files of a project (DIR/<schema_id>/<version>.json) with the
    /// registry: the versions to register, with their change class, and drift (a registered
    /// version whose file differs, a file for a deleted version). Changes nothing; exits 4 when
    /// the plan could not be applied.
    Plan(SchemaFilesArgs),
    /// Register what `vellum schema plan` shows, all or nothing, in one transaction. Refused
    /// (exit 4, nothing registered) when the plan has drift or a version would be refused.
    Apply(SchemaFilesArgs),
    /// Show the compatibility mode of a schema id, or set it when MODE is given.
    ///
    /// Modes: BACKWARD (default), FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE,
    /// FULL_TRANSITIVE, NONE (see docs/schema-evolution.md).
    Compatibility {
        /// The service.
        service: ServiceName,
        /// The entity type (it may have no version yet).
        schema_id: SchemaId,
        /// The mode to set; any case, `-` or `_`.
        mode: Option<CompatibilityMode>,
    },
    /// Make a version the one writes use.
    Activate(SchemaVersionArgs),
    /// Soft-delete a version: it stays readable but can no longer be written with.
    Delete(SchemaVersionArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SchemaVersionArgs {
    /// The service.
    pub(crate) service: ServiceName,
    /// The entity type.
    pub(crate) schema_id: SchemaId,
    /// MAJOR.MINOR.PATCH.
    pub(crate) version: Version,
}

#[derive(Debug, Args)]
pub(crate) struct EntityRef {
    /// The service.
    pub(crate) service: ServiceName,
    /// The entity type.
    pub(crate) schema_id: SchemaId,
    /// The entity id (a UUID).
    pub(crate) id: Uuid,
}

#[derive(Debug, Args)]
pub(crate) struct Actor {
    /// Who makes the change, recorded in the audit trail.
    #[arg(long, env = "VELLUM_ACTOR", default_value = "vellum-cli")]
    pub(crate) actor: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EntityCommand {
    /// Create an entity from a JSON document; prints the stored version.
    Create {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
        /// The document, a JSON file; - reads standard input.
        #[arg(long, short)]
        file: PathBuf,
        /// Use this entity id instead of a new UUIDv7.
        #[arg(long)]
        id: Option<Uuid>,
        /// Validate against this schema version (same major as the active one).
        #[arg(long)]
        schema_version: Option<Version>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Read an entity: the current version, a given version, or as of a time; with
    /// --schema-version, presented as that registered version of its schema.
    Get {
        #[command(flatten)]
        entity: EntityRef,
        /// Read this entity version (MAJOR.MINOR.PATCH), deleted or superseded ones included.
        #[arg(long, conflicts_with = "as_of")]
        version: Option<Version>,
        /// Read the entity as it was at this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Present it as this schema version: the payload is migrated forward or back through
        /// the registered migrations and validated; exit code 4 when it cannot be (a lossy
        /// migration on the way back, or a result the version refuses).
        #[arg(long)]
        schema_version: Option<Version>,
    },
    /// Write a new version of an entity with a whole new document.
    Update {
        #[command(flatten)]
        entity: EntityRef,
        /// The document, a JSON file; - reads standard input.
        #[arg(long, short)]
        file: PathBuf,
        /// Fail with a conflict unless this is the current entity version.
        #[arg(long)]
        expect: Option<Version>,
        /// Validate against this schema version (same major as the active one).
        #[arg(long)]
        schema_version: Option<Version>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Soft-delete an entity; every version stays in its history.
    Delete {
        #[command(flatten)]
        entity: EntityRef,
        /// Fail with a conflict unless this is the current entity version.
        #[arg(long)]
        expect: Option<Version>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Bring back a soft-deleted entity as a new version.
    Undelete {
        #[command(flatten)]
        entity: EntityRef,
        #[command(flatten)]
        actor: Actor,
    },
    /// List every version of an entity with who wrote (and deleted) it.
    History {
        #[command(flatten)]
        entity: EntityRef,
    },
    /// Import documents as new entities, all or nothing, in one unit of work: one JSON document
    /// per line (NDJSON), each validated against the active schema version; the first invalid
    /// one stops the import and nothing is stored. Shows progress on a terminal.
    Import {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
        /// The documents, one per line; - reads standard input.
        #[arg(long, short)]
        file: PathBuf,
        #[command(flatten)]
        actor: Actor,
    },
    /// Query the entities of a type; prints one page `{"items": [...], "next_cursor": ...}`,
    /// or with --all every matching entity, one JSON document per line.
    ///
    /// The filter grammar (docs/query.md): {"and": [..]}, {"or": [..]}, {"not": ..},
    /// {"path": "/total", "op": "gt", "value": 100} with op one of eq ne lt lte gt gte in
    /// contains starts_with exists.
    #[command(after_help = "Examples:\n  \
        vellum entity query orders sales_order --filter '{\"path\": \"/status\", \"op\": \"eq\", \"value\": \"open\"}'\n  \
        vellum entity query orders sales_order --order '[{\"path\": \"/total\", \"direction\": \"desc\"}]' --limit 10\n  \
        vellum entity query orders sales_order --as-of 2026-11-22T10:00:00Z --all")]
    Query(QueryArgs),
}

/// The arguments of `vellum schema plan` and `vellum schema apply`.
#[derive(Debug, Args)]
pub(crate) struct SchemaFilesArgs {
    /// The service.
    pub(crate) service: ServiceName,
    /// The directory of schema files: one directory per schema id holding <version>.json files.
    #[arg(long, default_value = "schemas")]
    pub(crate) dir: PathBuf,
    /// Register new versions without activating any (by default the greatest new version of a
    /// schema id becomes active when it is greater than every registered one).
    #[arg(long)]
    pub(crate) no_activate: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Migrate every active entity of a type stored under another major line to VERSION, in
    /// chunks, online (writers keep working), resumable (run it again after a kill); each
    /// migrated entity gets a new version, one unit of work per chunk, attributed to the
    /// migration. Entities that cannot be migrated are reported and left untouched (exit 5).
    /// VERSION must be in the active major line: activate it first.
    Run {
        /// The service.
        service: ServiceName,
        /// The entity type.
        schema_id: SchemaId,
        /// The target schema version.
        #[arg(long)]
        to: Version,
        /// Entities per unit of work.
        #[arg(long, default_value_t = 500)]
        chunk_size: usize,
        /// Migrate and validate in memory and report, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who the migration's units of work are recorded under.
        #[arg(long, env = "VELLUM_ACTOR", default_value = "vellum-migrate")]
        actor: String,
    },
}

/// The arguments of `vellum entity query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The service.
    pub(crate) service: ServiceName,
    /// The entity type.
    pub(crate) schema_id: SchemaId,
    /// The filter, as JSON.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// The sort keys, as a JSON array.
    #[arg(long)]
    pub(crate) order: Option<String>,
    /// Page size (1 to 1000; default 50).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// Continue after this cursor (the next_cursor of a previous page).
    #[arg(long, conflicts_with = "all")]
    pub(crate) cursor: Option<String>,
    /// Query the type as it was at this time (RFC 3339).
    #[arg(long)]
    pub(crate) as_of: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Only these entity ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) ids: Vec<Uuid>,
    /// Include soft-deleted entities.
    #[arg(long)]
    pub(crate) include_deleted: bool,
    /// Follow the cursors and print every matching entity, one JSON document per line.
    #[arg(long)]
    pub(crate) all: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_limits_are_checked_when_parsed() {
        for args in [
            &["vellum", "serve", "--listen", "nowhere"][..],
            &["vellum", "serve", "--max-json-depth", "1000"],
            &["vellum", "serve", "--request-timeout", "0"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
        let cli = Cli::try_parse_from(["vellum", "serve"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("parsed as serve")
        };
        assert_eq!(serve.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn malformed_names_versions_and_ids_are_refused_before_anything_runs() {
        for args in [
            &["vellum", "service", "create", "Bad-Name"][..],
            &["vellum", "schema", "show", "orders", "sales_order", "1.0"],
            &[
                "vellum",
                "entity",
                "get",
                "orders",
                "sales_order",
                "not-a-uuid",
            ],
            &[
                "vellum",
                "entity",
                "get",
                "orders",
                "sales_order",
                "01a203ed-bed2-7110-bc6d-049f3482d41d",
                "--as-of",
                "yesterday",
            ],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
    }
}
