//! Backups of a SQLite database (SPEC 13). `VACUUM INTO` copies the database as one read
//! transaction sees it, so the copy is consistent and holds every write committed before it
//! began, while the server goes on writing (WAL readers do not block the writer). A restore
//! checks the copy before it replaces anything.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::SqliteConnectOptions;

use super::db::Db;
use super::{Store, StoreError, StoreResult};

/// The file of a `sqlite://` URL; `None` for PostgreSQL or an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let file = SqliteConnectOptions::from_str(url).ok()?.get_filename().to_path_buf();
    (!file.as_os_str().is_empty() && file != Path::new(":memory:")).then_some(file)
}

fn fault(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Refuses a file that is not a sound Rapport database.
fn check(path: &Path) -> StoreResult<()> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Invalid(format!("{} cannot be opened as a database: {e}", path.display())))?;
    let verdict: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| StoreError::Invalid(format!("{} is not a SQLite database: {e}", path.display())))?;
    if verdict != "ok" {
        return Err(StoreError::Invalid(format!("{} fails its integrity check: {verdict}", path.display())));
    }
    let orgs: i64 = c
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'orgs'", [], |r| r.get(0))
        .map_err(fault)?;
    if orgs == 0 {
        return Err(StoreError::Invalid(format!("{} is a SQLite database but not a Rapport one", path.display())));
    }
    Ok(())
}

impl Store {
    /// See `Db::bulk_writes`.
    pub async fn bulk_writes(&self, on: bool) -> StoreResult<()> {
        self.db.bulk_writes(on).await
    }

    /// See `Db::checkpoint`.
    pub async fn checkpoint(&self) -> StoreResult<()> {
        self.db.checkpoint().await
    }

    /// Writes a consistent copy of the database to `to` (which must not exist), checks it,
    /// and answers its size.
    pub async fn backup(&self, to: &Path) -> StoreResult<u64> {
        let Db::Sqlite { .. } = &self.db else {
            return Err(StoreError::Invalid(
                "rapport backup copies SQLite databases; for PostgreSQL use pg_dump (see the README's operations section)".into(),
            ));
        };
        let from = self
            .db
            .sqlite_file()
            .ok_or_else(|| StoreError::Invalid("an in-memory database has no file to copy".into()))?;
        if to.exists() {
            return Err(StoreError::Invalid(format!("{} exists already; give a new file name", to.display())));
        }
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || {
            let c = Connection::open_with_flags(&from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(fault)?;
            c.busy_timeout(std::time::Duration::from_secs(30)).map_err(fault)?;
            let target = to.to_str().ok_or_else(|| StoreError::Invalid("the backup path is not UTF-8".into()))?;
            c.execute("VACUUM INTO ?1", [target]).map_err(fault)?;
            check(&to)?;
            Ok(std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0))
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

/// Puts a backup in place of the database at `target`, whose server must be stopped: the
/// backup is checked first, copied beside the target, then renamed over it.
pub fn restore_sqlite(backup: &Path, target: &Path) -> StoreResult<()> {
    if !backup.is_file() {
        return Err(StoreError::Invalid(format!("no file {}", backup.display())));
    }
    check(backup)?;
    let io = |e: std::io::Error| StoreError::Unavailable(format!("cannot write {}: {e}", target.display()));
    let staging = target.with_extension("restoring");
    std::fs::copy(backup, &staging).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    std::fs::rename(&staging, target).map_err(io)?;
    Ok(())
}
