-- Approvals (SPEC section 12). A key's policy: the kinds of call (JSON list of delete, bulk,
-- schema, webhooks) that wait for a person, and the bulk limit; NULL holds nothing.
ALTER TABLE api_keys ADD COLUMN approval_kinds TEXT;
ALTER TABLE api_keys ADD COLUMN approval_bulk_limit BIGINT;

-- Authentication reads the policy too: a change to it tells every process (0004's trigger).
DROP TRIGGER api_keys_auth_changed ON api_keys;
CREATE TRIGGER api_keys_auth_changed
    AFTER UPDATE OF user_id, org_id, name, digest, preview, role, scopes, status, expires_at, allowed_cidrs,
        revoked_at, rotated_from, grace_digest, grace_until, approval_kinds, approval_bulk_limit
    OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_auth_changed();

-- A call held for a person: what the key asked (tool and arguments), what a dry run showed
-- it would change, and how it was decided. A decision moves `state` from pending exactly
-- once (a conditional update), whatever races it.
CREATE TABLE approvals (
    id               TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    key_id           TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    tool             TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    idempotency_key  TEXT,
    kinds            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    changes          TEXT NOT NULL,
    via              TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'approved', 'denied', 'stale', 'expired')),
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    decided_at       BIGINT,
    decided_by       TEXT,
    decided_by_email TEXT,
    reason           TEXT,
    result           TEXT
);
CREATE INDEX approvals_org ON approvals (org_id, state, created_at, id);
CREATE INDEX approvals_key ON approvals (key_id, state);
-- Reads look here for what waited too long, without taking a write lock when nothing did.
CREATE INDEX approvals_due ON approvals (state, expires_at);
CREATE UNIQUE INDEX approvals_idempotency ON approvals (key_id, idempotency_key);
