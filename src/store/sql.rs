//! SQL shared by both databases. Dialect differences live in `query.rs` and `imp.rs`.

macro_rules! user_cols {
    () => {
        "u.id, u.org_id, u.email, u.name, u.role, u.active, u.created_at"
    };
}
macro_rules! key_cols {
    () => {
        "k.id, k.org_id, k.user_id, k.name, k.preview, k.role, k.scopes, k.status, k.created_at, \
         k.expires_at, k.allowed_cidrs, k.last_used_at, k.last_used_ip, k.revoked_at, k.rotated_from"
    };
}
macro_rules! audit_cols {
    () => {
        "id, org_id, at, actor_type, actor_id, action, target_type, target_id, key_id, ip, details"
    };
}

pub const COUNT_ORGS: &str = "SELECT COUNT(*) FROM orgs";
pub const INSERT_ORG: &str = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)";
pub const LIST_ORGS: &str = "SELECT id, name, created_at FROM orgs ORDER BY name";
pub const ORG_BY_NAME: &str = "SELECT id, name, created_at FROM orgs WHERE name = $1";
pub const INSERT_USER: &str = "INSERT INTO users (id, org_id, email, name, role, active, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const USER_BY_EMAIL: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.org_id = $1 AND u.email = $2");
pub const FIRST_OWNER: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.org_id = $1 AND u.role = 'owner' AND u.active = $2 ORDER BY u.created_at, u.id LIMIT 1"
);

pub const INSERT_KEY: &str = "INSERT INTO api_keys (id, org_id, user_id, name, digest, preview, role, scopes, \
     status, created_at, expires_at, allowed_cidrs, rotated_from) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub const SET_KEY_STATUS: &str = "UPDATE api_keys SET status = $3, \
     revoked_at = CASE WHEN $3 = 'revoked' THEN $4 ELSE revoked_at END WHERE org_id = $1 AND id = $2";
pub const UPDATE_USER: &str = "UPDATE users SET role = $3, active = $4 WHERE org_id = $1 AND id = $2";
pub const COUNT_ENABLED_KEYS: &str = "SELECT COUNT(*) FROM api_keys WHERE org_id = $1 AND status = 'enabled'";
pub const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_cols!(),
    " FROM api_keys k WHERE k.org_id = $1 AND (k.status <> 'revoked' OR $2) ORDER BY k.created_at DESC, k.id DESC"
);
// A key is found by its secret, or by its previous secret during a rotation's grace
// period (`via_grace` says which; `grace_until` bounds it).
pub const KEY_FOR_AUTH: &str = concat!(
    "SELECT ",
    key_cols!(),
    ", ",
    user_cols!(),
    ", o.id AS o_id, o.name AS o_name, o.created_at AS o_created_at, \
     COALESCE(k.grace_digest = $1, FALSE) AS via_grace, k.grace_until \
     FROM api_keys k JOIN users u ON u.id = k.user_id JOIN orgs o ON o.id = k.org_id \
     WHERE k.digest = $1 OR k.grace_digest = $1"
);
pub const GET_KEY: &str = concat!("SELECT ", key_cols!(), " FROM api_keys k WHERE k.org_id = $1 AND k.id = $2");
pub const RENAME_KEY: &str = "UPDATE api_keys SET name = $3 WHERE org_id = $1 AND id = $2";
// The right-hand sides see the row as it was: the old secret's digest moves to
// `grace_digest` (when there is a grace period) and the old preview to `rotated_from`.
pub const ROTATE_KEY: &str = "UPDATE api_keys SET grace_digest = CASE WHEN $5 IS NULL THEN NULL ELSE digest END, \
     grace_until = $5, rotated_from = preview, digest = $3, preview = $4 WHERE org_id = $1 AND id = $2";
pub const DELETE_KEY: &str = "DELETE FROM api_keys WHERE org_id = $1 AND id = $2";
pub const LIST_USERS: &str =
    concat!("SELECT ", user_cols!(), " FROM users u WHERE u.org_id = $1 ORDER BY u.created_at, u.id");
pub const COUNT_ACTIVE_OWNERS: &str =
    "SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'owner' AND active = $2 AND id <> $3";
pub const RECORD_KEY_USE: &str = "UPDATE api_keys SET last_used_at = $1, last_used_ip = $2 \
     WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)";

pub const INSERT_AUDIT: &str =
    concat!("INSERT INTO audit_log (", audit_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
pub const LIST_AUDIT: &str =
    concat!("SELECT ", audit_cols!(), " FROM audit_log WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2");
pub const LIST_AUDIT_BEFORE: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit_log WHERE org_id = $1 AND (at, id) < ($3, $4) ORDER BY at DESC, id DESC LIMIT $2"
);

pub const CUSTOM_FIELDS: &str = "SELECT id, entity, key, label, field_type, options FROM custom_fields \
     WHERE org_id = $1 AND entity = $2 ORDER BY created_at, id";

// `decode::record` reads these by position: keep the orders in step.
pub const CONTACT_COLS: &str = "id, first_name, last_name, email, phone, title, company_id, owner_id, tags, custom, \
     created_at, updated_at";
pub const COMPANY_COLS: &str = "id, name, domain, industry, owner_id, tags, custom, created_at, updated_at";

pub const INSERT_CONTACT: &str = "INSERT INTO contacts (id, org_id, first_name, last_name, email, phone, title, \
     company_id, owner_id, tags, custom, search, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
// Updates take the insert's parameters in the same order (created_at is written back
// unchanged), plus the `updated_at` the row must still have.
pub const UPDATE_CONTACT: &str = "UPDATE contacts SET first_name = $3, last_name = $4, email = $5, phone = $6, \
     title = $7, company_id = $8, owner_id = $9, tags = $10, custom = $11, search = $12, created_at = $13, \
     updated_at = $14 WHERE id = $1 AND org_id = $2 AND updated_at = $15";
pub const INSERT_COMPANY: &str = "INSERT INTO companies (id, org_id, name, domain, industry, owner_id, tags, \
     custom, search, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub const UPDATE_COMPANY: &str = "UPDATE companies SET name = $3, domain = $4, industry = $5, owner_id = $6, \
     tags = $7, custom = $8, search = $9, created_at = $10, updated_at = $11 \
     WHERE id = $1 AND org_id = $2 AND updated_at = $12";
pub const ROW_EXISTS_CONTACT: &str = "SELECT COUNT(*) FROM contacts WHERE id = $1 AND org_id = $2";
pub const ROW_EXISTS_COMPANY: &str = "SELECT COUNT(*) FROM companies WHERE id = $1 AND org_id = $2";
pub const COMPANY_CONTACT_COUNT: &str = "SELECT COUNT(*) FROM contacts WHERE org_id = $1 AND company_id = $2";
pub const COMPANY_CONTACTS: &str = "SELECT id, first_name, last_name, email, phone, title, company_id, owner_id, \
     tags, custom, created_at, updated_at FROM contacts WHERE org_id = $1 AND company_id = $2 \
     ORDER BY created_at DESC, id DESC LIMIT $3";
