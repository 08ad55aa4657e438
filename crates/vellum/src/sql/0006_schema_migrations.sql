-- Data migrations between schema versions (SPEC §4.3): the migration a new major version was
-- registered with, from a version of the previous major line. Kept in the system schema, keyed
-- by service, like the compatibility modes, so no service's DDL changes. Append-only: a
-- migration is as immutable as the schema version it belongs to.
CREATE TABLE vellum.schema_migrations (
    service       text NOT NULL REFERENCES vellum.services (name),
    schema_id     text NOT NULL,
    -- The version registered with the migration: the first of its major line.
    to_version    text NOT NULL,
    from_version  text NOT NULL,
    -- Declarative operations, or the name of a Rust function implemented in-process.
    operations    jsonb,
    function_name text,
    reversibility text NOT NULL
                  CHECK (reversibility IN ('lossless', 'restoring', 'lossy')),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (service, schema_id, to_version),
    CHECK ((operations IS NULL) <> (function_name IS NULL))
);
CREATE TRIGGER schema_migrations_append_only BEFORE UPDATE OR DELETE ON vellum.schema_migrations
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_append_only();
CREATE TRIGGER schema_migrations_no_truncate BEFORE TRUNCATE ON vellum.schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
