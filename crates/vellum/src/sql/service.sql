-- One service: its schema, owned by vellum's own role; the service role may read and append,
-- and may move only the lifecycle columns the guards allow.
CREATE SCHEMA {schema};
GRANT USAGE ON SCHEMA {schema} TO {role};
-- The service role calls vellum.expect_changed; it holds no privilege on vellum's tables.
GRANT USAGE ON SCHEMA vellum TO {role};

CREATE TABLE {schema}.schemas (
    schema_id         text NOT NULL,
    schema_version    text NOT NULL,
    major             integer NOT NULL CHECK (major >= 0),
    minor             integer NOT NULL CHECK (minor >= 0),
    patch             integer NOT NULL CHECK (patch >= 0),
    schema_definition jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at        timestamptz,
    is_active         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (schema_id, schema_version),
    UNIQUE (schema_id, major, minor, patch)
);
CREATE UNIQUE INDEX schemas_one_active ON {schema}.schemas (schema_id) WHERE is_active;
CREATE TRIGGER schemas_immutable BEFORE UPDATE OR DELETE ON {schema}.schemas
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_schema_version();
CREATE TRIGGER schemas_no_truncate BEFORE TRUNCATE ON {schema}.schemas
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
GRANT SELECT ON {schema}.schemas TO {role};

CREATE TABLE {schema}.units_of_work (
    uow_id         uuid PRIMARY KEY,
    actor          text NOT NULL,
    correlation_id text,
    committed_at   timestamptz NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX units_of_work_committed_at ON {schema}.units_of_work (committed_at);
CREATE TRIGGER units_of_work_append_only BEFORE UPDATE OR DELETE ON {schema}.units_of_work
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_append_only();
CREATE TRIGGER units_of_work_no_truncate BEFORE TRUNCATE ON {schema}.units_of_work
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
GRANT SELECT, INSERT ON {schema}.units_of_work TO {role};
