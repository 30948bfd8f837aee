//! Request limits: `RAPPORT_RATE_LIMIT` requests per key per minute, and failed
//! authentications per client address, so keys cannot be guessed at speed. The address is
//! the one `client_ip` settled on, which a spoofed `X-Forwarded-For` cannot change.
//!
//! On SQLite (one process) the limits live in memory. On PostgreSQL, where several
//! processes serve one database, they live in the database so that N processes do not
//! allow N times the limit: each process leases a few of a key's tokens at a time (one
//! statement per lease, see `Store::take_tokens`), so the shared limit costs a round trip
//! per lease rather than per request. Failed authentications are rare and go to the
//! database one by one; an address over its allowance is then refused locally.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::{Dialect, KeyId, Store};

/// Failed authentications one address may make per minute before it is refused.
pub const FAILED_AUTH_PER_MINUTE: u32 = 30;

/// Leased tokens not used within this are given up, so a lease cannot be saved for a burst.
const LEASE_FOR: Duration = Duration::from_secs(1);

const MINUTE_NS: i64 = 60_000_000_000;

pub struct Limits {
    per_minute: u32,
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
    /// Set on PostgreSQL: the buckets live in the database.
    shared: Option<Shared>,
}

struct Shared {
    store: Arc<Store>,
    /// Tokens this process holds per key, and until when.
    leases: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Limits {
    /// `per_key_per_minute` of 0 turns the per-key limit off. With a PostgreSQL store the
    /// limits are shared with every process on the database.
    pub fn new(per_key_per_minute: u32, store: &Arc<Store>) -> Self {
        let per_key = NonZeroU32::new(per_key_per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        let failures = RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(FAILED_AUTH_PER_MINUTE).expect("a non-zero constant"),
        ));
        let shared =
            (store.dialect() == Dialect::Postgres).then(|| Shared { store: store.clone(), leases: Mutex::default() });
        Limits {
            per_minute: per_key_per_minute,
            per_key,
            failures,
            blocked: Mutex::default(),
            clock: DefaultClock::default(),
            shared,
        }
    }

    /// Tokens leased per trip to the database: about 1% of the limit, so that what a
    /// process holds unused stays a small part of it.
    fn lease_size(&self) -> u32 {
        (self.per_minute / 100).clamp(1, 1000)
    }

    /// `Err(wait)` when the key has used up its requests for now.
    pub async fn check_key(&self, key_id: &KeyId) -> Result<(), Duration> {
        let key_id = key_id.as_str();
        let Some(limiter) = &self.per_key else { return Ok(()) };
        let local = || limiter.check_key(&key_id.to_owned()).map_err(|n| n.wait_time_from(self.clock.now()));
        let Some(shared) = &self.shared else { return local() };
        if shared.take_leased(key_id) {
            return Ok(());
        }
        let interval = MINUTE_NS / i64::from(self.per_minute);
        let bucket = format!("key:{key_id}");
        let mut want = self.lease_size();
        loop {
            match shared.store.take_tokens(&bucket, want, interval, self.per_minute).await {
                Ok(None) => {
                    shared.lease(key_id, want - 1);
                    return Ok(());
                }
                // Too few for a lease may still be enough for this one request.
                Ok(Some(_)) if want > 1 => want = 1,
                Ok(Some(wait_ns)) => return Err(Duration::from_nanos(wait_ns)),
                Err(e) => {
                    // The request fails on the database anyway; hold it to this process's share.
                    tracing::debug!(error = %e, "shared rate limit unavailable; limiting locally");
                    return local();
                }
            }
        }
    }

    /// Counts a failed authentication; `Err(wait)` once the address is over its allowance,
    /// and from then on `blocked` refuses it until the wait is over.
    pub async fn failed_auth(&self, ip: IpAddr) -> Result<(), Duration> {
        // `Some(verdict)` from the database; `None` on SQLite, or when it cannot answer.
        let shared = match &self.shared {
            Some(shared) => {
                let interval = MINUTE_NS / i64::from(FAILED_AUTH_PER_MINUTE);
                let taken = shared.store.take_tokens(&format!("ip:{ip}"), 1, interval, FAILED_AUTH_PER_MINUTE).await;
                taken
                    .map_err(|e| tracing::debug!(error = %e, "shared failure throttle unavailable; counting locally"))
                    .ok()
            }
            None => None,
        };
        let wait = match shared {
            Some(wait_ns) => wait_ns.map(Duration::from_nanos),
            None => self.failures.check_key(&ip).err().map(|n| n.wait_time_from(self.clock.now())),
        };
        let Some(wait) = wait else { return Ok(()) };
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).insert(ip, Instant::now() + wait);
        Err(wait)
    }

    /// How long the address must wait before it may try again, if it must.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&ip);
            return None;
        }
        Some(until - now)
    }

    /// Drops state of keys and addresses not seen lately, so memory stays bounded.
    pub async fn forget_idle(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
        self.failures.retain_recent();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
        if let Some(shared) = &self.shared {
            shared.leases.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (_, until)| *until > now);
            if let Err(e) = shared.store.forget_idle_limits().await {
                tracing::debug!(error = %e, "could not forget idle rate-limit buckets");
            }
        }
    }
}

impl Shared {
    fn take_leased(&self, key_id: &str) -> bool {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        match leases.get_mut(key_id) {
            Some((left, until)) if *left > 0 && *until > Instant::now() => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    fn lease(&self, key_id: &str, tokens: u32) {
        if tokens > 0 {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            leases.insert(key_id.to_owned(), (tokens, Instant::now() + LEASE_FOR));
        }
    }
}
