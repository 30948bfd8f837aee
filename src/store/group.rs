//! Group commit on SQLite: write transactions that arrive together share one database
//! transaction and one fsync. Each runs in a savepoint of its own, one after the other on
//! the one write connection, so one that fails rolls back alone; each is answered only once
//! the shared commit is durable.
//!
//! Who commits: the first member to finish spawns a committer, which queues for the write
//! connection behind the writers already waiting for it (the lock is first come, first
//! served). Those writers join the group; the committer commits it once they are through.
//! A lone writer waits for nobody; sixteen concurrent writers share an fsync (issue 26).
//!
//! A member sees the writes of the members before it, as it would once they had committed
//! alone; if the shared commit fails, every member of the group is told.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{Pool, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::{StoreError, StoreResult};

/// The one SQLite writer, shared by the transactions of a group.
#[derive(Clone)]
pub struct Writer {
    pool: Pool<Sqlite>,
    group: Arc<Mutex<Group>>,
    counts: Arc<Counts>,
    /// `false`: each write commits alone, as before group commit (`RAPPORT_SQLITE_GROUP_COMMIT`,
    /// for comparison).
    grouped: bool,
}

/// Commits, and the write transactions they held, since the start (`/metrics`).
#[derive(Default)]
struct Counts {
    commits: AtomicU64,
    writes: AtomicU64,
}

type Answer = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
struct Group {
    /// The write connection, in a transaction, while a group is open.
    conn: Option<PoolConnection<Sqlite>>,
    /// Members done, waiting for the commit.
    members: Vec<Answer>,
    /// A committer is queued for this group.
    committer: bool,
}

/// One write transaction: a savepoint in the open group.
pub struct Member {
    guard: Option<OwnedMutexGuard<Group>>,
    writer: Writer,
}

impl Writer {
    pub fn new(pool: Pool<Sqlite>, grouped: bool) -> Writer {
        Writer { pool, group: Arc::default(), counts: Arc::default(), grouped }
    }

    /// The pool of the one write connection, for what runs outside a transaction
    /// (checkpoints, pragmas); it waits while a group holds the connection.
    pub fn pool(&self) -> &Pool<Sqlite> {
        &self.pool
    }

    /// Commits so far, and the write transactions they held.
    pub fn commits(&self) -> (u64, u64) {
        (self.counts.commits.load(Ordering::Relaxed), self.counts.writes.load(Ordering::Relaxed))
    }

    /// Joins the open group, or opens one (`BEGIN IMMEDIATE`: the write lock at once, so
    /// what the transaction reads stays true until it commits).
    pub async fn begin(&self) -> StoreResult<Member> {
        let writer = self.clone();
        detached(async move { writer.open().await }).await?
    }

    async fn open(&self) -> StoreResult<Member> {
        // As long as the pool waits for its one connection: a writer stuck that long is
        // refused as busy rather than left waiting.
        let wait = self.pool.options().get_acquire_timeout();
        let Ok(mut guard) = tokio::time::timeout(wait, self.group.clone().lock_owned()).await else {
            return Err(sqlx::Error::PoolTimedOut.into());
        };
        if guard.conn.is_none() {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            guard.conn = Some(conn);
        }
        let conn = guard.conn.as_mut().expect("opened above");
        if let Err(e) = sqlx::query("SAVEPOINT member").execute(&mut **conn).await {
            // The group's transaction is in a state no member can use: end it for all.
            end(guard, false).await;
            return Err(e.into());
        }
        Ok(Member { guard: Some(guard), writer: self.clone() })
    }
}

impl Member {
    pub fn conn(&mut self) -> &mut SqliteConnection {
        self.guard.as_mut().and_then(|g| g.conn.as_mut()).expect("a member holds the open group")
    }

    /// Keeps this member's writes and waits until the group's commit is durable.
    pub async fn commit(mut self) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("a member holds the open group");
        let writer = self.writer.clone();
        let rx = detached(async move {
            let conn = guard.conn.as_mut().expect("a member holds the open group");
            if let Err(e) = sqlx::query("RELEASE member").execute(&mut **conn).await {
                undo(guard).await;
                return Err(StoreError::from(e));
            }
            let (tx, rx) = oneshot::channel();
            guard.members.push(tx);
            if !writer.grouped {
                commit_now(guard, &writer.counts).await;
            } else if !guard.committer {
                guard.committer = true;
                tokio::spawn(commit_when_through(writer));
            }
            Ok(rx)
        })
        .await??;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e)),
            Err(_) => Err(StoreError::Unavailable("the shared commit was dropped".into())),
        }
    }

    /// Undoes this member's writes; the group's others stand.
    pub async fn rollback(mut self) {
        if let Some(guard) = self.guard.take() {
            let _ = detached(undo(guard)).await;
        }
    }
}

impl Drop for Member {
    /// Dropped without a commit (an error on the way): rolled back, off the caller's path.
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(undo(guard))),
                // No runtime left (the process is ending): the group is never committed.
                Err(_) => drop(guard),
            }
        }
    }
}

/// Runs `work` to its end even if the caller stops waiting (a request cancelled when its
/// client goes away): the group's transaction is never left half begun or half released.
async fn detached<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> StoreResult<T> {
    tokio::spawn(work).await.map_err(|e| StoreError::Unavailable(format!("a write task failed: {e}")))
}

/// The committer: its turn comes once the writers queued before it have joined the group.
async fn commit_when_through(writer: Writer) {
    commit_now(writer.group.clone().lock_owned().await, &writer.counts).await;
}

async fn commit_now(guard: OwnedMutexGuard<Group>, counts: &Counts) {
    let writes = guard.members.len() as u64;
    if end(guard, true).await {
        counts.commits.fetch_add(1, Ordering::Relaxed);
        counts.writes.fetch_add(writes, Ordering::Relaxed);
    }
}

/// Rolls a member back to its savepoint. The group goes on for the others; with nobody
/// waiting for a commit, its empty transaction ends here.
async fn undo(mut guard: OwnedMutexGuard<Group>) {
    let conn = guard.conn.as_mut().expect("a member holds the open group");
    let undone = sqlx::query("ROLLBACK TO member").execute(&mut **conn).await.is_ok()
        && sqlx::query("RELEASE member").execute(&mut **conn).await.is_ok();
    if undone && guard.committer {
        return;
    }
    end(guard, undone).await;
}

/// Ends the open group: commits it (rolls it back if a member found its transaction
/// broken, `usable` false) and tells every member. Whether it committed.
async fn end(mut guard: OwnedMutexGuard<Group>, usable: bool) -> bool {
    let members = std::mem::take(&mut guard.members);
    guard.committer = false;
    let Some(mut conn) = guard.conn.take() else { return false };
    let outcome = if usable {
        match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(format!("the commit failed: {e}"))
            }
        }
    } else {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        Err("the write was undone with the transaction it shared, which failed".to_owned())
    };
    // Back to the pool before anyone is answered, for the next group and for whatever
    // else uses the connection (checkpoints, `PRAGMA optimize`).
    drop(conn);
    drop(guard);
    let committed = outcome.is_ok();
    for member in members {
        let _ = member.send(outcome.clone());
    }
    committed
}
