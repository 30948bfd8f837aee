-- An event's body is stored once, however many endpoints receive it (issue 26: ten endpoints
-- on `*` stored ten copies of every write's body). Deliveries made before keep their own
-- `payload`; new ones name their event. `record_id` lets a personal-data erasure find the
-- events of a record it erases.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    record_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
ALTER TABLE webhook_deliveries ADD COLUMN event_id TEXT;
-- Event ids follow time and a write's deliveries share one: entries are appended side by side.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id) WHERE event_id IS NOT NULL;
