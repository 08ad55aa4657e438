-- The as-of reader of every entity table the service already has (see
-- vellum.create_as_of_reader); entity tables created later get theirs with the table.
DO $upgrade$
DECLARE
    entity_table regclass;
BEGIN
    FOR entity_table IN
        SELECT to_regclass(format('%s.%I', '{schema}', s.schema_id))
        FROM (SELECT DISTINCT schema_id FROM {schema}.schemas) s
    LOOP
        IF entity_table IS NOT NULL THEN
            PERFORM vellum.create_as_of_reader(entity_table, '{role}'::regrole);
        END IF;
    END LOOP;
END
$upgrade$;
