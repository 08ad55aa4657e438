-- The index of pages ordered by commit time, and the constraint that lets orders by updated_at
-- use it (see entity_table.sql), on an entity table the service already has.
IF NOT EXISTS (
    SELECT FROM pg_index i
    WHERE i.indrelid = entity_table
      AND pg_get_indexdef(i.indexrelid)
          LIKE '% (created_at, entity_id) WHERE (is_active AND (deleted_at IS NULL))'
) THEN
    EXECUTE format(
        'CREATE INDEX ON %s (created_at, entity_id) WHERE is_active AND deleted_at IS NULL',
        entity_table);
END IF;
IF NOT EXISTS (
    SELECT FROM pg_constraint
    WHERE conrelid = entity_table AND conname = 'current_updated_at_is_created_at'
) THEN
    EXECUTE format(
        'ALTER TABLE %s ADD CONSTRAINT current_updated_at_is_created_at
             CHECK (updated_at = created_at OR NOT is_active OR deleted_at IS NOT NULL) NOT VALID',
        entity_table);
    -- Only a row changed by hand can fail it; the upgrade goes on, and writes are checked.
    BEGIN
        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT current_updated_at_is_created_at',
                       entity_table);
    EXCEPTION WHEN check_violation THEN
        RAISE WARNING '% has current versions whose updated_at is not their created_at; '
                      'queries ordered by updated_at order them by created_at', entity_table;
    END;
END IF;
