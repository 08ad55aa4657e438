-- Per-service API tokens (SPEC §7). Only the SHA-256 of a token is stored; the token itself is
-- shown once, when it is issued. Rows are never deleted: revoking sets revoked_at.
CREATE TABLE vellum.api_tokens (
    token_id    uuid PRIMARY KEY,
    service     text NOT NULL REFERENCES vellum.services (name),
    scopes      text[] NOT NULL CONSTRAINT api_tokens_scopes_check
                -- <@ is false for NULL elements, which match nothing.
                CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'schema', 'admin']),
    -- Authentication looks tokens up by hash, so the comparison happens in this index.
    token_hash  bytea NOT NULL UNIQUE CONSTRAINT api_tokens_token_hash_check
                CHECK (octet_length(token_hash) = 32),
    description text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);

CREATE INDEX api_tokens_live_by_service ON vellum.api_tokens (service) WHERE revoked_at IS NULL;
