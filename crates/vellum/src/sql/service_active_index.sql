-- The active-version index of every entity table the service already has, keyed by the active
-- entity id (see sql::active_entity) instead of being partial on is_active; entity tables
-- created later get it with the table. The new index is built before the old one is dropped, so
-- the one-active-version rule holds throughout.
DO $upgrade$
DECLARE
    entity_table regclass;
    partial regclass;
BEGIN
    FOR entity_table IN
        SELECT to_regclass(format('%s.%I', '{schema}', s.schema_id))
        FROM (SELECT DISTINCT schema_id FROM {schema}.schemas) s
    LOOP
        CONTINUE WHEN entity_table IS NULL;
        IF NOT EXISTS (
            SELECT FROM pg_index i
            WHERE i.indrelid = entity_table AND i.indisunique
              AND btrim(regexp_replace(pg_get_expr(i.indexprs, i.indrelid), '\s+', ' ', 'g'))
                  = 'CASE WHEN is_active THEN entity_id ELSE NULL::uuid END'
        ) THEN
            EXECUTE format(
                'CREATE UNIQUE INDEX ON %s ((CASE WHEN is_active THEN entity_id END))',
                entity_table);
        END IF;
        FOR partial IN
            SELECT i.indexrelid::regclass
            FROM pg_index i
            WHERE i.indrelid = entity_table AND i.indisunique
              AND pg_get_indexdef(i.indexrelid) LIKE '%(entity_id) WHERE is_active'
        LOOP
            EXECUTE format('DROP INDEX %s', partial);
        END LOOP;
    END LOOP;
END
$upgrade$;
