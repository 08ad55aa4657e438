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
