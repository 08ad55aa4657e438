-- The table of one entity type: one row per entity version, never updated in its data, never deleted.
CREATE TABLE {table} (
    entity_id      uuid NOT NULL,
    revision       bigint NOT NULL CHECK (revision > 0),
    entity_version text NOT NULL,
    schema_id      text NOT NULL,
    schema_version text NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    deleted_at     timestamptz,
    deleted_uow_id uuid REFERENCES {schema}.units_of_work (uow_id),
    is_active      boolean NOT NULL DEFAULT true,
    uow_id         uuid NOT NULL REFERENCES {schema}.units_of_work (uow_id),
    PRIMARY KEY (entity_id, revision),
    FOREIGN KEY (schema_id, schema_version) REFERENCES {schema}.schemas (schema_id, schema_version),
    CHECK ((deleted_at IS NULL) = (deleted_uow_id IS NULL)),
    -- A current version that is not deleted has not changed state since it was written, so
    -- queries ordered by updated_at read the commit-time index below (vellum-core's compiler).
    CONSTRAINT current_updated_at_is_created_at
        CHECK (updated_at = created_at OR NOT is_active OR deleted_at IS NOT NULL)
);
-- One active version per entity; scans of the active versions in entity id order.
CREATE UNIQUE INDEX ON {table} (entity_id) WHERE is_active;
-- Reads of an entity's active version by id (see sql::active_entity): keyed by an expression no
-- other index has, so the planner cannot serve them from an index of every version.
CREATE UNIQUE INDEX ON {table} ((CASE WHEN is_active THEN entity_id END)) WHERE is_active;
-- As-of reads: the newest version committed at or before a time, without walking the history.
CREATE INDEX ON {table} (entity_id, created_at, revision);
-- Pages of current versions ordered by commit time (created_at, or updated_at), read forwards
-- or backwards: the query language breaks ties by entity_id in the direction of the order.
CREATE INDEX ON {table} (created_at, entity_id) WHERE is_active AND deleted_at IS NULL;
CREATE TRIGGER entity_versions_immutable BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_entity_version();
CREATE TRIGGER entity_versions_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
GRANT SELECT, INSERT ON {table} TO {role};
GRANT UPDATE (is_active, updated_at, deleted_at, deleted_uow_id) ON {table} TO {role};
SELECT vellum.create_as_of_reader('{table}'::regclass, '{role}'::regrole);
