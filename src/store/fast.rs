//! SQLite reads on the hot path, run in place. sqlx runs every SQLite connection on a
//! thread of its own and hands each row across a channel: on a loaded two-core machine
//! those thread switches cost more than the query. A point read in SQLite takes
//! microseconds, so these run directly on the calling thread through rusqlite, on
//! read-only connections to the same WAL database (writes still go through sqlx's single
//! writer). The SQL is the same as the sqlx paths use.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use rusqlite::types::ValueRef;

use super::db::{DbRow, DbVal, SqlValue};
use super::{StoreError, StoreResult};

/// `$1`, `$2`, … made once rather than formatted for every bind.
fn placeholder(n: usize) -> std::borrow::Cow<'static, str> {
    static NAMES: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..=256).map(|n| format!("${n}")).collect());
    match NAMES.get(n) {
        Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
        None => std::borrow::Cow::Owned(format!("${n}")),
    }
}

/// How stale another process's key change may look here; SPEC section 1 allows 1 s.
const PROBE_EVERY: Duration = Duration::from_millis(100);

pub(super) struct FastReader {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// One connection answers `data_version`: its values compare only with themselves.
    probe: Mutex<Connection>,
    /// Bumped when this process commits a key or user change: exact here at once.
    local: AtomicU64,
    /// The last `data_version` read and when (ms since `started`, plus one; 0: never).
    seen: AtomicU64,
    seen_at: AtomicU64,
    started: Instant,
    /// Turns for reads sent to the blocking pool (`Db::fetch_scan`), one per connection.
    pub scans: tokio::sync::Semaphore,
}

impl FastReader {
    pub fn open(path: &Path, connections: usize) -> anyhow::Result<Self> {
        let connect = || -> anyhow::Result<Connection> {
            let c =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            c.busy_timeout(Duration::from_secs(5))?;
            c.set_prepared_statement_cache_capacity(64);
            Ok(c)
        };
        let conns = (0..connections).map(|_| connect().map(Mutex::new)).collect::<anyhow::Result<_>>()?;
        Ok(FastReader {
            conns,
            next: AtomicUsize::new(0),
            probe: Mutex::new(connect()?),
            local: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            seen_at: AtomicU64::new(0),
            started: Instant::now(),
            scans: tokio::sync::Semaphore::new(connections),
        })
    }

    /// A number that changes at once when this process commits a key or user change, and
    /// within [`PROBE_EVERY`] when any other connection (another process, the CLI) commits:
    /// `data_version` is a statement and a file lock, too dear to ask on every request.
    pub fn auth_generation(&self) -> StoreResult<u64> {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let at = self.seen_at.load(Ordering::Acquire);
        let version = if at == 0 || now.saturating_sub(at) >= PROBE_EVERY.as_millis() as u64 {
            let v = self.data_version()?;
            self.seen.store(v, Ordering::Release);
            self.seen_at.store(now, Ordering::Release);
            v
        } else {
            self.seen.load(Ordering::Acquire)
        };
        Ok(self.local.load(Ordering::Acquire).wrapping_shl(32) ^ version)
    }

    /// This process committed a change that authentication reads.
    pub fn auth_changed(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes whenever another connection (any process) has committed since.
    fn data_version(&self) -> StoreResult<u64> {
        let c = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        let v: i64 = c
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(fast_error)?;
        Ok(v as u64)
    }

    /// Runs `f` on a free connection (or waits for one).
    fn with<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(c) = self.conns[(start + i) % n].try_lock() {
                return f(&c);
            }
        }
        let c = self.conns[start].lock().unwrap_or_else(|p| p.into_inner());
        f(&c)
    }

    /// The first column of each row of a read, an integer, handed to `each` as it comes:
    /// a quarter of a million rowids, without a row or a string made for them.
    pub fn ints(&self, sql: &str, binds: &[SqlValue], mut each: impl FnMut(i64)) -> StoreResult<()> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql).map_err(fast_error)?;
            bind(&mut stmt, binds)?;
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(fast_error)? {
                each(row.get(0).map_err(fast_error)?);
            }
            Ok(())
        })
    }

    /// Runs a read on a free connection.
    pub fn fetch(&self, sql: &str, binds: &[SqlValue]) -> StoreResult<Vec<DbRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql).map_err(fast_error)?;
            bind(&mut stmt, binds)?;
            let n = stmt.column_count();
            let names: super::db::ColNames = stmt.column_names().into_iter().map(Into::into).collect();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(fast_error)? {
                let mut vals = Vec::with_capacity(n);
                for i in 0..n {
                    vals.push(match row.get_ref(i).map_err(fast_error)? {
                        ValueRef::Null => DbVal::Null,
                        ValueRef::Integer(n) => DbVal::Int(n),
                        ValueRef::Real(f) => DbVal::Float(f),
                        ValueRef::Text(t) | ValueRef::Blob(t) => DbVal::Text(
                            std::str::from_utf8(t)
                                .map_err(|e| StoreError::Corrupt(format!("column {i} is not UTF-8: {e}")))?
                                .to_owned(),
                        ),
                    });
                }
                out.push(DbRow::new(vals, names.clone()));
            }
            Ok(out)
        })
    }
}

/// Binds `binds` to `stmt`'s `$1`, `$2`, … placeholders.
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, binds: &[SqlValue]) -> StoreResult<()> {
    for (i, v) in binds.iter().enumerate() {
        // `$n` placeholders are named parameters to SQLite: bind them by name.
        let idx = stmt
            .parameter_index(&placeholder(i + 1))
            .map_err(fast_error)?
            .ok_or_else(|| StoreError::Corrupt(format!("no placeholder ${} in query", i + 1)))?;
        let bound = match v {
            SqlValue::Text(s) => stmt.raw_bind_parameter(idx, s.as_str()),
            SqlValue::Int(n) => stmt.raw_bind_parameter(idx, n),
            SqlValue::Float(f) => stmt.raw_bind_parameter(idx, f),
            SqlValue::Bool(b) => stmt.raw_bind_parameter(idx, b),
            SqlValue::Null(_) => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
        };
        bound.map_err(fast_error)?;
    }
    Ok(())
}

pub(super) fn fast_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Corrupt(format!("sqlite: {e}")),
    }
}
