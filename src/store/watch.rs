//! What lets a PostgreSQL process cache key lookups and still refuse a key that another
//! process changed within a second, and answer 503 at once while the database is away.
//!
//! - Every key, user or organization change sends `NOTIFY` on this schema's channel from a
//!   trigger (delivered at commit, whoever wrote it), and a change made through this
//!   process bumps the local generation when it commits, so it is exact here at once.
//! - One listener connection per process bumps the generation on each notification, and on
//!   every reconnect (notifications sent while it was away are lost).
//! - A heartbeat, sent every `BEAT` through a connection of its own, comes back on the
//!   listener. PostgreSQL delivers notifications in commit order, so a beat sent at `t` that
//!   came back proves every change committed before `t` was seen. The cache is trusted only
//!   while the last beat that came back is younger than `FRESH`: a listener that died
//!   silently (a half-open connection) stops the cache within that time.
//! - A beat or a query that cannot reach the database marks it down; until a beat gets
//!   through again, reads and writes fail at once instead of waiting for a pool timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Pool, Postgres};
use tokio_util::sync::CancellationToken;

/// How often a heartbeat is sent.
pub const BEAT: Duration = Duration::from_millis(200);
/// How old the last returned heartbeat may be for cached keys to be trusted. With the beat
/// period and a notification's trip this keeps a missed change under one second.
pub const FRESH: Duration = Duration::from_millis(700);

pub struct AuthWatch {
    /// Bumped by every change seen; a cache entry read under an older value is stale.
    generation: AtomicU64,
    /// Milliseconds since `started` at which the newest returned heartbeat was sent.
    confirmed: AtomicU64,
    /// Set while the database cannot be reached.
    down: AtomicBool,
    started: Instant,
    /// Tells this process's heartbeats from other processes' on the shared channel.
    instance: u64,
    pub channel: String,
}

impl AuthWatch {
    pub fn new(channel: String) -> Arc<AuthWatch> {
        Arc::new(AuthWatch {
            generation: AtomicU64::new(1),
            confirmed: AtomicU64::new(0),
            down: AtomicBool::new(false),
            started: Instant::now(),
            instance: {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).expect("the OS random source failed");
                u64::from_le_bytes(b)
            },
            channel,
        })
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The generation, when cached lookups may be trusted now.
    pub fn generation(&self) -> Option<u64> {
        // Stored plus one, so that 0 means "never".
        let confirmed = self.confirmed.load(Ordering::Acquire);
        (confirmed > 0 && self.elapsed_ms().saturating_sub(confirmed - 1) < FRESH.as_millis() as u64)
            .then(|| self.generation.load(Ordering::Acquire))
    }

    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn set_down(&self, down: bool) {
        if self.down.swap(down, Ordering::Relaxed) != down {
            if down {
                tracing::warn!("the database is unreachable; answering 503 until it is back");
            } else {
                tracing::info!("the database is reachable again");
            }
        }
    }

    /// Passes `r` on, marking the database down when it says it cannot be reached.
    pub fn observe<T>(&self, r: Result<T, sqlx::Error>) -> super::StoreResult<T> {
        r.map_err(|e| {
            let e = super::StoreError::from(e);
            if e.is_unavailable() {
                self.set_down(true);
            }
            e
        })
    }

    fn beat_payload(&self) -> String {
        format!("beat:{}:{}", self.instance, self.elapsed_ms())
    }

    /// Handles one notification: our own heartbeat confirms, anything else is a change.
    fn seen(&self, payload: &str) {
        match payload.strip_prefix("beat:") {
            Some(rest) => {
                let mut parts = rest.split(':');
                let mine = parts.next().and_then(|s| s.parse::<u64>().ok()) == Some(self.instance);
                if let (true, Some(sent)) = (mine, parts.next().and_then(|s| s.parse::<u64>().ok())) {
                    self.confirmed.fetch_max(sent + 1, Ordering::AcqRel);
                }
            }
            None => self.bump(),
        }
    }

    /// Runs the listener and the heartbeat until `stop`.
    pub fn spawn(self: &Arc<Self>, url: String, stop: CancellationToken) {
        let watch = self.clone();
        tokio::spawn(async move {
            // Its own two connections: a busy main pool must not delay the beat, and the
            // listener holds its connection for good.
            let pool = match PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_millis(800))
                .connect_lazy(&url)
            {
                Ok(pool) => pool,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch the database for key changes");
                    return;
                }
            };
            let listen = tokio::spawn(listen(watch.clone(), pool.clone(), stop.clone()));
            beat(watch, pool, stop).await;
            let _ = listen.await;
        });
    }
}

/// Waits one beat before a retry; false when `stop` came first.
async fn pause(stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(BEAT) => true,
        _ = stop.cancelled() => false,
    }
}

async fn listen(watch: Arc<AuthWatch>, pool: Pool<Postgres>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "key-change listener cannot connect");
                if pause(&stop).await {
                    continue;
                }
                return;
            }
        };
        listener.eager_reconnect(false);
        if let Err(e) = listener.listen(&watch.channel).await {
            tracing::debug!(error = %e, "key-change listener cannot subscribe");
            if pause(&stop).await {
                continue;
            }
            return;
        }
        // Whatever changed while nobody listened is unknown.
        watch.bump();
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = stop.cancelled() => return,
            };
            match next {
                Ok(Some(n)) => watch.seen(n.payload()),
                // Lost and (on the next call) re-subscribed: notifications in between are gone.
                Ok(None) => {
                    tracing::debug!("key-change listener lost its connection");
                    watch.bump();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "key-change listener failed; reconnecting");
                    watch.bump();
                    if pause(&stop).await {
                        break;
                    }
                    return;
                }
            }
        }
    }
}

async fn beat(watch: Arc<AuthWatch>, pool: Pool<Postgres>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(BEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&watch.channel)
            .bind(watch.beat_payload())
            .execute(&pool)
            .await;
        match watch.observe(sent) {
            Ok(_) => watch.set_down(false),
            Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_fresh_heartbeat_trusts_the_cache() {
        let w = AuthWatch::new("c".into());
        assert_eq!(w.generation(), None, "nothing confirmed yet");
        w.seen("beat:1:5");
        if w.instance != 1 {
            assert_eq!(w.generation(), None, "another process's beat proves nothing here");
        }
        w.seen(&w.beat_payload());
        let g = w.generation().expect("fresh");
        w.seen("");
        assert_eq!(w.generation(), Some(g + 1), "a change makes older entries stale");
    }
}
