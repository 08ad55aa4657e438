//! The one place where identifiers become SQL text.
//!
//! Every identifier vellum puts into SQL comes from a validated name ([`ServiceName`],
//! [`SchemaId`]) and is quoted here; every value is a bound parameter. Nothing else in the crate
//! formats SQL from input.

use std::time::Duration;

use sha2::{Digest, Sha256};
use vellum_core::{SchemaId, ServiceName, schema::PathIndex};

/// vellum's own DDL, applied in order by [`crate::migrate`].
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "system schema", include_str!("sql/0001_system.sql")),
    (2, "api tokens", include_str!("sql/0002_api_tokens.sql")),
    (
        3,
        "schema compatibility modes",
        include_str!("sql/0003_schema_compatibility.sql"),
    ),
    (4, "queries", include_str!("sql/0004_queries.sql")),
    (5, "outbox", include_str!("sql/0005_outbox.sql")),
    (
        6,
        "schema migrations",
        include_str!("sql/0006_schema_migrations.sql"),
    ),
    (
        7,
        "commit checks",
        include_str!("sql/0007_commit_checks.sql"),
    ),
    (
        8,
        "registry generation",
        include_str!("sql/0008_registry_generation.sql"),
    ),
];

const SERVICE_DDL: &str = include_str!("sql/service.sql");
const ENTITY_TABLE_DDL: &str = include_str!("sql/entity_table.sql");

/// The version of a service's DDL recorded in `vellum.services.ddl_version`: a new service gets
/// every step at once, an existing one the steps above its version ([`ServiceIdents::upgrade_ddl`]).
pub(crate) const SERVICE_DDL_VERSION: i32 = 6;

/// The steps of the service DDL after version 1 ([`SERVICE_DDL`]), each with the version it
/// brings the service to.
const SERVICE_DDL_STEPS: &[(i32, DdlStep)] = &[
    // The outbox and the event settings.
    (2, DdlStep::Service(include_str!("sql/service_outbox.sql"))),
    // The as-of reader of each entity table.
    (
        3,
        DdlStep::EachEntityTable(include_str!("sql/service_as_of_readers.sql")),
    ),
    // The registry generation.
    (
        4,
        DdlStep::Service(include_str!("sql/service_registry_generation.sql")),
    ),
    // The index keyed by [`active_entity`].
    (
        5,
        DdlStep::EachEntityTable(include_str!("sql/service_active_index.sql")),
    ),
    // The commit-time index, and the constraint that lets orders by `updated_at` use it.
    (
        6,
        DdlStep::EachEntityTable(include_str!("sql/service_commit_time_index.sql")),
    ),
];

/// One step of the service DDL.
enum DdlStep {
    /// Run once for the service.
    Service(&'static str),
    /// PL/pgSQL statements run for each entity table the service has, named by the `regclass`
    /// variable `entity_table`. What such a step adds, `entity_table.sql` gives the tables
    /// created later, so the statements check for it first.
    EachEntityTable(&'static str),
}

/// The loop of a [`DdlStep::EachEntityTable`] step: over the tables of the types the service
/// has registered.
const EACH_ENTITY_TABLE: &str = "DO $upgrade$
DECLARE
    entity_table regclass;
BEGIN
    FOR entity_table IN
        SELECT to_regclass(format('%s.%I', '{schema}', s.schema_id))
        FROM (SELECT DISTINCT schema_id FROM {schema}.schemas) s
    LOOP
        CONTINUE WHEN entity_table IS NULL;
{statements}
    END LOOP;
END
$upgrade$;
";

/// The entity id of an active version and `NULL` on every other, for the entity table aliased
/// `alias`: the key of the entity table's index for reads of an active version by id
/// (`entity_table.sql`). The index is partial, so the condition names `is_active` too:
/// `e.is_active AND {active_entity} = $1`.
///
/// A read of an entity's active version names its id through this expression, never as
/// `entity_id = $1 AND is_active`: that condition can also be served by the primary key or the
/// as-of index, which hold every version, and PostgreSQL, estimating one row per entity id,
/// chooses among them and the partial index on `entity_id` as if they were equal. Where most
/// versions are active its choice can fall on one of the first two, and a read of an entity
/// with 10,000 versions walks all 10,000. Only one index has this expression as its key.
pub(crate) fn active_entity(alias: &str) -> String {
    format!("(CASE WHEN {alias}.is_active THEN {alias}.entity_id END)")
}

/// Quotes an identifier that was validated by `vellum-core`. Validated names contain only
/// `[a-z0-9_]`, so the quoting is belt and braces; it also keeps reserved words usable.
fn quote(name: &str) -> String {
    debug_assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    );
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The PostgreSQL objects of one service, with their identifiers quoted.
#[derive(Debug, Clone)]
pub(crate) struct ServiceIdents {
    pub(crate) schema: String,
    pub(crate) role: String,
}

impl ServiceIdents {
    pub(crate) fn new(service: &ServiceName) -> Self {
        Self {
            schema: quote(service.as_str()),
            role: quote(&role_name(service)),
        }
    }

    /// `"service"."table"`, for one of the service's fixed tables.
    pub(crate) fn fixed(&self, table: &str) -> String {
        format!("{}.{}", self.schema, quote(table))
    }

    /// `'"service"."table"'::regclass`: one of the service's fixed tables as a value, for a
    /// function that takes the table. Quoted names hold no `'`.
    pub(crate) fn fixed_regclass(&self, table: &str) -> String {
        format!("'{}'::regclass", self.fixed(table))
    }

    /// `"service"."schema_id"`: the table of an entity type.
    pub(crate) fn entity_table(&self, schema_id: &SchemaId) -> String {
        format!("{}.{}", self.schema, quote(schema_id.as_str()))
    }

    /// `"service"."schema_id_as_of"`: the as-of reader of an entity type's table (see
    /// `vellum.create_as_of_reader`).
    pub(crate) fn as_of_reader(&self, schema_id: &SchemaId) -> String {
        format!("{}.{}", self.schema, quote(&format!("{schema_id}_as_of")))
    }

    /// The whole DDL of a new service, at [`SERVICE_DDL_VERSION`].
    pub(crate) fn service_ddl(&self) -> String {
        let mut ddl = self.template(SERVICE_DDL);
        ddl.push_str(&self.upgrade_ddl(1));
        ddl
    }

    /// The DDL that brings a service from `from` to [`SERVICE_DDL_VERSION`] (empty when it is
    /// there already).
    pub(crate) fn upgrade_ddl(&self, from: i32) -> String {
        SERVICE_DDL_STEPS
            .iter()
            .filter(|(version, _)| *version > from)
            .map(|(_, step)| match step {
                DdlStep::Service(ddl) => self.template(ddl),
                DdlStep::EachEntityTable(statements) => {
                    self.template(&EACH_ENTITY_TABLE.replace("{statements}", statements))
                }
            })
            .collect()
    }

    fn template(&self, ddl: &str) -> String {
        ddl.replace("{schema}", &self.schema)
            .replace("{role}", &self.role)
    }

    pub(crate) fn entity_table_ddl(&self, schema_id: &SchemaId) -> String {
        ENTITY_TABLE_DDL
            .replace("{table}", &self.entity_table(schema_id))
            .replace("{schema}", &self.schema)
            .replace("{role}", &self.role)
    }

    /// `SET LOCAL ROLE` for requests of this service: a bug in vellum cannot reach another
    /// service's tables, and the service role cannot rewrite history.
    pub(crate) fn set_role(&self) -> String {
        format!("SET LOCAL ROLE {}", self.role)
    }

    /// `SET ROLE` for the whole session: how a service's plain reads run outside a transaction
    /// (see `pool::Conn::read_under`).
    pub(crate) fn set_session_role(&self) -> String {
        format!("SET ROLE {}", self.role)
    }
}

/// The PostgreSQL role of a service. Roles are cluster-wide: services of the same name in two
/// databases of one cluster share the role, which holds no privileges outside those schemas.
pub(crate) fn role_name(service: &ServiceName) -> String {
    format!("vellum_svc_{}", service.as_str())
}

/// `CREATE ROLE` for a service role, quoted here like every identifier.
pub(crate) fn create_role(service: &ServiceName) -> String {
    format!("CREATE ROLE {} NOLOGIN", quote(&role_name(service)))
}

/// `GRANT role TO CURRENT_USER`, so a non-superuser owner can `SET ROLE` to it.
pub(crate) fn grant_role_to_owner(service: &ServiceName) -> String {
    format!("GRANT {} TO CURRENT_USER", quote(&role_name(service)))
}

/// `SET LOCAL statement_timeout` for one transaction, in whole milliseconds formatted here from
/// a [`Duration`], never from text. Rounded up, and at least 1 ms: PostgreSQL reads 0 as "no
/// timeout", the opposite of what a tiny timeout asks for.
pub(crate) fn set_statement_timeout(timeout: Duration) -> String {
    format!("SET LOCAL {}", statement_timeout(timeout))
}

/// `SET statement_timeout` for the whole session, as [`set_statement_timeout`] rounds it.
pub(crate) fn set_session_statement_timeout(timeout: Duration) -> String {
    format!("SET {}", statement_timeout(timeout))
}

fn statement_timeout(timeout: Duration) -> String {
    let millis = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .clamp(1, i32::MAX as u128);
    format!("statement_timeout = '{millis}ms'")
}

/// Names of the indexes vellum manages for `x-vellum-index` and `x-vellum-ref` start with this;
/// no other index of an entity table does.
pub(crate) const PATH_INDEX_PREFIX: &str = "vx_";

/// The name of the index for `index` on the table of `schema_id`: a digest of everything that
/// defines it, so a changed definition gets a new index and an unchanged one keeps its own.
pub(crate) fn path_index_name(schema_id: &SchemaId, index: &PathIndex) -> String {
    let mut digest = Sha256::new();
    for part in [schema_id.as_str(), &index.pointer] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    digest.update([u8::from(index.unique), u8::from(index.date_time)]);
    // A non-unique index ends with `entity_id` (see [`PATH_INDEX_DDL`]): one an earlier vellum
    // built on the path alone has another name, so the next activation replaces it.
    if !index.unique {
        digest.update(b"entity_id");
    }
    let hex: String = digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{PATH_INDEX_PREFIX}{hex}")
}

/// Builds the `CREATE INDEX` statement of a path index, and the `CREATE STATISTICS` on the same
/// expression, on the server with PostgreSQL's own `format()` quoting: the path (user input) is
/// bound as a `text[]` and rendered with `%L`, the names with `%I`. Parameters: `$1` unique, `$2`
/// concurrently, `$3` index name, `$4` service schema, `$5` table, `$6` date-time, `$7` path
/// segments, `$8` statistics name.
///
/// The expressions are the ones the query compiler produces once PostgreSQL has folded its path
/// parameter into a constant (queries run with `plan_cache_mode = force_custom_plan`), and the
/// predicate is the one every live query carries, so the planner can use the index. A
/// non-unique index has `entity_id`, every query's last order key, as its second column: a page
/// ordered by the path, or filtered on one value of it and ordered by id (the default), is read
/// in index order and stops at the page's end, however many documents share the value (on the
/// expression alone, PostgreSQL reads and sorts every document sharing it, for each page). The
/// planner ignores the statistics of partial indexes, hence the separate expression statistics
/// (PostgreSQL 14+), without which it guesses how selective a range on the path is; they also
/// cover the path's `jsonb_typeof`, which range conditions check, so the planner does not take
/// that check for a selective one and sort a large range instead of reading it in index order.
pub(crate) const PATH_INDEX_DDL: &str = "WITH path AS (
    SELECT CASE WHEN $6 THEN format('vellum.to_timestamptz(payload #>> %L::text[])', $7::text[])
                ELSE format('(payload #> %L::text[])', $7::text[]) END AS expression)
SELECT format(
    'CREATE %s INDEX %s IF NOT EXISTS %I ON %I.%I (%s%s) WHERE is_active AND deleted_at IS NULL',
    CASE WHEN $1 THEN 'UNIQUE' ELSE '' END,
    CASE WHEN $2 THEN 'CONCURRENTLY' ELSE '' END,
    $3::text, $4::text, $5::text, expression,
    CASE WHEN $1 THEN '' ELSE ', entity_id' END),
    -- Expression statistics exist from PostgreSQL 14 on; NULL before.
    CASE WHEN current_setting('server_version_num')::int >= 140000 THEN
    format('CREATE STATISTICS IF NOT EXISTS %I.%I ON (%s), (jsonb_typeof(payload #> %L::text[])) FROM %I.%I',
           $4::text, $8::text, expression, $7::text[], $4::text, $5::text) END
FROM path";

/// The name of the expression statistics that go with the path index `index`.
pub(crate) fn path_statistics_name(index: &str) -> String {
    format!("{index}_stats")
}

/// The path indexes of an entity table with their validity (a failed concurrent build leaves an
/// invalid one behind). `$1` service schema, `$2` table.
pub(crate) const PATH_INDEXES: &str = "SELECT c.relname::text, i.indisvalid
     FROM pg_index i
     JOIN pg_class c ON c.oid = i.indexrelid
     JOIN pg_class t ON t.oid = i.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1 AND t.relname = $2 AND starts_with(c.relname, 'vx_')";

/// `DROP INDEX CONCURRENTLY` of a path index found by [`PATH_INDEXES`], then of its statistics:
/// two statements, to be run one by one (a concurrent drop refuses a multi-statement batch).
pub(crate) fn drop_path_index(service: &ServiceName, index: &str) -> [String; 2] {
    let schema = quote(service.as_str());
    [
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {schema}.{}",
            quote(index)
        ),
        format!(
            "DROP STATISTICS IF EXISTS {schema}.{}",
            quote(&path_statistics_name(index))
        ),
    ]
}

/// SQLSTATEs vellum gives meaning to.
pub(crate) mod state {
    /// `query_canceled`: the statement timeout (or a cancel request) stopped the statement.
    pub(crate) const QUERY_CANCELED: &str = "57014";
    /// Raised by vellum's guards: a change to immutable history.
    pub(crate) const IMMUTABLE: &str = "VL001";
    /// Raised by `vellum.expect_changed`: a write found nothing to change.
    pub(crate) const CONFLICT: &str = "VL002";
    /// Raised by `vellum.expect_reference`: an `x-vellum-ref` names no live entity.
    pub(crate) const INVALID_REFERENCE: &str = "VL003";
    /// Raised by `vellum.expect_writable_schema`: a write was validated against a schema
    /// version that is deleted, or outside the active major line, by the time it commits.
    pub(crate) const SCHEMA_CHANGED: &str = "VL004";
    /// Raised by `vellum.expect_change_events`: a unit of work left out its entity change
    /// events, and the service's setting is on.
    pub(crate) const CHANGE_EVENTS_ON: &str = "VL005";
}

/// The SQLSTATE and constraint name of a database error, if it came from the server.
pub(crate) fn db_error(err: &tokio_postgres::Error) -> Option<(&str, Option<&str>)> {
    err.as_db_error().map(|e| (e.code().code(), e.constraint()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_table_is_quoted_and_schema_qualified() {
        let ids = ServiceIdents::new(&ServiceName::new("orders").unwrap());
        let table = ids.entity_table(&SchemaId::new("sales_order").unwrap());
        assert_eq!(table, "\"orders\".\"sales_order\"");
        assert_eq!(ids.set_role(), "SET LOCAL ROLE \"vellum_svc_orders\"");
        assert_eq!(ids.set_session_role(), "SET ROLE \"vellum_svc_orders\"");
    }

    #[test]
    fn statement_timeout_is_whole_milliseconds_rounded_up_and_never_zero() {
        let set = |d| set_statement_timeout(d);
        assert_eq!(
            set(Duration::from_millis(50)),
            "SET LOCAL statement_timeout = '50ms'"
        );
        assert_eq!(
            set(Duration::from_micros(1500)),
            "SET LOCAL statement_timeout = '2ms'"
        );
        assert_eq!(set(Duration::ZERO), "SET LOCAL statement_timeout = '1ms'");
        assert_eq!(
            set_session_statement_timeout(Duration::from_micros(1500)),
            "SET statement_timeout = '2ms'"
        );
        assert_eq!(
            set(Duration::from_secs(u64::MAX)),
            format!("SET LOCAL statement_timeout = '{}ms'", i32::MAX)
        );
    }

    #[test]
    fn templates_leave_no_placeholder_behind() {
        let ids = ServiceIdents::new(&ServiceName::new("billing").unwrap());
        let ddl = ids.service_ddl() + &ids.entity_table_ddl(&SchemaId::new("invoice").unwrap());
        for placeholder in ["{schema}", "{role}", "{table}"] {
            assert!(!ddl.contains(placeholder), "{placeholder} left in DDL");
        }
        assert!(ddl.contains("\"billing\".\"invoice\""));
    }

    #[test]
    fn a_new_service_gets_every_ddl_step_and_an_upgrade_only_the_missing_ones() {
        let ids = ServiceIdents::new(&ServiceName::new("billing").unwrap());
        assert!(
            ids.service_ddl()
                .contains("CREATE TABLE \"billing\".outbox")
        );
        assert!(
            ids.upgrade_ddl(1)
                .contains("CREATE TABLE \"billing\".outbox")
        );
        assert_eq!(ids.upgrade_ddl(SERVICE_DDL_VERSION), "");
    }
}
