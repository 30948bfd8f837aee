//! The one place where SQLite and PostgreSQL differ in how they are driven: pools, the
//! write transaction, binding values and reading columns. Everything above this module
//! writes its SQL once (`$n` placeholders, `RETURNING`, row values work on both) and passes
//! values as [`SqlValue`]; rows come back as [`DbRow`]s of plain values.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPoolOptions, PgRow, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Column, Pool, Row, Sqlite, TypeInfo, ValueRef};

use std::sync::Arc;

use super::fast::FastReader;
use super::watch::AuthWatch;
use super::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The type of a column, for typed NULLs and comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    Text,
    Int,
    Float,
    Bool,
}

/// A value bound to a statement. NULL carries its type: PostgreSQL refuses a text NULL for
/// a BIGINT column.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null(ColKind),
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}
impl From<&String> for SqlValue {
    fn from(s: &String) -> Self {
        SqlValue::Text(s.clone())
    }
}
impl From<i64> for SqlValue {
    fn from(n: i64) -> Self {
        SqlValue::Int(n)
    }
}
impl From<bool> for SqlValue {
    fn from(b: bool) -> Self {
        SqlValue::Bool(b)
    }
}
impl From<Option<&str>> for SqlValue {
    fn from(s: Option<&str>) -> Self {
        s.map_or(SqlValue::Null(ColKind::Text), SqlValue::from)
    }
}
impl From<Option<String>> for SqlValue {
    fn from(s: Option<String>) -> Self {
        s.map_or(SqlValue::Null(ColKind::Text), SqlValue::Text)
    }
}
impl From<&Option<String>> for SqlValue {
    fn from(s: &Option<String>) -> Self {
        s.as_deref().into()
    }
}
impl From<Option<i64>> for SqlValue {
    fn from(n: Option<i64>) -> Self {
        n.map_or(SqlValue::Null(ColKind::Int), SqlValue::Int)
    }
}

/// A column as read.
#[derive(Debug, Clone, PartialEq)]
pub enum DbVal {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// The names of a result's columns, shared by its rows.
pub type ColNames = std::sync::Arc<[Box<str>]>;

/// One row, read by column name (as the SELECT names it, alias included). Getters take
/// the value out, so decoding moves strings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbRow {
    vals: Vec<DbVal>,
    names: ColNames,
    /// Where the next read most likely is: decoders read in the SELECT's order, so the
    /// lookup by name is one comparison.
    next: usize,
}

impl DbRow {
    pub fn new(vals: Vec<DbVal>, names: ColNames) -> DbRow {
        DbRow { vals, names, next: 0 }
    }

    fn take(&mut self, name: &str) -> StoreResult<DbVal> {
        let i = if self.names.get(self.next).is_some_and(|n| &**n == name) {
            self.next
        } else {
            self.names
                .iter()
                .position(|n| &**n == name)
                .ok_or_else(|| StoreError::Corrupt(format!("no column {name}")))?
        };
        self.next = i + 1;
        Ok(std::mem::replace(&mut self.vals[i], DbVal::Null))
    }

    pub fn text(&mut self, i: &str) -> StoreResult<Option<String>> {
        match self.take(i)? {
            DbVal::Null => Ok(None),
            DbVal::Text(s) => Ok(Some(s)),
            DbVal::Int(n) => Ok(Some(n.to_string())),
            DbVal::Float(f) => Ok(Some(f.to_string())),
            other => Err(StoreError::Corrupt(format!("column {i}: expected text, got {other:?}"))),
        }
    }

    pub fn int(&mut self, i: &str) -> StoreResult<Option<i64>> {
        match self.take(i)? {
            DbVal::Null => Ok(None),
            DbVal::Int(n) => Ok(Some(n)),
            DbVal::Bool(b) => Ok(Some(i64::from(b))),
            other => Err(StoreError::Corrupt(format!("column {i}: expected an integer, got {other:?}"))),
        }
    }

    pub fn float(&mut self, i: &str) -> StoreResult<Option<f64>> {
        match self.take(i)? {
            DbVal::Null => Ok(None),
            DbVal::Float(f) => Ok(Some(f)),
            DbVal::Int(n) => Ok(Some(n as f64)),
            other => Err(StoreError::Corrupt(format!("column {i}: expected a number, got {other:?}"))),
        }
    }

    pub fn bool(&mut self, i: &str) -> StoreResult<bool> {
        match self.take(i)? {
            DbVal::Bool(b) => Ok(b),
            DbVal::Int(n) => Ok(n != 0),
            other => Err(StoreError::Corrupt(format!("column {i}: expected a boolean, got {other:?}"))),
        }
    }

    /// A column as the JSON value it holds: text, number, boolean or null.
    pub fn json(&mut self, i: &str) -> StoreResult<serde_json::Value> {
        Ok(match self.take(i)? {
            DbVal::Null => serde_json::Value::Null,
            DbVal::Text(s) => s.into(),
            DbVal::Int(n) => n.into(),
            DbVal::Float(f) => f.into(),
            DbVal::Bool(b) => b.into(),
        })
    }

    pub fn need_text(&mut self, i: &str) -> StoreResult<String> {
        self.text(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    pub fn need_int(&mut self, i: &str) -> StoreResult<i64> {
        self.int(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// The name of a one-column result's column (a `COUNT(*)`, one field), whatever the
    /// database calls it.
    pub fn sole(&self) -> StoreResult<Box<str>> {
        match &*self.names {
            [one] => Ok(one.clone()),
            names => Err(StoreError::Corrupt(format!("expected one column, got {}", names.len()))),
        }
    }
}

/// The column names of a result, read once from its first row.
fn names_of<R: sqlx::Row>(rows: &[R]) -> ColNames {
    rows.first().map(|r| r.columns().iter().map(|c| c.name().into()).collect()).unwrap_or_default()
}

fn sqlite_rows(rows: Vec<SqliteRow>) -> StoreResult<Vec<DbRow>> {
    let names = names_of(&rows);
    rows.iter().map(|r| Ok(DbRow::new(sqlite_row(r)?, names.clone()))).collect()
}

fn pg_rows(rows: Vec<PgRow>) -> StoreResult<Vec<DbRow>> {
    let names = names_of(&rows);
    rows.iter().map(|r| Ok(DbRow::new(pg_row(r)?, names.clone()))).collect()
}

fn sqlite_row(row: &SqliteRow) -> StoreResult<Vec<DbVal>> {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i)?;
        let v = if raw.is_null() {
            DbVal::Null
        } else {
            // SQLite reports each value's own storage class.
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => DbVal::Int(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" => DbVal::Float(row.try_get_unchecked::<f64, _>(i)?),
                _ => DbVal::Text(row.try_get_unchecked::<String, _>(i)?),
            }
        };
        out.push(v);
    }
    Ok(out)
}

fn pg_row(row: &PgRow) -> StoreResult<Vec<DbVal>> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        if row.try_get_raw(i)?.is_null() {
            out.push(DbVal::Null);
            continue;
        }
        let v = match col.type_info().name() {
            "INT8" => DbVal::Int(row.try_get::<i64, _>(i)?),
            "INT4" => DbVal::Int(i64::from(row.try_get::<i32, _>(i)?)),
            "INT2" => DbVal::Int(i64::from(row.try_get::<i16, _>(i)?)),
            "BOOL" => DbVal::Bool(row.try_get::<bool, _>(i)?),
            "FLOAT8" => DbVal::Float(row.try_get::<f64, _>(i)?),
            "FLOAT4" => DbVal::Float(f64::from(row.try_get::<f32, _>(i)?)),
            _ => DbVal::Text(row.try_get::<String, _>(i)?),
        };
        out.push(v);
    }
    Ok(out)
}

/// Each read with its values, at `RAPPORT_LOG=rapport::sql=trace` (bench/million.py reads
/// them to show the query plans). Reads only: writes bind password hashes.
pub(super) fn trace_read(sql: &str, args: &[SqlValue]) {
    tracing::trace!(target: "rapport::sql", sql, binds = %serde_json::Value::Array(args.iter().map(|a| match a {
        SqlValue::Text(s) => s.as_str().into(),
        SqlValue::Int(n) => (*n).into(),
        SqlValue::Float(f) => (*f).into(),
        SqlValue::Bool(b) => (*b).into(),
        SqlValue::Null(_) => serde_json::Value::Null,
    }).collect()));
}

/// PostgreSQL text cannot hold U+0000: a value with it is refused as input, where the
/// database would fail the statement (SQLite stores it, so only PostgreSQL checks).
fn pg_text(args: &[SqlValue]) -> StoreResult<()> {
    if args.iter().any(|a| matches!(a, SqlValue::Text(s) if s.contains('\0'))) {
        return Err(StoreError::Invalid("text may not contain the NUL character (U+0000)".into()));
    }
    Ok(())
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                SqlValue::Text(s) => q.bind(s.as_str()),
                SqlValue::Int(n) => q.bind(*n),
                SqlValue::Float(f) => q.bind(*f),
                SqlValue::Bool(b) => q.bind(*b),
                SqlValue::Null(ColKind::Text) => q.bind(None::<String>),
                SqlValue::Null(ColKind::Int) => q.bind(None::<i64>),
                SqlValue::Null(ColKind::Float) => q.bind(None::<f64>),
                SqlValue::Null(ColKind::Bool) => q.bind(None::<bool>),
            };
        }
        q
    }};
}

/// The database: a single SQLite writer plus readers, or a PostgreSQL pool.
pub(super) enum Db {
    Sqlite {
        /// Write transactions, committed in groups, on a pool of one connection: SQLite has
        /// one writer at a time, and queuing here beats "database is locked".
        writer: super::group::Writer,
        read: Pool<Sqlite>,
        /// Hot-path reads without sqlx's thread hop; `None` for an in-memory database.
        fast: Option<Arc<FastReader>>,
    },
    Postgres {
        pool: Pool<Postgres>,
        watch: Arc<AuthWatch>,
        url: String,
    },
}

impl Db {
    /// SQLite's commits so far, and the write transactions they held (group commit).
    pub fn commits(&self) -> Option<(u64, u64)> {
        match self {
            Db::Sqlite { writer, .. } => Some(writer.commits()),
            Db::Postgres { .. } => None,
        }
    }

    /// Connections per pool: `(pool, open, idle)`.
    pub fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        match self {
            Db::Sqlite { writer, read, .. } => {
                let write = writer.pool();
                vec![("sqlite_write", write.size(), write.num_idle()), ("sqlite_read", read.size(), read.num_idle())]
            }
            Db::Postgres { pool, .. } => vec![("postgres", pool.size(), pool.num_idle())],
        }
    }
}

/// The SQLite write connection's page cache, in KiB.
pub(super) const WRITE_CACHE_KIB: u32 = 32 * 1024;

/// A message for requests refused while the database is known to be away.
const DOWN: &str = "the database is unreachable";

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(pg_pool_size())
                // Past this a request answers 503 rather than hang: with the database away,
                // or the server so loaded that waiting longer helps nobody.
                .acquire_timeout(Duration::from_millis(800))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            // NOTIFY channels are per database, not per schema: name ours after the schema,
            // so databases shared by schema (tests do) do not hear each other.
            let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
            let channel: String = format!("rapport_auth_{schema}").chars().take(63).collect();
            return Ok(Db::Postgres { pool, watch: AuthWatch::new(channel), url: url.to_owned() });
        }
        anyhow::ensure!(
            url.starts_with("sqlite:"),
            "RAPPORT_DATABASE_URL must start with sqlite:// or postgres://, got `{url}`"
        );
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
            // Each insert touches a page of every index; beyond the 2 MB default cache a
            // large database's writes go to the kernel for them, again and again.
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{WRITE_CACHE_KIB}"))
                    // `PRAGMA optimize` samples each index rather than reading it whole: a
                    // write lock held for milliseconds on a million rows, not seconds.
                    .pragma("analysis_limit", "1000"),
            )
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let file = options.get_filename().to_path_buf();
        let on_disk = !file.as_os_str().is_empty() && file != std::path::Path::new(":memory:");
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        let fast = if on_disk { Some(Arc::new(FastReader::open(&file, 4)?)) } else { None };
        let grouped = std::env::var("RAPPORT_SQLITE_GROUP_COMMIT").map_or(true, |v| v != "false" && v != "0");
        let writer = super::group::Writer::new(write, grouped);
        Ok(Db::Sqlite { writer, read, fast })
    }

    /// The file of an on-disk SQLite database.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            Db::Sqlite { fast: Some(_), read, .. } => Some(read.connect_options().get_filename().to_path_buf()),
            _ => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite { .. } => Dialect::Sqlite,
            Db::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Background work until `stop`: PostgreSQL's key-change listener, and its statistics
    /// kept (`analyze_stale`); on SQLite, the hourly `PRAGMA optimize` SQLite recommends for
    /// long-lived connections, so the planner's statistics follow the data as it grows. Not
    /// at start: that would hold up the first request. Searches do not lean on the
    /// statistics (`Store::search`, `ids_in`).
    /// `upkeep`: statements run every 10 s on either (the terms logs kept short).
    pub fn watch(&self, stop: tokio_util::sync::CancellationToken, upkeep: Vec<String>) {
        match self {
            Db::Postgres { watch, url, pool } => {
                watch.spawn(url.clone(), stop.clone());
                let analyzed = pool.clone();
                every(Duration::from_secs(5), stop.clone(), "ANALYZE of changed tables", move || {
                    let pool = analyzed.clone();
                    async move { analyze_stale(&pool).await }
                });
                let (pool, upkeep) = (pool.clone(), std::sync::Arc::new(upkeep));
                every(Duration::from_secs(10), stop, "upkeep", move || {
                    let (pool, upkeep) = (pool.clone(), upkeep.clone());
                    async move {
                        for sql in upkeep.iter() {
                            sqlx::query(AssertSqlSafe(sql.as_str())).execute(&pool).await?;
                        }
                        Ok(())
                    }
                });
            }
            Db::Sqlite { writer, .. } => {
                let write = writer.pool().clone();
                every(Duration::from_secs(3600), stop.clone(), "PRAGMA optimize", move || {
                    let write = write.clone();
                    async move { sqlx::query("PRAGMA optimize").execute(&write).await.map(drop) }
                });
                let write = writer.pool().clone();
                let upkeep = std::sync::Arc::new(upkeep);
                every(Duration::from_secs(10), stop, "upkeep", move || {
                    let (write, upkeep) = (write.clone(), upkeep.clone());
                    async move {
                        for sql in upkeep.iter() {
                            sqlx::query(AssertSqlSafe(sql.as_str())).execute(&write).await?;
                        }
                        Ok(())
                    }
                });
            }
        }
    }

    pub fn auth_watch(&self) -> Option<&AuthWatch> {
        match self {
            Db::Postgres { watch, .. } => Some(watch),
            Db::Sqlite { .. } => None,
        }
    }

    /// Refuses at once while the database is known to be unreachable.
    fn pg_guard(watch: &AuthWatch) -> StoreResult<()> {
        if watch.is_down() {
            return Err(StoreError::Unavailable(DOWN.into()));
        }
        Ok(())
    }

    pub fn fast(&self) -> Option<&FastReader> {
        match self {
            Db::Sqlite { fast, .. } => fast.as_deref(),
            Db::Postgres { .. } => None,
        }
    }

    /// A read outside any transaction.
    pub async fn fetch(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<DbRow>> {
        trace_read(sql, args);
        match self {
            Db::Sqlite { fast: Some(fast), .. } => fast.fetch(sql, args),
            Db::Sqlite { read, .. } => {
                let q = bind_all!(sqlx::query(AssertSqlSafe(sql)), args);
                sqlite_rows(q.fetch_all(read).await?)
            }
            Db::Postgres { pool, watch, .. } => {
                Self::pg_guard(watch)?;
                pg_text(args)?;
                let q = bind_all!(sqlx::query(AssertSqlSafe(sql)), args);
                pg_rows(watch.observe(q.fetch_all(pool).await)?)
            }
        }
    }

    pub async fn fetch_one(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Option<DbRow>> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// The first column of a read that yields many integers (rowids), as a bitmap, read
    /// like `fetch_scan`, streamed; `None` when one is negative or past 32 bits.
    pub async fn scan_bits(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Option<roaring::RoaringBitmap>> {
        fn add(bits: &mut Option<roaring::RoaringBitmap>, v: i64) {
            match (bits.as_mut(), u32::try_from(v)) {
                // In order, as an index gives them, `push` appends; else it refuses.
                (Some(b), Ok(x)) => {
                    if b.try_push(x).is_err() {
                        b.insert(x);
                    }
                }
                _ => *bits = None,
            }
        }
        let mut bits = Some(roaring::RoaringBitmap::new());
        match self {
            Db::Sqlite { fast: Some(fast), .. } => {
                trace_read(sql, args);
                let (sql, args) = (sql.to_owned(), args.to_vec());
                Self::on_scan_thread(fast, move |fast| {
                    fast.ints(&sql, &args, |v| add(&mut bits, v))?;
                    Ok(bits)
                })
                .await
            }
            Db::Postgres { pool, watch, .. } => {
                use futures_util::TryStreamExt;
                use sqlx::Row;
                Self::pg_guard(watch)?;
                pg_text(args)?;
                trace_read(sql, args);
                // Row by row: a quarter of a million rows collected first cost 50 MB.
                let q = bind_all!(sqlx::query(AssertSqlSafe(sql)), args);
                let streamed = async {
                    let mut rows = q.fetch(pool);
                    while let Some(r) = rows.try_next().await? {
                        add(&mut bits, r.try_get::<i64, _>(0)?);
                    }
                    Ok(())
                };
                watch.observe(streamed.await)?;
                Ok(bits)
            }
            Db::Sqlite { .. } => {
                for mut r in self.fetch(sql, args).await? {
                    add(&mut bits, r.need_int(&r.sole()?)?);
                }
                Ok(bits)
            }
        }
    }

    /// A read whose cost grows with the data (a count over an index range, a grouping):
    /// on SQLite it runs on the blocking pool, not on the runtime's worker threads. Reads
    /// bounded by an index and a page stay in place, where a hand-over would cost more
    /// than the read (docs/performance.md).
    pub async fn fetch_scan(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<DbRow>> {
        match self {
            Db::Sqlite { fast: Some(fast), .. } => {
                trace_read(sql, args);
                let (sql, args) = (sql.to_owned(), args.to_vec());
                Self::on_scan_thread(fast, move |fast| fast.fetch(&sql, &args)).await
            }
            _ => self.fetch(sql, args).await,
        }
    }

    /// Runs `read` on the blocking pool, once a turn is free: one blocking thread per free
    /// connection, as more would only wait for one, each thread holding a heap of its own.
    async fn on_scan_thread<T: Send + 'static>(
        fast: &Arc<FastReader>,
        read: impl FnOnce(&FastReader) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let _turn = fast.scans.acquire().await.map_err(|_| StoreError::Corrupt("reads are closed".into()))?;
        let fast = fast.clone();
        tokio::task::spawn_blocking(move || read(&fast))
            .await
            .map_err(|e| StoreError::Corrupt(format!("a read task failed: {e}")))?
    }

    /// A write transaction. On SQLite `BEGIN IMMEDIATE` takes the write lock at once, so
    /// whatever the transaction reads stays true until it commits.
    pub async fn begin(&self, outbox: &Arc<super::webhooks::Outbox>) -> StoreResult<Tx> {
        let inner = match self {
            Db::Sqlite { writer, fast, .. } => TxInner::Sqlite(writer.begin().await?, fast.clone()),
            Db::Postgres { pool, watch, .. } => {
                Self::pg_guard(watch)?;
                let tx = watch.observe(pool.begin().await)?;
                TxInner::Postgres(tx, watch.clone())
            }
        };
        Ok(Tx { inner, notify: false, outbox: outbox.clone() })
    }

    /// On SQLite, whether the write connection leaves checkpoints to `checkpoint` (a bulk
    /// import) rather than copying the log into the database after every commit: a page
    /// that many batches change is then copied once, not once a batch.
    pub async fn bulk_writes(&self, on: bool) -> StoreResult<()> {
        if let Db::Sqlite { writer, .. } = self {
            let write = writer.pool();
            let pragma = if on { "PRAGMA wal_autocheckpoint = 0" } else { "PRAGMA wal_autocheckpoint = 1000" };
            sqlx::query(pragma).execute(write).await?;
        }
        Ok(())
    }

    /// Copies the write-ahead log into the SQLite database as far as readers allow.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        if let Db::Sqlite { writer, .. } = self {
            let write = writer.pool();
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(write).await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(drop)?,
            Db::Postgres { pool, watch, .. } => {
                Self::pg_guard(watch)?;
                watch.observe(sqlx::query("SELECT 1").execute(pool).await).map(drop)?
            }
        }
        Ok(())
    }
}

/// Runs `task` every `period` until `stop`, the first time one period after the start.
fn every<F, Fut>(period: Duration, stop: tokio_util::sync::CancellationToken, what: &'static str, task: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {
                    if let Err(e) = task().await {
                        tracing::warn!(error = %e, "{what} failed");
                    }
                }
            }
        }
    });
}

/// Analyzes the tables of this schema that changed by a tenth since their last statistics
/// (or never had any), a few seconds after the change rather than when autovacuum gets to
/// them, if it runs at all: a freshly loaded or imported database would otherwise be
/// planned blind (a point read walked a tenant's index: 3.9 ms instead of 0.07). One
/// process per schema at a time.
async fn analyze_stale(pool: &Pool<Postgres>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7231, hashtext(current_schema()))")
        .fetch_one(&mut *tx)
        .await?;
    if !ours {
        return Ok(());
    }
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(relname) FROM pg_stat_user_tables WHERE schemaname = current_schema() \
         AND n_mod_since_analyze >= 500 AND n_mod_since_analyze >= n_live_tup / 10",
    )
    .fetch_all(&mut *tx)
    .await?;
    for table in stale {
        // `quote_ident` made the name.
        sqlx::query(AssertSqlSafe(format!("ANALYZE {table}"))).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Connections per process: `RAPPORT_PG_POOL` or 8. Across processes they must stay under
/// the server's `max_connections`.
fn pg_pool_size() -> u32 {
    std::env::var("RAPPORT_PG_POOL").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(8)
}

/// Binds per multi-row insert (`Tx::insert_many`).
const MANY_BINDS: usize = 240;
const SQLITE_MANY_BINDS: usize = 960;

/// An open write transaction; dropped without `commit`, it rolls back.
pub struct Tx {
    inner: TxInner,
    /// A key, user or organization changed: this process's cache is dropped at commit.
    notify: bool,
    /// What changes written here announce to webhooks, and to which endpoints.
    pub(super) outbox: Arc<super::webhooks::Outbox>,
}

enum TxInner {
    /// A member of the open group (group commit), with the fast reader whose
    /// authentication generation its commit bumps.
    Sqlite(super::group::Member, Option<Arc<FastReader>>),
    /// With the watch its errors report outages to, and its commit bumps.
    Postgres(sqlx::Transaction<'static, Postgres>, Arc<AuthWatch>),
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Sqlite(..) => Dialect::Sqlite,
            TxInner::Postgres(..) => Dialect::Postgres,
        }
    }

    /// Says that what authentication reads changed, so this process drops its cached
    /// lookups when this commits. Other PostgreSQL processes hear of it from the database's
    /// triggers (migration 0004); other SQLite processes see `data_version` change.
    pub(super) fn auth_changed(&mut self) {
        self.notify = true;
    }

    /// The generation of what authentication and webhook targeting read, as this
    /// transaction's process knows it (`Store::auth_generation`); `None` when it must not be
    /// cached, or this transaction itself changed it.
    pub(super) fn auth_generation(&self) -> Option<u64> {
        if self.notify {
            return None;
        }
        match &self.inner {
            TxInner::Sqlite(_, fast) => fast.as_ref().and_then(|f| f.auth_generation().ok()),
            TxInner::Postgres(_, watch) => watch.generation(),
        }
    }

    pub(super) async fn fetch(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<DbRow>> {
        match &mut self.inner {
            TxInner::Sqlite(tx, _) => {
                let q = bind_all!(sqlx::query(AssertSqlSafe(sql)), args);
                sqlite_rows(q.fetch_all(tx.conn()).await?)
            }
            TxInner::Postgres(tx, watch) => {
                pg_text(args)?;
                let q = bind_all!(sqlx::query(AssertSqlSafe(sql)), args);
                pg_rows(watch.observe(q.fetch_all(&mut **tx).await)?)
            }
        }
    }

    pub(super) async fn fetch_one(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Option<DbRow>> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// A single number, such as a `COUNT(*)`.
    pub(super) async fn scalar(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<i64> {
        let mut row = self.fetch_one(sql, args).await?.ok_or_else(|| StoreError::Corrupt("no row".into()))?;
        row.need_int(&row.sole()?)
    }

    /// Runs a statement; the number of rows it touched.
    pub(super) async fn execute(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<u64> {
        Ok(match &mut self.inner {
            TxInner::Sqlite(tx, _) => {
                bind_all!(sqlx::query(AssertSqlSafe(sql)), args).execute(tx.conn()).await?.rows_affected()
            }
            TxInner::Postgres(tx, watch) => {
                pg_text(args)?;
                let r = bind_all!(sqlx::query(AssertSqlSafe(sql)), args).execute(&mut **tx).await;
                watch.observe(r)?.rows_affected()
            }
        })
    }

    /// Inserts rows (`head` is the `INSERT INTO t (cols)` part), a few to a statement: one
    /// round trip for a dozen rows rather than one each. Few binds a statement, because the
    /// SQLite driver looks each `$N` up among all of a statement's names (quadratic).
    pub(super) async fn insert_many(&mut self, head: &str, rows: Vec<Vec<SqlValue>>) -> StoreResult<()> {
        let mut rows = rows.into_iter().peekable();
        let budget = match self.dialect() {
            Dialect::Sqlite => SQLITE_MANY_BINDS,
            Dialect::Postgres => MANY_BINDS,
        };
        while let Some(first) = rows.peek() {
            let per = (budget / first.len().max(1)).max(1);
            let mut sql = super::query::Sql::new(self.dialect());
            sql.push(head);
            for (i, row) in rows.by_ref().take(per).enumerate() {
                sql.push(if i == 0 { " VALUES " } else { ", " });
                match self.dialect() {
                    // Anonymous `?`: the driver numbers them in order without looking each
                    // one's name up among all the statement's names.
                    Dialect::Sqlite => {
                        sql.push("(");
                        sql.push(&vec!["?"; row.len()].join(", "));
                        sql.push(")");
                        sql.binds.extend(row);
                    }
                    Dialect::Postgres => sql.bind_list(row),
                }
            }
            self.execute(&sql.text, &sql.binds).await?;
        }
        Ok(())
    }

    /// Serializes writers of one organization's limited resources (enabled keys, owners).
    /// SQLite's single writer already does; PostgreSQL locks the organization's row.
    pub async fn lock_org(&mut self, org_id: &super::OrgId) -> StoreResult<()> {
        if let TxInner::Postgres(..) = self.inner {
            self.execute("SELECT id FROM orgs WHERE id = $1 FOR UPDATE", &[org_id.into()]).await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> StoreResult<()> {
        // A dry run (SPEC 12) works everything out and writes nothing: each transaction it
        // opens is rolled back where it would commit.
        if super::dry::active() {
            match self.inner {
                TxInner::Sqlite(tx, _) => tx.rollback().await,
                TxInner::Postgres(tx, watch) => watch.observe(tx.rollback().await)?,
            }
            return Ok(());
        }
        match self.inner {
            TxInner::Sqlite(tx, fast) => {
                tx.commit().await?;
                if let (true, Some(fast)) = (self.notify, fast) {
                    fast.auth_changed();
                }
            }
            TxInner::Postgres(tx, watch) => {
                watch.observe(tx.commit().await)?;
                // Exact at once in this process; the others hear the NOTIFY.
                if self.notify {
                    watch.bump();
                }
            }
        }
        Ok(())
    }
}
