-- Query support (SPEC §8): typed comparisons of date-time paths, reference checks at commit, and
-- the key that makes query cursors tamper-evident.

-- `format: date-time` values as timestamps, NULL for text that is not an RFC 3339 date-time
-- (documents written under an older schema version may hold anything at the path). Declared
-- IMMUTABLE so expression indexes can use it: an RFC 3339 date-time carries its offset, so its
-- meaning does not depend on the session's TimeZone.
CREATE FUNCTION vellum.to_timestamptz(value text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$'
        THEN value::timestamptz
    END
$$;

-- Makes a write whose `x-vellum-ref` names no live entity fail the whole transaction
-- (SQLSTATE VL003), like `expect_changed` does for conflicts.
CREATE FUNCTION vellum.expect_reference(matched bigint, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF matched = 0 THEN
        RAISE EXCEPTION 'reference to a missing or deleted entity: %', what USING ERRCODE = 'VL003';
    END IF;
END
$$;

-- Secrets of this database's vellum installation, readable only by vellum's own role.
CREATE TABLE vellum.secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) >= 32)
);
REVOKE ALL ON vellum.secrets FROM PUBLIC;
-- 32 random bytes from two v4 UUIDs (gen_random_uuid is core since PostgreSQL 13).
INSERT INTO vellum.secrets (name, value)
VALUES ('query_cursor',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
