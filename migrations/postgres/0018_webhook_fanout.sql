-- A write queues one row per event, naming the endpoints it goes to, and no delivery (issue
-- 26: ten endpoints on `*` made every write insert ten deliveries with their four index
-- entries each). The sender fans queued events out into deliveries in batches; `targets`
-- (a JSON array of endpoint ids) is cleared when it has. Events of earlier releases have
-- their deliveries already, and no targets.
ALTER TABLE webhook_events ADD COLUMN targets TEXT;
ALTER TABLE webhook_events ADD COLUMN source TEXT;
ALTER TABLE webhook_events ADD COLUMN event_type TEXT;
ALTER TABLE webhook_events ADD COLUMN entity TEXT;
CREATE INDEX webhook_events_queued ON webhook_events (created_at, id) WHERE targets IS NOT NULL;
-- A write reads its organization's endpoints from a cache kept while the authentication
-- generation holds: other processes hear of an endpoint's change as of a key's.
CREATE TRIGGER webhook_endpoints_auth_changed
    AFTER INSERT OR DELETE OR UPDATE OF org_id, events, enabled, created_by, scopes ON webhook_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION rapport_auth_changed();
