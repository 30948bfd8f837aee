//! Storage: one `Store` trait in domain terms, implemented for SQLite and PostgreSQL from
//! the same SQL (`sql.rs`) and the same code (`imp.rs`), checked by one contract suite.

mod decode;
mod fast;
mod imp;
pub mod model;
pub mod query;
mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use rapport_tools::Role;
use rapport_tools::records::Entity;

pub use model::*;
pub use query::{Dialect, Query};

use crate::auth::key::KeyDigest;
use crate::time::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the string names what clashed.
    #[error("{0} already exists")]
    Conflict(String),
    #[error("the organization already has {0} enabled keys")]
    KeyLimit(u32),
    /// Another writer changed the row since it was read.
    #[error("the record changed while it was being updated")]
    Stale,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Faults that mean "try again later" rather than a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;

    /// A number that changes whenever a key or user changes, in this process or in any
    /// other on the same database, so cached authentication knows it is stale; `None`
    /// when lookups must not be cached. Costs no database round trip.
    fn auth_generation(&self) -> Option<u64>;

    /// The database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates `org` and its `owner` if the database holds no organization yet; true when it did.
    async fn bootstrap(&self, org: &Org, owner: &User) -> StoreResult<bool>;

    /// Creates an organization with its first owner; `Conflict` when the name is taken.
    async fn create_org(&self, org: &Org, owner: &User, audit: &AuditEntry) -> StoreResult<()>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>>;
    async fn user_by_email(&self, org_id: &str, email: &str) -> StoreResult<Option<User>>;
    /// The organization's first owner by creation time.
    async fn first_owner(&self, org_id: &str) -> StoreResult<Option<User>>;
    /// Which of these ids are users of the organization.
    async fn existing_users(&self, org_id: &str, ids: &[String]) -> StoreResult<Vec<String>>;

    /// Inserts an enabled key unless the organization already holds `max_active` enabled
    /// keys, atomically, together with its audit entry.
    async fn insert_key(
        &self,
        key: &KeyRecord,
        digest: &KeyDigest,
        max_active: u32,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn get_key(&self, org_id: &str, key_id: &str) -> StoreResult<Option<KeyRecord>>;
    /// Applies `change` to the key and writes `audit`, atomically; returns the key as it
    /// now is (as it was, for a delete). `NotFound`, or `KeyLimit` for an enable over it.
    async fn change_key(
        &self,
        org_id: &str,
        key_id: &str,
        change: &KeyChange,
        audit: &AuditEntry,
    ) -> StoreResult<KeyRecord>;
    async fn create_user(&self, user: &User, audit: &AuditEntry) -> StoreResult<()>;
    async fn list_users(&self, org_id: &str) -> StoreResult<Vec<User>>;
    /// Active owners of the organization other than `except_user_id`.
    async fn other_active_owners(&self, org_id: &str, except_user_id: &str) -> StoreResult<u64>;
    /// Sets a user's role and whether they are active, with its audit entry.
    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        role: Role,
        active: bool,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn list_keys(&self, org_id: &str, include_revoked: bool) -> StoreResult<Vec<KeyRecord>>;
    /// The key whose digest this is, with its owner and organization.
    async fn key_for_auth(&self, digest: &KeyDigest) -> StoreResult<Option<KeyAuth>>;
    /// Records the latest use of each key.
    async fn record_key_uses(&self, uses: &[KeyUse]) -> StoreResult<()>;

    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Newest first; `before` is the `(at, id)` of the last entry of the previous page.
    async fn list_audit(
        &self,
        org_id: &str,
        before: Option<(Millis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;

    async fn custom_fields(&self, org_id: &str, entity: Entity) -> StoreResult<Vec<CustomFieldDef>>;

    /// Inserts all rows or none.
    async fn insert_rows(&self, org_id: &str, rows: &[Row]) -> StoreResult<()>;
    /// Replaces all rows or none; `Stale` when one's `updated_at` is no longer the
    /// `expected` value, `NotFound` when one is gone.
    async fn update_rows(&self, org_id: &str, rows: &[(Row, Millis)]) -> StoreResult<()>;
    /// The rows with these ids in the organization, in no particular order.
    async fn get_rows(&self, org_id: &str, entity: Entity, ids: &[String]) -> StoreResult<Vec<Row>>;
    async fn search(&self, org_id: &str, query: &Query) -> StoreResult<Vec<Row>>;
    async fn count(&self, org_id: &str, entity: Entity, filter: &[query::Predicate]) -> StoreResult<u64>;
    /// Deletes all these ids or none (`NotFound` when one is missing).
    async fn delete_rows(&self, org_id: &str, entity: Entity, ids: &[String]) -> StoreResult<()>;
    /// How many contacts a company has, and the newest `limit` of them.
    async fn company_contacts(&self, org_id: &str, company_id: &str, limit: u32)
    -> StoreResult<(u64, Vec<ContactRow>)>;
}

/// Opens (creating a SQLite file if needed) and migrates the database `url` names.
pub async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(imp::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(imp::SqliteStore::connect(url).await?))
    } else {
        anyhow::bail!("RAPPORT_DATABASE_URL must start with sqlite:// or postgres://, got `{url}`")
    }
}
