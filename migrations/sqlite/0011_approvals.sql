-- Approvals (SPEC section 12). A key's policy: the kinds of call (JSON list of delete, bulk,
-- schema, webhooks) that wait for a person, and the bulk limit; NULL holds nothing.
ALTER TABLE api_keys ADD COLUMN approval_kinds TEXT;
ALTER TABLE api_keys ADD COLUMN approval_bulk_limit INTEGER;

-- A call held for a person: what the key asked (tool and arguments), what a dry run showed
-- it would change, and how it was decided. A decision moves `state` from pending exactly
-- once (a conditional update), whatever races it.
CREATE TABLE approvals (
    id               TEXT PRIMARY KEY NOT NULL,
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
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    decided_at       INTEGER,
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
