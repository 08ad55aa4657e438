-- vellum system schema (created by the migration bootstrap): the service registry and the
-- guards every service table uses.

CREATE TABLE vellum.services (
    name        text PRIMARY KEY,
    role_name   text NOT NULL,
    -- Key for the per-service advisory lock that orders commit stamps against as-of reads.
    lock_key    integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    ddl_version integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Entity versions are immutable: only is_active (true -> false), updated_at (forward),
-- deleted_at and deleted_uow_id (set once, on the active version) may change, and rows are
-- never deleted. Raised with SQLSTATE VL001 so the library can name the error.
CREATE FUNCTION vellum.guard_entity_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'entity versions are immutable: DELETE on %.% is not allowed',
            TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'VL001';
    END IF;
    IF NEW.entity_id IS DISTINCT FROM OLD.entity_id
       OR NEW.revision IS DISTINCT FROM OLD.revision
       OR NEW.entity_version IS DISTINCT FROM OLD.entity_version
       OR NEW.schema_id IS DISTINCT FROM OLD.schema_id
       OR NEW.schema_version IS DISTINCT FROM OLD.schema_version
       OR NEW.payload IS DISTINCT FROM OLD.payload
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR NEW.uow_id IS DISTINCT FROM OLD.uow_id THEN
        RAISE EXCEPTION 'entity versions are immutable: only is_active, updated_at and deleted_at may change (%.%)',
            TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'VL001';
    END IF;
    IF NEW.is_active AND NOT OLD.is_active THEN
        RAISE EXCEPTION 'a superseded entity version cannot become active again' USING ERRCODE = 'VL001';
    END IF;
    IF OLD.deleted_at IS NOT NULL AND (NEW.deleted_at IS DISTINCT FROM OLD.deleted_at
                                       OR NEW.deleted_uow_id IS DISTINCT FROM OLD.deleted_uow_id) THEN
        RAISE EXCEPTION 'the deletion of an entity version is recorded once and never changed' USING ERRCODE = 'VL001';
    END IF;
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL AND NOT OLD.is_active THEN
        RAISE EXCEPTION 'only the active version of an entity can be deleted' USING ERRCODE = 'VL001';
    END IF;
    IF NEW.updated_at < OLD.updated_at THEN
        RAISE EXCEPTION 'updated_at never moves backwards' USING ERRCODE = 'VL001';
    END IF;
    RETURN NEW;
END
$$;

-- Schema versions are immutable: the definition and identity never change; only is_active,
-- updated_at and deleted_at (set once) move. Rows are never deleted.
CREATE FUNCTION vellum.guard_schema_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'schema versions are immutable: DELETE on %.% is not allowed',
            TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'VL001';
    END IF;
    IF NEW.schema_id IS DISTINCT FROM OLD.schema_id
       OR NEW.schema_version IS DISTINCT FROM OLD.schema_version
       OR NEW.major IS DISTINCT FROM OLD.major
       OR NEW.minor IS DISTINCT FROM OLD.minor
       OR NEW.patch IS DISTINCT FROM OLD.patch
       OR NEW.schema_definition IS DISTINCT FROM OLD.schema_definition
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'schema versions are immutable: only is_active, updated_at and deleted_at may change'
            USING ERRCODE = 'VL001';
    END IF;
    IF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
        RAISE EXCEPTION 'a deleted schema version stays deleted' USING ERRCODE = 'VL001';
    END IF;
    IF NEW.is_active AND NEW.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'a deleted schema version cannot be active' USING ERRCODE = 'VL001';
    END IF;
    RETURN NEW;
END
$$;

-- Audit rows (units of work) are append-only.
CREATE FUNCTION vellum.guard_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'VL001';
END
$$;

-- Makes a write that found nothing to change fail the whole transaction (SQLSTATE VL002), so a
-- pipelined unit of work can never commit half of its writes.
CREATE FUNCTION vellum.expect_changed(changed bigint, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF changed = 0 THEN
        RAISE EXCEPTION 'conflict: %', what USING ERRCODE = 'VL002';
    END IF;
END
$$;
