-- The outbox (SPEC §6.4): what every service's outbox insert passes through, and what each
-- service's relay has published.

-- Hands out outbox positions in commit order. The lock (one per outbox table) is taken before the
-- position is drawn and held until the transaction ends, so positions are drawn by one
-- transaction at a time, and a transaction that draws one commits (or rolls back) before the
-- next can draw. Whatever a raw insert says, the position is the trigger's.
CREATE FUNCTION vellum.outbox_in_commit_order() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- 'VOUT' in the high half, the table's oid in the low half.
    PERFORM pg_advisory_xact_lock((x'564f5554'::bigint << 32) | TG_RELID::bigint);
    NEW.position := nextval(format('%I.outbox_position', TG_TABLE_SCHEMA));
    RETURN NEW;
END
$$;

-- The position of the last event each service's relay published and NATS JetStream
-- acknowledged. Written only by vellum's own role, on the relay leader's connection, so the
-- outbox itself stays append-only.
CREATE TABLE vellum.relay_checkpoints (
    service      text PRIMARY KEY REFERENCES vellum.services (name),
    position     bigint NOT NULL,
    published    bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
