//! API keys: stored by digest, found by digest, changed inside the domain's transactions.

use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy, DEFAULT_BULK_LIMIT};
use rapport_tools::{Role, Scope, Scopes};

use super::db::{DbRow, Tx};
use super::users::{org_as, parse_role, user_as};
use super::*;
use crate::secrets::KeyDigest;

const KEY_COLS: &str = "k.id, k.org_id, k.user_id, k.name, k.preview, k.role, k.scopes, k.status, k.created_at, \
     k.expires_at, k.allowed_cidrs, k.last_used_at, k.last_used_ip, k.revoked_at, k.rotated_from, \
     k.approval_kinds, k.approval_bulk_limit";

fn parse_scopes(s: &str) -> StoreResult<Scopes> {
    let names: Vec<String> = parse_json(s, "scopes")?;
    // A scope dropped from a later release is ignored rather than locking the key out.
    Ok(names.iter().filter_map(|n| n.parse::<Scope>().ok()).collect())
}

/// A policy as stored: kinds as a JSON list, and the bulk limit.
fn parse_policy(kinds: Option<String>, bulk_limit: Option<i64>) -> StoreResult<Option<ApprovalPolicy>> {
    let Some(kinds) = kinds else { return Ok(None) };
    let names: Vec<String> = parse_json(&kinds, "approval_kinds")?;
    let kinds = names.iter().filter_map(|n| ApprovalKind::parse(n).ok());
    let limit = bulk_limit.map(|l| u32::try_from(l).unwrap_or(DEFAULT_BULK_LIMIT));
    ApprovalPolicy::new(kinds, limit).map_err(StoreError::Corrupt)
}

/// A policy's columns.
fn policy_values(p: Option<&ApprovalPolicy>) -> [SqlValue; 2] {
    match p {
        None => [SqlValue::from(None::<String>), SqlValue::from(None::<i64>)],
        Some(p) => {
            let kinds: Vec<&str> = p.kinds.iter().map(|k| k.as_str()).collect();
            [json_text(&kinds).into(), i64::from(p.bulk_limit).into()]
        }
    }
}

/// A key from `KEY_COLS`.
fn key(r: &mut DbRow) -> StoreResult<KeyRecord> {
    let status = r.need_text("status")?;
    Ok(KeyRecord {
        id: r.need_text("id")?.into(),
        org_id: r.need_text("org_id")?.into(),
        user_id: r.need_text("user_id")?.into(),
        name: r.need_text("name")?,
        preview: r.need_text("preview")?,
        role: r.text("role")?.as_deref().map(parse_role).transpose()?,
        scopes: parse_scopes(&r.need_text("scopes")?)?,
        status: KeyStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("key status {status}")))?,
        created_at: r.need_int("created_at")?,
        expires_at: r.int("expires_at")?,
        allowed_cidrs: parse_json(&r.need_text("allowed_cidrs")?, "allowed_cidrs")?,
        last_used_at: r.int("last_used_at")?,
        last_used_ip: r.text("last_used_ip")?,
        revoked_at: r.int("revoked_at")?,
        rotated_from: r.text("rotated_from")?,
        approval: parse_policy(r.text("approval_kinds")?, r.int("approval_bulk_limit")?)?,
    })
}

impl Store {
    pub async fn get_key(&self, org_id: &OrgId, key_id: &KeyId) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = $1 AND k.id = $2");
        self.db.fetch_one(&sql, &[org_id.into(), key_id.into()]).await?.map(|mut r| key(&mut r)).transpose()
    }

    pub async fn list_keys(&self, org_id: &OrgId, include_revoked: bool) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = $1 AND (k.status <> 'revoked' OR $2) \
             ORDER BY k.created_at DESC, k.id DESC"
        );
        self.db.fetch(&sql, &[org_id.into(), include_revoked.into()]).await?.iter_mut().map(key).collect()
    }

    /// The key whose digest this is, with its owner and organization. A key is found by its
    /// secret, or by its previous secret during a rotation's grace period (`via_grace` says
    /// which; `grace_until` bounds it).
    pub async fn key_for_auth(&self, digest: &KeyDigest) -> StoreResult<Option<KeyAuth>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {KEY_COLS}, u.id AS u_id, u.org_id AS u_org_id, u.email AS u_email, u.name AS u_name, \
                 u.role AS u_role, u.active AS u_active, u.created_at AS u_created_at, o.id AS o_id, \
                 o.name AS o_name, o.created_at AS o_created_at, COALESCE(k.grace_digest = $1, FALSE) AS via_grace, \
                 k.grace_until \
                 FROM api_keys k JOIN users u ON u.id = k.user_id JOIN orgs o ON o.id = k.org_id \
                 WHERE k.digest = $1 OR k.grace_digest = $1"
            )
        });
        let Some(mut r) = self.db.fetch_one(&SQL, &[digest.as_str().into()]).await? else { return Ok(None) };
        Ok(Some(KeyAuth {
            key: key(&mut r)?,
            user: user_as(&mut r, "u_")?,
            org: org_as(&mut r, "o_")?,
            via_grace: r.bool("via_grace")?,
            grace_until: r.int("grace_until")?,
        }))
    }

    /// Records the latest use of each key; an older use never overwrites a newer one.
    pub async fn record_key_uses(&self, uses: &[KeyUse]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for u in uses {
            tx.execute(
                "UPDATE api_keys SET last_used_at = $1, last_used_ip = $2 \
                 WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)",
                &[u.at.into(), (&u.ip).into(), (&u.key_id).into()],
            )
            .await?;
        }
        tx.commit().await
    }
}

impl Tx {
    pub async fn count_enabled_keys(&mut self, org_id: &OrgId) -> StoreResult<u64> {
        let n = self
            .scalar("SELECT COUNT(*) FROM api_keys WHERE org_id = $1 AND status = 'enabled'", &[org_id.into()])
            .await?;
        Ok(n as u64)
    }

    pub async fn insert_key(&mut self, key: &KeyRecord, digest: &KeyDigest) -> StoreResult<()> {
        let [a, b] = policy_values(key.approval.as_ref());
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        self.execute(
            "INSERT INTO api_keys (id, org_id, user_id, name, digest, preview, role, scopes, status, created_at, \
             expires_at, allowed_cidrs, rotated_from, approval_kinds, approval_bulk_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                (&key.id).into(),
                (&key.org_id).into(),
                (&key.user_id).into(),
                (&key.name).into(),
                digest.as_str().into(),
                (&key.preview).into(),
                key.role.map(Role::as_str).into(),
                json_text(&scopes).into(),
                key.status.as_str().into(),
                key.created_at.into(),
                key.expires_at.into(),
                json_text(&key.allowed_cidrs).into(),
                (&key.rotated_from).into(),
                a,
                b,
            ],
        )
        .await
        .map_err(|e| e.on_write("a key with this secret"))?;
        Ok(())
    }

    pub async fn get_key(&mut self, org_id: &OrgId, key_id: &KeyId) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.org_id = $1 AND k.id = $2");
        self.fetch_one(&sql, &[org_id.into(), key_id.into()]).await?.map(|mut r| key(&mut r)).transpose()
    }

    /// Applies `change` to the key (limits are the domain's to check first).
    pub async fn change_key(&mut self, org_id: &OrgId, key_id: &KeyId, change: &KeyChange) -> StoreResult<()> {
        let (org, id) = (SqlValue::from(org_id), SqlValue::from(key_id));
        let done = match change {
            KeyChange::Rename(name) => {
                self.execute("UPDATE api_keys SET name = $3 WHERE org_id = $1 AND id = $2", &[org, id, name.into()])
                    .await?
            }
            KeyChange::Disable | KeyChange::Enable { .. } | KeyChange::Revoke { .. } => {
                let (status, at) = match change {
                    KeyChange::Disable => (KeyStatus::Disabled, 0),
                    KeyChange::Revoke { at } => (KeyStatus::Revoked, *at),
                    _ => (KeyStatus::Enabled, 0),
                };
                self.execute(
                    "UPDATE api_keys SET status = $3, revoked_at = CASE WHEN $3 = 'revoked' THEN $4 ELSE revoked_at END \
                     WHERE org_id = $1 AND id = $2",
                    &[org, id, status.as_str().into(), at.into()],
                )
                .await?
            }
            // The right-hand sides see the row as it was: the old secret's digest moves to
            // `grace_digest` (when there is a grace period) and the old preview to `rotated_from`.
            KeyChange::Rotate { digest, preview, grace_until } => self
                .execute(
                    "UPDATE api_keys SET grace_digest = CASE WHEN $5 IS NULL THEN NULL ELSE digest END, \
                     grace_until = $5, rotated_from = preview, digest = $3, preview = $4 WHERE org_id = $1 AND id = $2",
                    &[org, id, digest.as_str().into(), preview.into(), (*grace_until).into()],
                )
                .await
                .map_err(|e| e.on_write("a key with this secret"))?,
            KeyChange::Delete => self.execute("DELETE FROM api_keys WHERE org_id = $1 AND id = $2", &[org, id]).await?,
            KeyChange::Approval(policy) => {
                let [kinds, limit] = policy_values(policy.as_ref());
                self.execute(
                    "UPDATE api_keys SET approval_kinds = $3, approval_bulk_limit = $4 WHERE org_id = $1 AND id = $2",
                    &[org, id, kinds, limit],
                )
                .await?
            }
        };
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.auth_changed();
        Ok(())
    }
}
