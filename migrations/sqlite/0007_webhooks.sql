-- Webhooks (SPEC section 10). An endpoint's secrets sign deliveries, so they are kept as
-- they are (an HMAC needs the key itself); they never leave the database except in the
-- answer that creates or rotates them.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    description     TEXT,
    enabled         INTEGER NOT NULL DEFAULT 1,
    secret          TEXT NOT NULL,
    old_secret      TEXT,
    old_secret_until INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- When the current run of failures began; NULL after a success.
    failing_since   INTEGER,
    disabled_reason TEXT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, enabled);

-- One row per event and endpoint, written in the transaction of the change it announces.
-- `payload` is fixed at the first attempt, so every retry sends the same body.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    change_id       TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    entity          TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status     INTEGER,
    payload         TEXT,
    finished_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, record_id, state, id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id              TEXT PRIMARY KEY NOT NULL,
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    status          INTEGER,
    duration_ms     INTEGER NOT NULL,
    error           TEXT,
    response        TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
