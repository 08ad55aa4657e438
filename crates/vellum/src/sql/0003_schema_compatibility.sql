-- Compatibility modes per schema id (SPEC §4.2). A schema id without a row uses BACKWARD. Kept in
-- the system schema, next to the service registry, so no service's DDL changes; only vellum's own
-- role reads and writes it, under the registry's per-schema-id advisory lock.
CREATE TABLE vellum.schema_compatibility (
    service    text NOT NULL REFERENCES vellum.services (name),
    schema_id  text NOT NULL,
    mode       text NOT NULL CONSTRAINT schema_compatibility_mode_check
               CHECK (mode IN ('BACKWARD', 'FORWARD', 'FULL', 'BACKWARD_TRANSITIVE',
                               'FORWARD_TRANSITIVE', 'FULL_TRANSITIVE', 'NONE')),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (service, schema_id)
);
