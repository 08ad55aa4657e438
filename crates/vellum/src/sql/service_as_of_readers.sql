-- The as-of reader of an entity table the service already has (see vellum.create_as_of_reader);
-- entity tables created later get theirs with the table.
PERFORM vellum.create_as_of_reader(entity_table, '{role}'::regrole);
