-- What each service's outbox relay has published (SPEC §6.4): the (txid, position) of the last
-- event acknowledged by NATS JetStream. Kept in the system schema, written only by vellum's own
-- role on the relay leader's connection, so the outbox itself stays append-only.
CREATE TABLE vellum.relay_checkpoints (
    service      text PRIMARY KEY REFERENCES vellum.services (name),
    txid         xid8 NOT NULL,
    position     bigint NOT NULL,
    published    bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
