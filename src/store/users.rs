//! Organizations and their users.

use rapport_tools::Role;

use super::db::{DbRow, Tx};
use super::*;

const USER_COLS: &str = "id, org_id, email, name, role, active, created_at";

fn org(mut r: DbRow) -> StoreResult<Org> {
    org_as(&mut r, "")
}

/// An organization from its columns, each name starting with `prefix`.
pub(super) fn org_as(r: &mut DbRow, prefix: &str) -> StoreResult<Org> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Org {
        id: r.need_text(&c("id"))?.into(),
        name: r.need_text(&c("name"))?,
        created_at: r.need_int(&c("created_at"))?,
    })
}

/// A user from `USER_COLS`.
pub(super) fn user(r: &mut DbRow) -> StoreResult<User> {
    user_as(r, "")
}

/// A user from its columns, each name starting with `prefix`.
pub(super) fn user_as(r: &mut DbRow, prefix: &str) -> StoreResult<User> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(User {
        id: r.need_text(&c("id"))?.into(),
        org_id: r.need_text(&c("org_id"))?.into(),
        email: r.need_text(&c("email"))?,
        name: r.text(&c("name"))?,
        role: parse_role(&r.need_text(&c("role"))?)?,
        active: r.bool(&c("active"))?,
        created_at: r.need_int(&c("created_at"))?,
    })
}

pub(super) fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse().map_err(StoreError::Corrupt)
}

impl Store {
    pub async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        self.db.fetch("SELECT id, name, created_at FROM orgs ORDER BY name", &[]).await?.into_iter().map(org).collect()
    }

    pub async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        let row = self.db.fetch_one("SELECT id, name, created_at FROM orgs WHERE name = $1", &[name.into()]).await?;
        row.map(org).transpose()
    }

    pub async fn org_by_id(&self, id: &OrgId) -> StoreResult<Option<Org>> {
        let row = self.db.fetch_one("SELECT id, name, created_at FROM orgs WHERE id = $1", &[id.into()]).await?;
        row.map(org).transpose()
    }

    pub async fn user_by_email(&self, org_id: &OrgId, email: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE org_id = $1 AND email = $2");
        let row = self.db.fetch_one(&sql, &[org_id.into(), email.into()]).await?;
        row.map(|mut r| user(&mut r)).transpose()
    }

    /// The organization's first active owner by creation time.
    pub async fn first_owner(&self, org_id: &OrgId) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE org_id = $1 AND role = 'owner' AND active = $2 \
             ORDER BY created_at, id LIMIT 1"
        );
        let row = self.db.fetch_one(&sql, &[org_id.into(), true.into()]).await?;
        row.map(|mut r| user(&mut r)).transpose()
    }

    /// Which of these ids are users of the organization.
    pub async fn existing_users(&self, org_id: &OrgId, ids: &[String]) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = query::Sql::new(self.dialect());
        sql.push("SELECT id FROM users WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND id IN ");
        sql.bind_list(ids.iter().map(SqlValue::from));
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(|mut r| r.need_text("id")).collect()
    }

    pub async fn list_users(&self, org_id: &OrgId) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE org_id = $1 ORDER BY created_at, id");
        self.db.fetch(&sql, &[org_id.into()]).await?.into_iter().map(|mut r| user(&mut r)).collect()
    }
}

impl Tx {
    pub async fn count_orgs(&mut self) -> StoreResult<i64> {
        self.scalar("SELECT COUNT(*) FROM orgs", &[]).await
    }

    /// `Conflict` when the name is taken.
    pub async fn insert_org(&mut self, org: &Org) -> StoreResult<()> {
        self.execute(
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
            &[(&org.id).into(), (&org.name).into(), org.created_at.into()],
        )
        .await
        .map_err(|e| e.on_write("an organization with this name"))?;
        Ok(())
    }

    pub async fn insert_user(&mut self, user: &User) -> StoreResult<()> {
        self.execute(
            "INSERT INTO users (id, org_id, email, name, role, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&user.id).into(),
                (&user.org_id).into(),
                (&user.email).into(),
                (&user.name).into(),
                user.role.as_str().into(),
                user.active.into(),
                user.created_at.into(),
            ],
        )
        .await
        .map_err(|e| e.on_write("a user with this email"))?;
        Ok(())
    }

    pub async fn user_by_email(&mut self, org_id: &OrgId, email: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE org_id = $1 AND email = $2");
        let row = self.fetch_one(&sql, &[org_id.into(), email.into()]).await?;
        row.map(|mut r| user(&mut r)).transpose()
    }

    /// Active owners of the organization other than `except_user_id`.
    pub async fn other_active_owners(&mut self, org_id: &OrgId, except_user_id: &UserId) -> StoreResult<u64> {
        let n = self
            .scalar(
                "SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'owner' AND active = $2 AND id <> $3",
                &[org_id.into(), true.into(), except_user_id.into()],
            )
            .await?;
        Ok(n as u64)
    }

    /// Sets a user's role and whether they are active; `NotFound` when there is no such user.
    pub async fn update_user(&mut self, org_id: &OrgId, user_id: &UserId, role: Role, active: bool) -> StoreResult<()> {
        let done = self
            .execute(
                "UPDATE users SET role = $3, active = $4 WHERE org_id = $1 AND id = $2",
                &[org_id.into(), user_id.into(), role.as_str().into(), active.into()],
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.auth_changed();
        Ok(())
    }
}
