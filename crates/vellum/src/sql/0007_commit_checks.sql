-- Commit-time check of a write validated against the active schema version a process had
-- cached: the version must still be live (not deleted) and in the active major line, as if the
-- writer had named it. Fails the whole transaction with SQLSTATE VL004 otherwise; returns the
-- active version, so the writer can refresh what it cached.
CREATE FUNCTION vellum.expect_writable_schema(schema_id text, validated text, active text,
                                              live boolean) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF active IS NULL OR live IS NOT TRUE
       OR split_part(active, '.', 1) <> split_part(validated, '.', 1) THEN
        RAISE EXCEPTION 'schema % version % can no longer be written: the active version is now %',
            schema_id, validated, coalesce(active, 'none')
            USING ERRCODE = 'VL004';
    END IF;
    RETURN active;
END
$$;

-- Commit-time check of a unit of work that left out its entity change events because the
-- process had seen the service's `change_events` setting off: fails the whole transaction with
-- SQLSTATE VL005 if the setting is on (the writer then sends them). Returns the setting, so the
-- writer can refresh what it cached.
CREATE FUNCTION vellum.expect_change_events(sent boolean, change_events boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF change_events AND NOT sent THEN
        RAISE EXCEPTION 'entity change events were turned on while the unit of work committed'
            USING ERRCODE = 'VL005';
    END IF;
    RETURN change_events;
END
$$;

-- Creates the as-of reader of an entity table: `<table>_as_of(entity, as_of, slot, service_key)`
-- in the table's schema, executable by the service role. It takes the stamp barrier (one slot,
-- exclusively, to the end of the caller's statement) and only then reads, with a snapshot of
-- its own: a VOLATILE PL/pgSQL function takes a new snapshot for each query it runs. So an
-- as-of read is one statement, and its plan is cached by PL/pgSQL.
CREATE FUNCTION vellum.create_as_of_reader(entity_table regclass, service_role regrole)
RETURNS void
LANGUAGE plpgsql AS $create$
DECLARE
    -- Schema-qualified names, whatever the search path (regclass output omits a visible schema).
    nsp name := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = entity_table);
    rel name := (SELECT c.relname FROM pg_class c WHERE c.oid = entity_table);
    target text := format('%I.%I', nsp, rel);
    reader text := format('%I.%I', nsp, rel || '_as_of');
BEGIN
    EXECUTE format($ddl$
        CREATE OR REPLACE FUNCTION %1$s(p_entity uuid, p_as_of timestamptz, p_slot integer,
                             p_service_key integer)
        RETURNS SETOF %2$s
        LANGUAGE plpgsql VOLATILE AS $body$
        BEGIN
            PERFORM pg_advisory_xact_lock(p_slot, p_service_key);
            RETURN QUERY
                SELECT * FROM %2$s e
                WHERE e.entity_id = p_entity AND e.created_at <= p_as_of
                ORDER BY e.created_at DESC, e.revision DESC
                LIMIT 1;
        END
        $body$$ddl$, reader, target);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s(uuid, timestamptz, integer, integer) TO %s',
                   reader, service_role);
END
$create$;
