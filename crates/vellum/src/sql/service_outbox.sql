-- The transactional outbox of one service (service DDL version 2): events committed in the same
-- transaction as the writes they describe. Append-only like the rest of history: the service role
-- may read and append; what the relay has published lives in vellum.relay_checkpoints, owned by
-- vellum's own role, so publishing never needs to change an outbox row.
CREATE TABLE {schema}.outbox (
    position          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    uow_id            uuid NOT NULL REFERENCES {schema}.units_of_work (uow_id),
    -- The writing transaction: readers deliver only below the oldest transaction still in
    -- flight (pg_snapshot_xmin), in (txid, position) order, so a late commit is never skipped.
    txid              xid8 NOT NULL DEFAULT pg_current_xact_id(),
    aggregate_type    text NOT NULL,
    aggregate_id      text NOT NULL,
    aggregate_version text,
    event_type        text NOT NULL,
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX outbox_feed_order ON {schema}.outbox (txid, position);
CREATE TRIGGER outbox_append_only BEFORE UPDATE OR DELETE ON {schema}.outbox
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_append_only();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON {schema}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
GRANT SELECT, INSERT ON {schema}.outbox TO {role};

-- The service's event settings: one row, read by the commit pipeline under the service role,
-- changed only by vellum's own role.
CREATE TABLE {schema}.event_settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Write entity.created / updated / undeleted / deleted events for every entity write.
    change_events boolean NOT NULL DEFAULT false
);
INSERT INTO {schema}.event_settings DEFAULT VALUES;
GRANT SELECT ON {schema}.event_settings TO {role};
