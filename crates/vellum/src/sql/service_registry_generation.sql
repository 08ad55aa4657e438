-- The registry generation: moved by every change to the service's schemas (see
-- vellum.next_registry_generation), read with the change_events setting by every commit.
ALTER TABLE {schema}.event_settings ADD COLUMN registry_generation bigint NOT NULL DEFAULT 0;
CREATE TRIGGER schemas_registry_generation AFTER INSERT OR UPDATE OR DELETE ON {schema}.schemas
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.next_registry_generation();
