//! Request limits: `RAPPORT_RATE_LIMIT` requests per key per minute, and failed
//! authentications per client address, so keys cannot be guessed at speed. The address is
//! the one `client_ip` settled on, which a spoofed `X-Forwarded-For` cannot change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed authentications one address may make per minute before it is refused.
pub const FAILED_AUTH_PER_MINUTE: u32 = 30;

pub struct Limits {
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl Limits {
    /// `per_key_per_minute` of 0 turns the per-key limit off.
    pub fn new(per_key_per_minute: u32) -> Self {
        let per_key = NonZeroU32::new(per_key_per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        let failures = RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(FAILED_AUTH_PER_MINUTE).expect("a non-zero constant"),
        ));
        Limits { per_key, failures, blocked: Mutex::default(), clock: DefaultClock::default() }
    }

    /// `Err(wait)` when the key has used up its requests for now.
    pub fn check_key(&self, key_id: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.per_key else { return Ok(()) };
        limiter.check_key(&key_id.to_owned()).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Counts a failed authentication; `Err(wait)` once the address is over its allowance,
    /// and from then on `blocked` refuses it until the wait is over.
    pub fn failed_auth(&self, ip: IpAddr) -> Result<(), Duration> {
        self.failures.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            blocked.insert(ip, Instant::now() + wait);
            wait
        })
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
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
        self.failures.retain_recent();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
    }
}
