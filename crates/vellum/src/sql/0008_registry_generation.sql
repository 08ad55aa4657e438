-- Moves a service's registry generation (`<service>.event_settings.registry_generation`): the
-- statement trigger of every change to the service's `schemas` table, in the same transaction.
-- A process that read an active version at generation G and finds G still current at commit
-- knows no version was registered, activated or deleted since, so the commit needs no lookup
-- of the versions it validated against (see `uow::flush`).
CREATE FUNCTION vellum.next_registry_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.event_settings SET registry_generation = registry_generation + 1',
                   TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

-- The commit-time check of every entity type whose active version a process had cached, once
-- the registry generation has moved: `vellum.expect_writable_schema` for each (`schema_ids`
-- with the `versions` validated against) on the service's `schemas` table. Returns the active
-- version of each, in order. A function, so the statement that calls it plans the same whatever
-- its parameters (and keeps its generic plan).
CREATE FUNCTION vellum.expect_writable_schemas(schemas regclass, schema_ids text[],
                                               versions text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    active text[];
BEGIN
    -- regclass text is what resolves to the same table in this session.
    EXECUTE format($check$
        SELECT ARRAY(SELECT vellum.expect_writable_schema(c.schema_id, c.version,
                                                          a.schema_version, v.deleted_at IS NULL)
                     FROM unnest($1, $2) WITH ORDINALITY AS c(schema_id, version, ord)
                     LEFT JOIN %1$s a ON a.schema_id = c.schema_id AND a.is_active
                     LEFT JOIN %1$s v ON v.schema_id = c.schema_id
                                      AND v.schema_version = c.version
                     ORDER BY c.ord)
        $check$, schemas)
    INTO active USING schema_ids, versions;
    RETURN active;
END
$$;
