//! Storage, by aggregate: organizations and users, keys, the audit log, records and the
//! change log each have their own file of `impl Store` (reads) and `impl Tx` (writes inside
//! a transaction the domain opens, so rules such as the enabled-key limit are checked and
//! applied atomically). The SQL is written once for both databases; what differs between
//! SQLite and PostgreSQL lives in `db.rs`. One contract suite runs against both.

mod approvals;
mod audit;
mod backup;
mod bitmaps;
mod changes;
mod console;
mod custom_fields;
pub mod db;
mod deferred;
pub mod dry;
mod duplicates;
mod fast;
mod group;
mod idempotency;
pub mod ids;
mod imports;
pub mod indexes;
mod keys;
mod last_activity;
mod limits;
pub mod model;
mod pipelines;
pub mod privacy;
pub mod query;
mod records;
mod terms;
mod trash;
mod users;
pub mod watch;
mod webhooks;

pub use approvals::{ApprovalFilter, MAX_PENDING_PER_KEY, Requested};
pub use audit::AuditFilter;
pub use backup::{restore_sqlite, sqlite_path};
pub use changes::RevertSelection;
pub use console::{ChangeFilter, LinkPurpose, LoginCandidate, SessionRow};
pub use db::{ColKind, Dialect, SqlValue, Tx};
pub use duplicates::{Colleague, DuplicateKey, SharedKey};
pub use idempotency::Claim;
pub use imports::{Import, ImportCounts, ImportFailure, ImportState};
pub use model::*;
pub use query::Query;
pub use records::RecordPage;
pub use trash::ClearedRef;
pub use webhooks::{Attempt, Delivery, DeliveryView, DueDelivery, Endpoint, OrgEvent, Outcome};

use db::Db;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the string names what clashed.
    #[error("{0} already exists")]
    Conflict(String),
    /// Another writer changed the row since it was read.
    #[error("the record changed while it was being updated")]
    Stale,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// A value the database cannot hold; the caller's to fix.
    #[error("{0}")]
    Invalid(String),
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

    /// A unique violation becomes `Conflict(what)`, a foreign-key violation `NotFound`.
    fn on_write(self, what: &str) -> StoreError {
        match &self {
            StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                StoreError::Conflict(what.to_owned())
            }
            StoreError::Database(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => StoreError::NotFound,
            _ => self,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database, with every read and the way into write transactions.
pub struct Store {
    db: Db,
    outbox: std::sync::Arc<webhooks::Outbox>,
    bitmaps: bitmaps::TermBitmaps,
}

/// What the webhook outbox needs to know of events, given by the layer that owns them
/// (SPEC 10): the store queues deliveries in the transaction of each change, and imports
/// nothing above itself to do so.
pub trait Announcer: Send + Sync {
    /// The event types a change announces, in the order they are sent; none when it
    /// announces nothing (a change that is not of a record).
    fn types(&self, change: &Change) -> Vec<String>;
    /// Whether an endpoint's event patterns take `event_type`.
    fn subscribed(&self, patterns: &[String], event_type: &str) -> bool;
    /// The record as deliveries show it (`None`: it is gone), made once per change.
    fn record(&self, record: Option<Record>) -> serde_json::Value;
    /// One event's body.
    fn body(&self, change: &Change, event_type: &str, record: &serde_json::Value) -> String;
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database `url` names;
    /// `announcer` says what its changes announce to webhooks.
    pub async fn connect(url: &str, announcer: std::sync::Arc<dyn Announcer>) -> anyhow::Result<Store> {
        let store = Store {
            db: Db::connect(url).await?,
            outbox: std::sync::Arc::new(webhooks::Outbox::new(announcer)),
            bitmaps: bitmaps::TermBitmaps::new(),
        };
        // An import killed while it had indexes set aside left them to be built here.
        store.restore_indexes().await?;
        store.ensure_indexes().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// A number that changes whenever a key or user changes, in this process or in any
    /// other on the same database, so cached authentication knows it is stale; `None`
    /// when lookups must not be cached. Costs no database round trip.
    ///
    /// On SQLite it is a local count of this process's changes with `PRAGMA data_version`,
    /// which changes whenever another connection (any process, the CLI too) commits, read
    /// at most every 100 ms. On PostgreSQL it is the watch's generation,
    /// bumped by `NOTIFY` from every process, and only while the watch is proven alive
    /// (see `watch.rs`).
    pub fn auth_generation(&self) -> Option<u64> {
        match self.db.auth_watch() {
            Some(watch) => watch.generation(),
            None => self.db.fast().and_then(|f| f.auth_generation().ok()),
        }
    }

    /// Starts the PostgreSQL key-change listener and heartbeat; a server calls it once.
    pub fn watch(&self, stop: tokio_util::sync::CancellationToken) {
        self.db.watch(stop, bitmaps::log_upkeep(self.dialect()));
    }

    /// Known to be unreachable right now (PostgreSQL; SQLite is a file).
    pub fn is_down(&self) -> bool {
        self.db.auth_watch().is_some_and(|w| w.is_down())
    }

    /// SQLite's commits so far, and the write transactions they held (group commit).
    pub fn commits(&self) -> Option<(u64, u64)> {
        self.db.commits()
    }

    /// Connections per pool: `(pool, open, idle)`, for `/metrics`.
    pub fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        self.db.pool_use()
    }

    /// The database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await
    }

    /// A write transaction; it rolls back unless committed.
    pub async fn begin(&self) -> StoreResult<Tx> {
        self.db.begin(&self.outbox).await
    }

    /// Gives up `stale`, a transaction whose optimistic check found a record changed, and
    /// waits until every write begun before it is committed, so that reading the record
    /// again sees the change: on SQLite it may be in a group not yet committed (group
    /// commit). `stale` goes first: it holds the writer the wait needs.
    pub async fn catch_up(&self, stale: Tx) -> StoreResult<()> {
        drop(stale);
        self.begin().await?.commit().await
    }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serializes")
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}
