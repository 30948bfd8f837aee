//! Approvals (SPEC 12): calls held for a person. A decision moves an approval out of
//! `pending` with one conditional update, so it is taken once whatever races it, in any
//! number of processes.

use rapport_tools::approvals::ApprovalKind;

use super::db::DbRow;
use super::*;
use crate::time::Millis;

const COLS: &str = "id, org_id, key_id, tool, arguments, idempotency_key, kinds, summary, changes, via, state, \
     created_at, expires_at, decided_at, decided_by, decided_by_email, reason, result";

/// Most approvals one key may have pending.
pub const MAX_PENDING_PER_KEY: i64 = 100;

fn approval(mut r: DbRow) -> StoreResult<Approval> {
    let state = r.need_text("state")?;
    let kinds: Vec<String> = parse_json(&r.need_text("kinds")?, "approval kinds")?;
    Ok(Approval {
        id: r.need_text("id")?,
        org_id: r.need_text("org_id")?.into(),
        key_id: r.need_text("key_id")?.into(),
        tool: r.need_text("tool")?,
        arguments: parse_json(&r.need_text("arguments")?, "approval arguments")?,
        idempotency_key: r.text("idempotency_key")?,
        kinds: kinds.iter().filter_map(|k| ApprovalKind::parse(k).ok()).collect(),
        summary: r.need_text("summary")?,
        changes: parse_json(&r.need_text("changes")?, "approval changes")?,
        via: parse_json(&r.need_text("via")?, "approval via")?,
        state: ApprovalState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("approval state {state}")))?,
        created_at: r.need_int("created_at")?,
        expires_at: r.need_int("expires_at")?,
        decided_at: r.int("decided_at")?,
        decided_by: r.text("decided_by")?.map(UserId::from),
        decided_by_email: r.text("decided_by_email")?,
        reason: r.text("reason")?,
        result: r.text("result")?.map(|t| parse_json(&t, "approval result")).transpose()?,
    })
}

/// What asking for an approval came to.
#[derive(Debug, Clone)]
pub enum Requested {
    /// Held, as given.
    New,
    /// The key asked before with the same `idempotency_key`: that approval.
    Existing(Box<Approval>),
    /// The key has `MAX_PENDING_PER_KEY` approvals pending already.
    Full,
}

/// Which approvals a list shows.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub state: Option<String>,
    pub key_id: Option<KeyId>,
}

/// The approval a key asked with an idempotency key.
static BY_IDEMPOTENCY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLS} FROM approvals WHERE key_id = $1 AND idempotency_key = $2"));

impl Store {
    /// Holds `a`, with its audit entry and webhook events, unless the key asked the same
    /// (by idempotency key) before or has too many pending.
    pub async fn request_approval(
        &self,
        a: &Approval,
        audit: &AuditEntry,
        events: &[OrgEvent],
    ) -> StoreResult<Requested> {
        let mut tx = self.begin().await?;
        if let Some(idem) = &a.idempotency_key
            && let Some(r) = tx.fetch_one(&BY_IDEMPOTENCY, &[(&a.key_id).into(), idem.into()]).await?
        {
            return Ok(Requested::Existing(Box::new(approval(r)?)));
        }
        let pending = tx
            .scalar(
                "SELECT COUNT(*) FROM approvals WHERE key_id = $1 AND state = 'pending' AND expires_at > $2",
                &[(&a.key_id).into(), a.created_at.into()],
            )
            .await?;
        if pending >= MAX_PENDING_PER_KEY {
            return Ok(Requested::Full);
        }
        let kinds: Vec<&str> = a.kinds.iter().map(|k| k.as_str()).collect();
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO approvals ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18)"
                ),
                &[
                    (&a.id).into(),
                    (&a.org_id).into(),
                    (&a.key_id).into(),
                    (&a.tool).into(),
                    json_text(&a.arguments).into(),
                    (&a.idempotency_key).into(),
                    json_text(&kinds).into(),
                    (&a.summary).into(),
                    json_text(&a.changes).into(),
                    json_text(&a.via).into(),
                    a.state.as_str().into(),
                    a.created_at.into(),
                    a.expires_at.into(),
                    a.decided_at.into(),
                    (&a.decided_by).into(),
                    (&a.decided_by_email).into(),
                    (&a.reason).into(),
                    a.result.as_ref().map(json_text).into(),
                ],
            )
            .await;
        match inserted.map_err(|e| e.on_write("approval")) {
            Ok(_) => {}
            // The same idempotency key, asked at the same moment: the other one stands.
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let idem = a.idempotency_key.as_deref().unwrap_or_default();
                let other = self.approval_by_idempotency(&a.key_id, idem).await?;
                return Ok(Requested::Existing(Box::new(other.ok_or(StoreError::NotFound)?)));
            }
            Err(e) => return Err(e),
        }
        tx.insert_audit(audit).await?;
        for e in events {
            tx.queue_event(e).await?;
        }
        tx.commit().await?;
        Ok(Requested::New)
    }

    /// What the key asked with this idempotency key, if it did.
    pub async fn approval_by_idempotency(&self, key_id: &KeyId, idem: &str) -> StoreResult<Option<Approval>> {
        self.db.fetch_one(&BY_IDEMPOTENCY, &[key_id.into(), idem.into()]).await?.map(approval).transpose()
    }

    pub async fn approval(&self, org_id: &OrgId, id: &str) -> StoreResult<Option<Approval>> {
        let sql = format!("SELECT {COLS} FROM approvals WHERE org_id = $1 AND id = $2");
        self.db.fetch_one(&sql, &[org_id.into(), id.into()]).await?.map(approval).transpose()
    }

    /// Newest first; `before` is the `(created_at, id)` of the previous page's last one.
    pub async fn list_approvals(
        &self,
        org_id: &OrgId,
        filter: &ApprovalFilter,
        before: Option<(Millis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Approval>> {
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {COLS} FROM approvals WHERE org_id = "));
        sql.bind(org_id.into());
        sql.and_equal([("state", (&filter.state).into()), ("key_id", (&filter.key_id).into())]);
        if let Some((at, id)) = &before {
            sql.push(" AND (created_at, id) < (").bind((*at).into()).push(", ").bind(id.into()).push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC");
        sql.limit(limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(approval).collect()
    }

    /// How many approvals of the organization wait for a person.
    pub async fn count_pending_approvals(&self, org_id: &OrgId, now: Millis) -> StoreResult<i64> {
        let row = self
            .db
            .fetch_one(
                "SELECT COUNT(*) FROM approvals WHERE org_id = $1 AND state = 'pending' AND expires_at > $2",
                &[org_id.into(), now.into()],
            )
            .await?;
        row.map_or(Ok(0), |mut r| r.need_int(&r.sole()?))
    }

    /// Ends what waited past its expiry (`expired`); answers how many. Reads call it, so
    /// it writes (and on SQLite takes the write lock) only when something is due.
    pub async fn expire_approvals(&self, now: Millis) -> StoreResult<u64> {
        let due = "SELECT 1 FROM approvals WHERE state = 'pending' AND expires_at <= $1 LIMIT 1";
        if self.db.fetch_one(due, &[now.into()]).await?.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE approvals SET state = 'expired', decided_at = expires_at \
                 WHERE state = 'pending' AND expires_at <= $1",
                &[now.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Takes the decision `decided` holds (its state, who and when, the reason) on an
    /// approval still pending, with its audit entry and events, in one transaction; `false`
    /// when it was no longer pending (decided by someone else, or expired).
    pub async fn decide_approval(
        &self,
        decided: &Approval,
        audit: &AuditEntry,
        events: &[OrgEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let at = decided.decided_at.unwrap_or_else(crate::time::now_ms);
        let taken = tx
            .execute(
                "UPDATE approvals SET state = $3, decided_at = $4, decided_by = $5, decided_by_email = $6, reason = $7 \
                 WHERE org_id = $1 AND id = $2 AND state = 'pending' AND expires_at > $4",
                &[
                    (&decided.org_id).into(),
                    (&decided.id).into(),
                    decided.state.as_str().into(),
                    at.into(),
                    (&decided.decided_by).into(),
                    (&decided.decided_by_email).into(),
                    (&decided.reason).into(),
                ],
            )
            .await?;
        if taken == 0 {
            return Ok(false);
        }
        tx.insert_audit(audit).await?;
        for e in events {
            tx.queue_event(e).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records how an approved call ended (`a`'s state, answer and reason): its answer, or
    /// `stale` with why.
    pub async fn finish_approval(
        &self,
        a: &Approval,
        audit: Option<&AuditEntry>,
        events: &[OrgEvent],
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            "UPDATE approvals SET state = $3, result = $4, reason = COALESCE($5, reason) WHERE org_id = $1 AND id = $2",
            &[
                (&a.org_id).into(),
                (&a.id).into(),
                a.state.as_str().into(),
                a.result.as_ref().map(json_text).into(),
                (&a.reason).into(),
            ],
        )
        .await?;
        if let Some(entry) = audit {
            tx.insert_audit(entry).await?;
        }
        for e in events {
            tx.queue_event(e).await?;
        }
        tx.commit().await
    }
}
