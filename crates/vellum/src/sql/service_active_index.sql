-- The index that reads of an active version by id use (see sql::active_entity), on an entity
-- table the service already has; entity tables created later get it with the table.
IF NOT EXISTS (
    SELECT FROM pg_index i
    WHERE i.indrelid = entity_table AND i.indisunique
      AND btrim(regexp_replace(pg_get_expr(i.indexprs, i.indrelid), '\s+', ' ', 'g'))
          = 'CASE WHEN is_active THEN entity_id ELSE NULL::uuid END'
) THEN
    EXECUTE format(
        'CREATE UNIQUE INDEX ON %s ((CASE WHEN is_active THEN entity_id END)) WHERE is_active',
        entity_table);
END IF;
