//! The web console's state: sessions, one-time links (setup, invitations), passwords and
//! failed logins. Secrets arrive here as SHA-256 digests only.

use super::db::{DbRow, Tx};
use super::users::{org_as, user, user_as};
use super::*;
use crate::time::Millis;

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// The first owner's password, or a recovery (`rapport setup-link`).
    Setup,
    /// A user invited from the console.
    Invite,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Setup => "setup",
            LinkPurpose::Invite => "invite",
        }
    }
}

/// A live session: who it belongs to and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: User,
    pub org: Org,
    pub csrf: String,
    pub seen_at: Millis,
}

/// A user who may log in with a password, with the hash to check it against.
#[derive(Debug, Clone)]
pub struct LoginCandidate {
    pub user: User,
    pub org: Org,
    pub password_hash: Option<String>,
}

/// A user and their organization, in a join of `users u` and `orgs o`.
const USER_ORG_COLS: &str = "u.id AS u_id, u.org_id AS u_org_id, u.email AS u_email, u.name AS u_name, \
     u.role AS u_role, u.active AS u_active, u.created_at AS u_created_at, \
     o.id AS o_id, o.name AS o_name, o.created_at AS o_created_at";

fn user_and_org(r: &mut DbRow) -> StoreResult<(User, Org)> {
    Ok((user_as(r, "u_")?, org_as(r, "o_")?))
}

/// Which change-log entries the Activity page shows.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub key_id: Option<KeyId>,
    pub user_id: Option<UserId>,
    pub entity: Option<String>,
    pub record_id: Option<String>,
    /// How they came (SPEC 12): the client's name, the tool, one call's request id, a trace.
    pub client: Option<String>,
    pub tool: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// Made at or after `since` and before `until`.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only entries about these entities (those the reader may read), when given.
    pub visible: Option<Vec<&'static str>>,
}

impl Store {
    /// The session whose token has this digest, with its user and organization, if the
    /// user is active.
    pub async fn session(&self, digest: &str) -> StoreResult<Option<SessionRow>> {
        let sql = format!(
            "SELECT {USER_ORG_COLS}, s.csrf, s.seen_at FROM sessions s JOIN users u ON u.id = s.user_id \
             JOIN orgs o ON o.id = u.org_id WHERE s.digest = $1 AND u.active = $2"
        );
        let Some(mut r) = self.db.fetch_one(&sql, &[digest.into(), true.into()]).await? else { return Ok(None) };
        let (user, org) = user_and_org(&mut r)?;
        Ok(Some(SessionRow { user, org, csrf: r.need_text("csrf")?, seen_at: r.need_int("seen_at")? }))
    }

    /// Marks a session as used now (the idle timeout counts from here).
    pub async fn touch_session(&self, digest: &str, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("UPDATE sessions SET seen_at = $2 WHERE digest = $1", &[digest.into(), now.into()]).await?;
        tx.commit().await
    }

    pub async fn delete_session(&self, digest: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM sessions WHERE digest = $1", &[digest.into()]).await?;
        tx.commit().await
    }

    /// Everyone with this email, in every organization, who could log in.
    pub async fn login_candidates(&self, email: &str) -> StoreResult<Vec<LoginCandidate>> {
        let sql = format!(
            "SELECT {USER_ORG_COLS}, u.password_hash FROM users u JOIN orgs o ON o.id = u.org_id \
             WHERE u.email = $1 ORDER BY o.name"
        );
        let rows = self.db.fetch(&sql, &[email.into()]).await?;
        rows.into_iter()
            .map(|mut r| {
                let (user, org) = user_and_org(&mut r)?;
                Ok(LoginCandidate { user, org, password_hash: r.text("password_hash")? })
            })
            .collect()
    }

    /// Whether the user has chosen a password (an invitation not yet accepted has none).
    pub async fn has_password(&self, user_id: &UserId) -> StoreResult<bool> {
        let sql = "SELECT 1 FROM users WHERE id = $1 AND password_hash IS NOT NULL";
        Ok(self.db.fetch_one(sql, &[user_id.into()]).await?.is_some())
    }

    /// Whether some active user of the organization can log in.
    pub async fn org_has_login(&self, org_id: &OrgId) -> StoreResult<bool> {
        let sql = "SELECT 1 FROM users WHERE org_id = $1 AND active = $2 AND password_hash IS NOT NULL LIMIT 1";
        Ok(self.db.fetch_one(sql, &[org_id.into(), true.into()]).await?.is_some())
    }

    pub async fn user_by_id(&self, org_id: &OrgId, id: &UserId) -> StoreResult<Option<User>> {
        let sql = "SELECT id, org_id, email, name, role, active, created_at FROM users WHERE org_id = $1 AND id = $2";
        let row = self.db.fetch_one(sql, &[org_id.into(), id.into()]).await?;
        row.map(|mut r| user(&mut r)).transpose()
    }

    /// The user a live one-time link stands for.
    pub async fn link_token(
        &self,
        digest: &str,
        purpose: LinkPurpose,
        now: Millis,
    ) -> StoreResult<Option<(User, Org)>> {
        let sql = format!(
            "SELECT {USER_ORG_COLS} FROM link_tokens t JOIN users u ON u.id = t.user_id \
             JOIN orgs o ON o.id = u.org_id WHERE t.digest = $1 AND t.purpose = $2 AND t.expires_at > $3 \
             AND u.active = $4"
        );
        let row = self.db.fetch_one(&sql, &[digest.into(), purpose.as_str().into(), now.into(), true.into()]).await?;
        row.map(|mut r| user_and_org(&mut r)).transpose()
    }

    /// Notes a login attempt against each subject, then answers, per subject, how many
    /// attempts it has since `since` (this one included), when the oldest of those was made,
    /// and when the newest other than this one was. Written first and counted after, so
    /// concurrent attempts all count.
    pub async fn login_attempt(
        &self,
        attempt: &str,
        subjects: &[String],
        now: Millis,
        since: Millis,
    ) -> StoreResult<Vec<(u64, Option<Millis>, Option<Millis>)>> {
        let mut tx = self.begin().await?;
        for s in subjects {
            tx.execute(
                "INSERT INTO login_failures (attempt, subject, at) VALUES ($1, $2, $3)",
                &[attempt.into(), s.into(), now.into()],
            )
            .await?;
        }
        tx.commit().await?;
        let mut counts = Vec::with_capacity(subjects.len());
        for s in subjects {
            let row = self
                .db
                .fetch_one(
                    "SELECT COUNT(*) AS n, MIN(at) AS first_at, MAX(CASE WHEN attempt <> $3 THEN at END) AS last_at FROM login_failures \
                     WHERE subject = $1 AND at > $2",
                    &[s.into(), since.into(), attempt.into()],
                )
                .await?;
            counts.push(match row {
                Some(mut r) => (r.need_int("n")? as u64, r.int("first_at")?, r.int("last_at")?),
                None => (0, None, None),
            });
        }
        Ok(counts)
    }

    /// An attempt refused by the limit was never tried: it does not count, so that an
    /// address held back cannot keep an account over its limit by knocking.
    pub async fn forget_login_attempt(&self, attempt: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM login_failures WHERE attempt = $1", &[attempt.into()]).await?;
        tx.commit().await
    }

    /// A login succeeded: its attempt was no failure, and the counts of `subjects` (the
    /// account's) start over.
    pub async fn login_succeeded(&self, attempt: &str, subjects: &[&str]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM login_failures WHERE attempt = $1", &[attempt.into()]).await?;
        for s in subjects {
            tx.execute("DELETE FROM login_failures WHERE subject = $1", &[(*s).into()]).await?;
        }
        tx.commit().await
    }

    /// Forgets failed logins older than `failures_before`, sessions idle since
    /// `sessions_before`, and expired links.
    pub async fn expire_console(
        &self,
        failures_before: Millis,
        sessions_before: Millis,
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM login_failures WHERE at <= $1", &[failures_before.into()]).await?;
        tx.execute("DELETE FROM sessions WHERE seen_at <= $1", &[sessions_before.into()]).await?;
        tx.execute("DELETE FROM link_tokens WHERE expires_at <= $1", &[now.into()]).await?;
        tx.commit().await
    }

    /// The values the change log holds in a `via` column (`client_name` or `tool`), for a
    /// filter's choices.
    pub async fn change_values(&self, org_id: &OrgId, column: &'static str) -> StoreResult<Vec<String>> {
        debug_assert!(matches!(column, "client_name" | "tool"));
        let sql = format!(
            "SELECT DISTINCT {column} FROM changes WHERE org_id = $1 AND {column} IS NOT NULL ORDER BY {column} LIMIT 200"
        );
        self.db.fetch(&sql, &[org_id.into()]).await?.into_iter().map(|mut r| r.need_text(column)).collect()
    }

    /// The organization's change log, newest first, narrowed by `filter`.
    pub async fn list_changes(
        &self,
        org_id: &OrgId,
        filter: &ChangeFilter,
        before: Option<(Millis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Change>> {
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {} FROM changes WHERE org_id = ", changes::CHANGE_COLS));
        sql.bind(org_id.into());
        sql.and_equal([
            ("key_id", (&filter.key_id).into()),
            ("user_id", (&filter.user_id).into()),
            ("entity", (&filter.entity).into()),
            ("record_id", (&filter.record_id).into()),
            ("client_name", (&filter.client).into()),
            ("tool", (&filter.tool).into()),
            ("request_id", (&filter.request_id).into()),
            ("trace_id", (&filter.trace_id).into()),
        ]);
        if let Some(since) = filter.since {
            sql.push(" AND at >= ").bind(since.into());
        }
        if let Some(until) = filter.until {
            sql.push(" AND at < ").bind(until.into());
        }
        if let Some(visible) = &filter.visible {
            sql.and_visible_changes(visible);
        }
        sql.newest_first(before.as_ref(), limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(changes::change).collect()
    }
}

impl Tx {
    pub async fn insert_session(
        &mut self,
        digest: &str,
        user_id: &UserId,
        csrf: &str,
        now: Millis,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO sessions (digest, user_id, csrf, created_at, seen_at, ip) VALUES ($1, $2, $3, $4, $4, $5)",
            &[digest.into(), user_id.into(), csrf.into(), now.into(), ip.into()],
        )
        .await?;
        Ok(())
    }

    /// Ends every session of a user (deactivated, or a new password).
    pub async fn delete_user_sessions(&mut self, user_id: &UserId) -> StoreResult<u64> {
        self.execute("DELETE FROM sessions WHERE user_id = $1", &[user_id.into()]).await
    }

    pub async fn insert_link_token(
        &mut self,
        digest: &str,
        purpose: LinkPurpose,
        user_id: &UserId,
        now: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO link_tokens (digest, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[digest.into(), purpose.as_str().into(), user_id.into(), now.into(), expires_at.into()],
        )
        .await?;
        Ok(())
    }

    /// Uses a one-time link: the user it stands for, with every other link of that user
    /// spent too (whatever it was for: once a password is chosen, no old link may reset it). `None` when it is unknown, spent or expired.
    pub async fn take_link_token(
        &mut self,
        digest: &str,
        purpose: LinkPurpose,
        now: Millis,
    ) -> StoreResult<Option<UserId>> {
        let row = self
            .fetch_one(
                "SELECT user_id FROM link_tokens WHERE digest = $1 AND purpose = $2 AND expires_at > $3",
                &[digest.into(), purpose.as_str().into(), now.into()],
            )
            .await?;
        let Some(mut r) = row else { return Ok(None) };
        let user_id = UserId::from(r.need_text("user_id")?);
        // Deleting is what spends it: of two concurrent uses, one deletes nothing.
        let spent = self.execute("DELETE FROM link_tokens WHERE digest = $1", &[digest.into()]).await?;
        if spent == 0 {
            return Ok(None);
        }
        self.delete_user_links(&user_id).await?;
        Ok(Some(user_id))
    }

    /// Sets a password; any link that could set another is spent.
    pub async fn set_password(&mut self, user_id: &UserId, hash: &str) -> StoreResult<()> {
        let done =
            self.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[user_id.into(), hash.into()]).await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.delete_user_links(user_id).await
    }

    /// Spends every one-time link of a user (a password set, a deactivation).
    pub async fn delete_user_links(&mut self, user_id: &UserId) -> StoreResult<()> {
        self.execute("DELETE FROM link_tokens WHERE user_id = $1", &[user_id.into()]).await?;
        Ok(())
    }
}
