-- Rate limits shared by every process on this database. One row per bucket (an API key, or
-- an address that failed to authenticate) holds the GCRA "theoretical arrival time" in
-- nanoseconds since the epoch, updated in one statement per check. UNLOGGED: losing the
-- state in a crash only forgives a minute of requests, and it spares the WAL a write per check.
CREATE UNLOGGED TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);

-- Processes cache key lookups; every change to what authentication reads tells them on
-- this schema's channel (delivered at commit), whoever makes it: a server, the CLI, or an
-- operator's SQL. Last use (`last_used_at`, `last_used_ip`) is not such a change.
CREATE FUNCTION rapport_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('rapport_auth_' || TG_TABLE_SCHEMA, 63), '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_auth_changed
    AFTER UPDATE OF user_id, org_id, name, digest, preview, role, scopes, status, expires_at, allowed_cidrs,
        revoked_at, rotated_from, grace_digest, grace_until
    OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_auth_changed();
CREATE TRIGGER users_auth_changed AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_auth_changed();
CREATE TRIGGER orgs_auth_changed AFTER UPDATE OR DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_auth_changed();
