-- The web console (SPEC section 8): sessions kept in the database so any process serves
-- them, one-time links (setup and invitations), and failed logins counted across processes.
-- Secrets (session tokens, link tokens) are stored only as their SHA-256 digests.
CREATE TABLE sessions (
    digest      TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL,
    ip          TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE link_tokens (
    digest      TEXT PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('setup', 'invite')),
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX link_tokens_user ON link_tokens (user_id);

-- One row per login attempt and subject (`account:{email}`, `ip:{address}`), written before
-- the password is checked so that a burst of attempts counts in full; a successful attempt's
-- rows are removed again.
CREATE TABLE login_failures (
    attempt     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (subject, at);

-- The Activity page filters the change log by key and by user.
CREATE INDEX changes_org_key ON changes (org_id, key_id, at, id);
CREATE INDEX changes_org_user ON changes (org_id, user_id, at, id);
