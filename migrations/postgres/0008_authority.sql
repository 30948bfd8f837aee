-- Authority (SPEC section 3): audit entries name the key that acted, besides the target.
ALTER TABLE audit_log ADD COLUMN actor_key_id TEXT;
CREATE INDEX audit_org_actor_key ON audit_log (org_id, actor_key_id, at, id);

-- An endpoint carries its creator's powers (SPEC section 10): the person, the key they
-- acted through, and that key's scopes when it was made (NULL: the person's role).
ALTER TABLE webhook_endpoints ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE webhook_endpoints ADD COLUMN created_by_key TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN scopes TEXT;
-- Endpoints made before this step belong to whoever the audit log says made them. One a
-- person made in the console carries their role; one made through a key (whose scopes were
-- not recorded) or of unknown origin carries nothing, and is turned off, audited, until
-- someone takes it over.
UPDATE webhook_endpoints SET created_by =
    (SELECT a.actor_id FROM audit_log a JOIN users u ON u.id = a.actor_id
      WHERE a.action = 'webhook.create' AND a.target_id = webhook_endpoints.id ORDER BY a.at LIMIT 1);
UPDATE webhook_endpoints SET scopes = '[]' WHERE NOT EXISTS
    (SELECT 1 FROM audit_log a WHERE a.action = 'webhook.create' AND a.target_id = webhook_endpoints.id
      AND a.actor_type = 'user' AND a.actor_id = webhook_endpoints.created_by);
INSERT INTO audit_log (id, org_id, at, actor_type, action, target_type, target_id, details)
    SELECT 'm0008-' || id, org_id, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT, 'system', 'webhook.disabled', 'webhook', id,
        '{"reason": "made before webhooks carried their creator''s powers, through a key whose scopes were not recorded; take it over to turn it on"}'
    FROM webhook_endpoints WHERE scopes = '[]' AND enabled = TRUE;
UPDATE webhook_endpoints SET enabled = FALSE,
    disabled_reason = 'made before webhooks carried their creator''s powers, through a key whose scopes were not recorded; take it over to turn it on'
    WHERE scopes = '[]' AND enabled = TRUE;
CREATE INDEX webhook_endpoints_creator ON webhook_endpoints (created_by);

-- A deleted custom field waits in the trash with its values (SPEC section 5), out of sight
-- of every read, until it is purged after RAPPORT_TRASH_DAYS.
CREATE TABLE trashed_custom_fields (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity      TEXT NOT NULL,
    key         TEXT NOT NULL,
    label       TEXT NOT NULL,
    field_type  TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT NOT NULL
);
CREATE INDEX trashed_custom_fields_org ON trashed_custom_fields (org_id, entity, key);
CREATE INDEX trashed_custom_fields_deleted ON trashed_custom_fields (deleted_at);

CREATE TABLE trashed_custom_values (
    field_id    TEXT NOT NULL REFERENCES trashed_custom_fields(id) ON DELETE CASCADE,
    record_id   TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (field_id, record_id)
);
