-- The transactional outbox of one service (service DDL version 2): events committed in the same
-- transaction as the writes they describe. Append-only like the rest of history: the service role
-- may read and append; what the relay has published lives in vellum.relay_checkpoints, owned by
-- vellum's own role, so publishing never needs to change an outbox row.
--
-- Positions are handed out in commit order: vellum.outbox_in_commit_order (a trigger every
-- insert passes through) takes a per-outbox lock held until the transaction ends, and only then
-- draws the position. So no transaction in flight ever holds a position below a committed one,
-- and a reader that resumes after the last position it saw never skips an event.
CREATE SEQUENCE {schema}.outbox_position AS bigint;
CREATE TABLE {schema}.outbox (
    position          bigint PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    uow_id            uuid NOT NULL REFERENCES {schema}.units_of_work (uow_id),
    aggregate_type    text NOT NULL,
    aggregate_id      text NOT NULL,
    aggregate_version text,
    event_type        text NOT NULL,
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL
);
ALTER SEQUENCE {schema}.outbox_position OWNED BY {schema}.outbox.position;
CREATE TRIGGER outbox_in_commit_order BEFORE INSERT ON {schema}.outbox
    FOR EACH ROW EXECUTE FUNCTION vellum.outbox_in_commit_order();
CREATE TRIGGER outbox_append_only BEFORE UPDATE OR DELETE ON {schema}.outbox
    FOR EACH ROW EXECUTE FUNCTION vellum.guard_append_only();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON {schema}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION vellum.guard_append_only();
GRANT SELECT, INSERT ON {schema}.outbox TO {role};
GRANT USAGE ON SEQUENCE {schema}.outbox_position TO {role};

-- The service's event settings: one row, read by the commit pipeline under the service role,
-- changed only by vellum's own role.
CREATE TABLE {schema}.event_settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Write entity.created / updated / undeleted / deleted events for every entity write.
    change_events boolean NOT NULL DEFAULT false
);
INSERT INTO {schema}.event_settings DEFAULT VALUES;
GRANT SELECT ON {schema}.event_settings TO {role};
