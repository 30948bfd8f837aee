//! The two `Store` implementations. Their bodies are one macro over the sqlx database
//! type: the SQL is the same (placeholders `$n`, `RETURNING`, row values), the Rust is the
//! same, and what differs (pools, the write transaction, locking) is passed in.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rapport_tools::Role;
use rapport_tools::records::Entity;
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Pool, Row as _, Sqlite};

use super::decode;
use super::fast::FastReader;
use super::query::{Dialect, Predicate, Query, Sql, SqlValue, table};
use super::sql::*;
use super::*;
use crate::auth::key::KeyDigest;

pub struct SqliteStore {
    /// One connection: SQLite has one writer at a time, and queuing here beats
    /// "database is locked".
    write: Pool<Sqlite>,
    read: Pool<Sqlite>,
    /// Hot-path reads without sqlx's thread hop, and the change counter cached
    /// authentication checks; `None` for an in-memory database.
    fast: Option<FastReader>,
}

pub struct PgStore {
    write: Pool<Postgres>,
    read: Pool<Postgres>,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss too, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let file = options.get_filename().to_path_buf();
        let on_disk = !file.as_os_str().is_empty() && file != std::path::Path::new(":memory:");
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        let fast = if on_disk { Some(FastReader::open(&file, 4)?) } else { None };
        Ok(SqliteStore { write, read, fast })
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { write: pool.clone(), read: pool })
    }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn map_write_error(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what.to_owned()),
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
        _ => StoreError::Database(e),
    }
}

fn ids_sql(dialect: Dialect, prefix: &str, org_id: &str, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(prefix);
    sql.push(" WHERE org_id = ");
    sql.bind(SqlValue::Text(org_id.to_owned()));
    sql.push(" AND id IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(SqlValue::Text(id.clone()));
    }
    sql.push(")");
    sql
}

fn select_cols(entity: Entity) -> &'static str {
    match entity {
        Entity::Contact => CONTACT_COLS,
        Entity::Company => COMPANY_COLS,
    }
}

macro_rules! impl_store {
    ($store:ident, $db:ty, $dialect:expr, $begin:literal, $lock_org:expr) => {
        impl $store {
            fn bind_all<'q>(
                mut q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                binds: &'q [SqlValue],
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                for b in binds {
                    q = match b {
                        SqlValue::Text(s) => q.bind(s.as_str()),
                        SqlValue::Int(i) => q.bind(*i),
                        SqlValue::Float(f) => q.bind(*f),
                        SqlValue::Bool(v) => q.bind(*v),
                    };
                }
                q
            }

            async fn write_row(
                tx: &mut sqlx::Transaction<'static, $db>,
                org_id: &str,
                row: &Row,
                expected: Option<Millis>,
            ) -> StoreResult<u64> {
                let search = row.search_text();
                let query = match row {
                    Row::Contact(c) => sqlx::query(if expected.is_some() { UPDATE_CONTACT } else { INSERT_CONTACT })
                        .bind(&c.id)
                        .bind(org_id)
                        .bind(&c.first_name)
                        .bind(&c.last_name)
                        .bind(&c.email)
                        .bind(&c.phone)
                        .bind(&c.title)
                        .bind(&c.company_id)
                        .bind(&c.owner_id)
                        .bind(json_text(&c.tags))
                        .bind(json_text(&c.custom))
                        .bind(search)
                        .bind(c.created_at)
                        .bind(c.updated_at),
                    Row::Company(c) => sqlx::query(if expected.is_some() { UPDATE_COMPANY } else { INSERT_COMPANY })
                        .bind(&c.id)
                        .bind(org_id)
                        .bind(&c.name)
                        .bind(&c.domain)
                        .bind(&c.industry)
                        .bind(&c.owner_id)
                        .bind(json_text(&c.tags))
                        .bind(json_text(&c.custom))
                        .bind(search)
                        .bind(c.created_at)
                        .bind(c.updated_at),
                };
                let result = match expected {
                    Some(e) => query.bind(e).execute(&mut **tx).await,
                    None => query.execute(&mut **tx).await,
                };
                let what = match row {
                    Row::Contact(_) => "a contact with this id",
                    Row::Company(_) => "a company with this domain",
                };
                Ok(result.map_err(|e| map_write_error(e, what))?.rows_affected())
            }
        }

        #[async_trait]
        impl Store for $store {
            fn dialect(&self) -> Dialect {
                $dialect
            }

            fn auth_generation(&self) -> Option<u64> {
                self.generation()
            }

            async fn update_user(
                &self,
                org_id: &str,
                user_id: &str,
                role: Role,
                active: bool,
                audit: &AuditEntry,
            ) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                let done = sqlx::query(UPDATE_USER)
                    .bind(org_id)
                    .bind(user_id)
                    .bind(role.as_str())
                    .bind(active)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err(StoreError::NotFound);
                }
                Self::insert_audit_in(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn bootstrap(&self, org: &Org, owner: &User) -> StoreResult<bool> {
                let mut tx = self.write.begin_with($begin).await?;
                let n: i64 = sqlx::query_scalar(COUNT_ORGS).fetch_one(&mut *tx).await?;
                if n > 0 {
                    return Ok(false);
                }
                let inserted =
                    sqlx::query(INSERT_ORG).bind(&org.id).bind(&org.name).bind(org.created_at).execute(&mut *tx).await;
                match inserted {
                    // Another process starting at the same moment got there first.
                    Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(false),
                    other => other?,
                };
                Self::insert_user_in(&mut tx, owner).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_org(&self, org: &Org, owner: &User, audit: &AuditEntry) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                sqlx::query(INSERT_ORG)
                    .bind(&org.id)
                    .bind(&org.name)
                    .bind(org.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_write_error(e, "an organization with this name"))?;
                Self::insert_user_in(&mut tx, owner).await?;
                Self::insert_audit_in(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
                let rows = sqlx::query(LIST_ORGS).fetch_all(&self.read).await?;
                rows.iter().map(decode::org).collect()
            }

            async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
                let row = sqlx::query(ORG_BY_NAME).bind(name).fetch_optional(&self.read).await?;
                row.as_ref().map(decode::org).transpose()
            }

            async fn user_by_email(&self, org_id: &str, email: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(USER_BY_EMAIL).bind(org_id).bind(email).fetch_optional(&self.read).await?;
                row.as_ref().map(|r| decode::user_at(r, 0)).transpose()
            }

            async fn first_owner(&self, org_id: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(FIRST_OWNER).bind(org_id).bind(true).fetch_optional(&self.read).await?;
                row.as_ref().map(|r| decode::user_at(r, 0)).transpose()
            }

            async fn existing_users(&self, org_id: &str, ids: &[String]) -> StoreResult<Vec<String>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = ids_sql($dialect, "SELECT id FROM users", org_id, ids);
                let rows =
                    Self::bind_all(sqlx::query(AssertSqlSafe(sql.text)), &sql.binds).fetch_all(&self.read).await?;
                rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
            }

            async fn insert_key(
                &self,
                key: &KeyRecord,
                digest: &KeyDigest,
                max_active: u32,
                audit: &AuditEntry,
            ) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                if let Some(lock) = $lock_org {
                    sqlx::query(lock).bind(&key.org_id).execute(&mut *tx).await?;
                }
                let enabled: i64 = sqlx::query_scalar(COUNT_ENABLED_KEYS).bind(&key.org_id).fetch_one(&mut *tx).await?;
                if enabled >= i64::from(max_active) {
                    return Err(StoreError::KeyLimit(max_active));
                }
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                sqlx::query(INSERT_KEY)
                    .bind(&key.id)
                    .bind(&key.org_id)
                    .bind(&key.user_id)
                    .bind(&key.name)
                    .bind(digest.as_str())
                    .bind(&key.preview)
                    .bind(key.role.map(Role::as_str))
                    .bind(json_text(&scopes))
                    .bind(key.status.as_str())
                    .bind(key.created_at)
                    .bind(key.expires_at)
                    .bind(json_text(&key.allowed_cidrs))
                    .bind(&key.rotated_from)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_write_error(e, "a key with this secret"))?;
                Self::insert_audit_in(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_key(&self, org_id: &str, key_id: &str) -> StoreResult<Option<KeyRecord>> {
                let row = sqlx::query(GET_KEY).bind(org_id).bind(key_id).fetch_optional(&self.read).await?;
                row.as_ref().map(decode::key).transpose()
            }

            async fn change_key(
                &self,
                org_id: &str,
                key_id: &str,
                change: &KeyChange,
                audit: &AuditEntry,
            ) -> StoreResult<KeyRecord> {
                let mut tx = self.write.begin_with($begin).await?;
                if let (Some(lock), KeyChange::Enable { .. }) = ($lock_org, change) {
                    sqlx::query(lock).bind(org_id).execute(&mut *tx).await?;
                }
                let Some(row) = sqlx::query(GET_KEY).bind(org_id).bind(key_id).fetch_optional(&mut *tx).await? else {
                    return Err(StoreError::NotFound);
                };
                let before = decode::key(&row)?;
                match change {
                    KeyChange::Rename(name) => {
                        sqlx::query(RENAME_KEY).bind(org_id).bind(key_id).bind(name).execute(&mut *tx).await?;
                    }
                    KeyChange::Disable | KeyChange::Enable { .. } | KeyChange::Revoke { .. } => {
                        if let KeyChange::Enable { max_active } = change
                            && before.status != KeyStatus::Enabled
                        {
                            let enabled: i64 =
                                sqlx::query_scalar(COUNT_ENABLED_KEYS).bind(org_id).fetch_one(&mut *tx).await?;
                            if enabled >= i64::from(*max_active) {
                                return Err(StoreError::KeyLimit(*max_active));
                            }
                        }
                        let (status, at) = match change {
                            KeyChange::Disable => (KeyStatus::Disabled, 0),
                            KeyChange::Revoke { at } => (KeyStatus::Revoked, *at),
                            _ => (KeyStatus::Enabled, 0),
                        };
                        sqlx::query(SET_KEY_STATUS)
                            .bind(org_id)
                            .bind(key_id)
                            .bind(status.as_str())
                            .bind(at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    KeyChange::Rotate { digest, preview, grace_until } => {
                        sqlx::query(ROTATE_KEY)
                            .bind(org_id)
                            .bind(key_id)
                            .bind(digest.as_str())
                            .bind(preview)
                            .bind(*grace_until)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_write_error(e, "a key with this secret"))?;
                    }
                    KeyChange::Delete => {
                        sqlx::query(DELETE_KEY).bind(org_id).bind(key_id).execute(&mut *tx).await?;
                    }
                }
                let after = match change {
                    KeyChange::Delete => before,
                    _ => {
                        let row = sqlx::query(GET_KEY).bind(org_id).bind(key_id).fetch_one(&mut *tx).await?;
                        decode::key(&row)?
                    }
                };
                Self::insert_audit_in(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(after)
            }

            async fn create_user(&self, user: &User, audit: &AuditEntry) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                Self::insert_user_in(&mut tx, user).await?;
                Self::insert_audit_in(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_users(&self, org_id: &str) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(LIST_USERS).bind(org_id).fetch_all(&self.read).await?;
                rows.iter().map(|r| decode::user_at(r, 0)).collect()
            }

            async fn other_active_owners(&self, org_id: &str, except_user_id: &str) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar(COUNT_ACTIVE_OWNERS)
                    .bind(org_id)
                    .bind(true)
                    .bind(except_user_id)
                    .fetch_one(&self.read)
                    .await?;
                Ok(n as u64)
            }

            async fn list_keys(&self, org_id: &str, include_revoked: bool) -> StoreResult<Vec<KeyRecord>> {
                let rows = sqlx::query(LIST_KEYS).bind(org_id).bind(include_revoked).fetch_all(&self.read).await?;
                rows.iter().map(decode::key).collect()
            }

            async fn key_for_auth(&self, digest: &KeyDigest) -> StoreResult<Option<KeyAuth>> {
                if let Some(fast) = self.fast() {
                    return fast.key_for_auth(digest);
                }
                let row = sqlx::query(KEY_FOR_AUTH).bind(digest.as_str()).fetch_optional(&self.read).await?;
                row.as_ref().map(decode::key_auth).transpose()
            }

            async fn record_key_uses(&self, uses: &[KeyUse]) -> StoreResult<()> {
                if uses.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write.begin_with($begin).await?;
                for u in uses {
                    sqlx::query(RECORD_KEY_USE).bind(u.at).bind(&u.ip).bind(&u.key_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                Self::insert_audit_in(&mut tx, entry).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                org_id: &str,
                before: Option<(Millis, String)>,
                limit: u32,
            ) -> StoreResult<Vec<AuditEntry>> {
                let rows = match before {
                    None => sqlx::query(LIST_AUDIT).bind(org_id).bind(i64::from(limit)).fetch_all(&self.read).await?,
                    Some((at, id)) => {
                        sqlx::query(LIST_AUDIT_BEFORE)
                            .bind(org_id)
                            .bind(i64::from(limit))
                            .bind(at)
                            .bind(id)
                            .fetch_all(&self.read)
                            .await?
                    }
                };
                rows.iter().map(decode::audit).collect()
            }

            async fn custom_fields(&self, org_id: &str, entity: Entity) -> StoreResult<Vec<CustomFieldDef>> {
                let rows = sqlx::query(CUSTOM_FIELDS).bind(org_id).bind(entity.as_str()).fetch_all(&self.read).await?;
                rows.iter().map(decode::custom_field).collect()
            }

            async fn insert_rows(&self, org_id: &str, rows: &[Row]) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                for row in rows {
                    Self::write_row(&mut tx, org_id, row, None).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn update_rows(&self, org_id: &str, rows: &[(Row, Millis)]) -> StoreResult<()> {
                let mut tx = self.write.begin_with($begin).await?;
                for (row, expected) in rows {
                    if Self::write_row(&mut tx, org_id, row, Some(*expected)).await? == 0 {
                        let exists = match row {
                            Row::Contact(_) => ROW_EXISTS_CONTACT,
                            Row::Company(_) => ROW_EXISTS_COMPANY,
                        };
                        let n: i64 = sqlx::query_scalar(exists).bind(row.id()).bind(org_id).fetch_one(&mut *tx).await?;
                        return Err(if n == 0 { StoreError::NotFound } else { StoreError::Stale });
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_rows(&self, org_id: &str, entity: Entity, ids: &[String]) -> StoreResult<Vec<Row>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let prefix = format!("SELECT {} FROM {}", select_cols(entity), table(entity));
                let sql = ids_sql($dialect, &prefix, org_id, ids);
                if let Some(fast) = self.fast() {
                    return fast.rows(entity, &sql.text, &sql.binds);
                }
                let rows =
                    Self::bind_all(sqlx::query(AssertSqlSafe(sql.text)), &sql.binds).fetch_all(&self.read).await?;
                rows.iter().map(|r| decode::record(entity, r)).collect()
            }

            async fn search(&self, org_id: &str, query: &Query) -> StoreResult<Vec<Row>> {
                let mut sql = Sql::new($dialect);
                sql.push(&format!("SELECT {} FROM {} WHERE org_id = ", select_cols(query.entity), table(query.entity)));
                sql.bind(SqlValue::Text(org_id.to_owned()));
                sql.and_all(&query.filter);
                if let Some((values, id)) = &query.after {
                    sql.after(&query.sort, values, id);
                }
                sql.order_by(&query.sort);
                sql.push(" LIMIT ");
                sql.bind(SqlValue::Int(i64::from(query.limit)));
                if let Some(fast) = self.fast() {
                    return fast.rows(query.entity, &sql.text, &sql.binds);
                }
                let rows =
                    Self::bind_all(sqlx::query(AssertSqlSafe(sql.text)), &sql.binds).fetch_all(&self.read).await?;
                rows.iter().map(|r| decode::record(query.entity, r)).collect()
            }

            async fn count(&self, org_id: &str, entity: Entity, filter: &[Predicate]) -> StoreResult<u64> {
                let mut sql = Sql::new($dialect);
                sql.push(&format!("SELECT COUNT(*) FROM {} WHERE org_id = ", table(entity)));
                sql.bind(SqlValue::Text(org_id.to_owned()));
                sql.and_all(filter);
                if let Some(fast) = self.fast() {
                    return fast.count(&sql.text, &sql.binds);
                }
                let row =
                    Self::bind_all(sqlx::query(AssertSqlSafe(sql.text)), &sql.binds).fetch_one(&self.read).await?;
                let n: i64 = row.try_get(0)?;
                Ok(n as u64)
            }

            async fn delete_rows(&self, org_id: &str, entity: Entity, ids: &[String]) -> StoreResult<()> {
                let mut unique = ids.to_vec();
                unique.sort();
                unique.dedup();
                let sql = ids_sql($dialect, &format!("DELETE FROM {}", table(entity)), org_id, &unique);
                let mut tx = self.write.begin_with($begin).await?;
                let done = Self::bind_all(sqlx::query(AssertSqlSafe(sql.text)), &sql.binds)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done != unique.len() as u64 {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn company_contacts(
                &self,
                org_id: &str,
                company_id: &str,
                limit: u32,
            ) -> StoreResult<(u64, Vec<ContactRow>)> {
                let n: i64 = sqlx::query_scalar(COMPANY_CONTACT_COUNT)
                    .bind(org_id)
                    .bind(company_id)
                    .fetch_one(&self.read)
                    .await?;
                let rows = sqlx::query(COMPANY_CONTACTS)
                    .bind(org_id)
                    .bind(company_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                let contacts = rows
                    .iter()
                    .map(|r| match decode::record(Entity::Contact, r)? {
                        Row::Contact(c) => Ok(c),
                        Row::Company(_) => unreachable!("asked for contacts"),
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok((n as u64, contacts))
            }
        }

        impl $store {
            async fn insert_user_in(tx: &mut sqlx::Transaction<'static, $db>, user: &User) -> StoreResult<()> {
                sqlx::query(INSERT_USER)
                    .bind(&user.id)
                    .bind(&user.org_id)
                    .bind(&user.email)
                    .bind(&user.name)
                    .bind(user.role.as_str())
                    .bind(user.active)
                    .bind(user.created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| map_write_error(e, "a user with this email"))?;
                Ok(())
            }

            async fn insert_audit_in(tx: &mut sqlx::Transaction<'static, $db>, e: &AuditEntry) -> StoreResult<()> {
                sqlx::query(INSERT_AUDIT)
                    .bind(&e.id)
                    .bind(&e.org_id)
                    .bind(e.at)
                    .bind(e.actor.kind())
                    .bind(e.actor.id())
                    .bind(&e.action)
                    .bind(&e.target_type)
                    .bind(&e.target_id)
                    .bind(&e.key_id)
                    .bind(&e.ip)
                    .bind(json_text(&e.details))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    };
}

impl SqliteStore {
    fn fast(&self) -> Option<&FastReader> {
        self.fast.as_ref()
    }

    /// SQLite's `data_version`: it changes whenever any other connection, in this process
    /// or another (the CLI, say), commits. Cheap, exact, and needs no help from writers.
    fn generation(&self) -> Option<u64> {
        self.fast.as_ref().and_then(|f| f.data_version().ok())
    }
}

impl PgStore {
    fn fast(&self) -> Option<&FastReader> {
        None
    }

    /// Several processes share a PostgreSQL database, and a change made by one must be
    /// refused by all on the very next request; only the database itself knows that
    /// without a race, so lookups are not cached.
    fn generation(&self) -> Option<u64> {
        None
    }
}

impl_store!(SqliteStore, Sqlite, Dialect::Sqlite, "BEGIN IMMEDIATE", None::<&'static str>);
impl_store!(PgStore, Postgres, Dialect::Postgres, "BEGIN", Some("SELECT id FROM orgs WHERE id = $1 FOR UPDATE"));
