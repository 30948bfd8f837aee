//! The sender: every process drains the outbox. It leases due deliveries, builds each body
//! once (kept for retries), signs every attempt when it is sent, and records what happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::guard;
use super::sign;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::{Actor, Attempt, AuditEntry, DueDelivery, EndpointId, Outcome, Target};
use crate::time::{self, Millis};

/// Waits between a failed attempt and the next: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
/// 10 h; after the eighth attempt the delivery fails (SPEC section 10).
pub const SCHEDULE_MS: &[Millis] = &[5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/// How long a delivery's history is kept once it ended.
pub const KEEP_ENDED_MS: Millis = 30 * 24 * 3_600_000;
/// An endpoint failing this long is turned off.
pub const FAILING_FOR_MS: Millis = 5 * 24 * 3_600_000;
/// How long a claim holds a delivery: past the request timeout, so no other process takes
/// it while it is in flight.
const LEASE_MS: Millis = 60_000;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight per process, and per endpoint within them: an endpoint that answers
/// slowly (or not at all, for 10 s) holds at most its share, never the others' deliveries.
const IN_FLIGHT: usize = 256;
const PER_ENDPOINT: usize = 64;
const IDLE: Duration = Duration::from_millis(500);
/// Queued events fanned out into deliveries in one transaction, when the API is idle and
/// when it serves requests (ten endpoints make a batch ten times as many rows).
const FAN_OUT_BATCH: i64 = 512;
const FAN_OUT_BUSY: i64 = 16;
/// While requests are in flight the sender spends at most about a tenth of the time on its
/// work (issue 26: ten endpoints on `*` otherwise took two thirds of a saturated core's
/// writes). When the API is idle it goes at full speed, and a backlog drains then.
const REST_FACTOR: u32 = 9;
const MAX_REST: Duration = Duration::from_secs(2);
/// The first bytes of an answer that are kept.
const KEEP: usize = 1024;
/// Why a delivery ended unsent.
const WITHHELD: &str = "not sent: the endpoint no longer carries the powers to read this record (its creator lost them, or it was taken over)";

/// Resolves names and drops refused addresses, so that the check holds at connect time:
/// a name that resolves to a private address on the second lookup (DNS rebinding) still
/// cannot reach it.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| guard::refused(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                let why = addrs.first().and_then(|a| guard::refused(a.ip())).unwrap_or("unresolvable");
                return Err(format!("{host} resolves to a refused address ({why})").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Gives the process rustls's ring provider (reqwest is built without one, to avoid
/// aws-lc's C build). Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client(allow_private: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent(concat!("Rapport-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        b = b.dns_resolver(Arc::new(GuardedResolver));
    }
    b.build().expect("a webhook HTTP client")
}

/// Drains the outbox until `stop`: claims what is due while there is room in flight, and
/// waits for a slot, new work or `IDLE` otherwise. What the requests came to is recorded in
/// batches, one transaction for all that finished meanwhile (on SQLite one fsync, not one per
/// delivery). At `stop` it claims no more and waits for the requests in flight (each ends
/// within the 10 s timeout) to record them, so a restart sends nothing twice.
/// What the sender needs, and no more.
pub struct Sender {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// `RAPPORT_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl Sender {
    pub async fn run(self, stop: CancellationToken) {
        run(&self, stop).await
    }
}

async fn run(state: &Sender, stop: CancellationToken) {
    let http = client(state.allow_private);
    let mut flying = tokio::task::JoinSet::new();
    let mut per_endpoint: HashMap<EndpointId, usize> = HashMap::new();
    let mut done: Vec<(DueDelivery, Outcome)> = Vec::new();
    loop {
        // The time this round spends on the database, where the sender's cost lies.
        let started = Instant::now();
        while let Some(r) = flying.try_join_next() {
            done.extend(r.ok());
        }
        // In small batches while requests are served: a batch holds the one writer.
        let batch = if state.metrics.requests_in_flight() > 0 { FAN_OUT_BUSY } else { FAN_OUT_BATCH };
        if let Err(e) = state.store.fan_out(batch).await {
            tracing::warn!(error = %e, "could not fan webhook events out into deliveries");
        }
        if !done.is_empty() {
            for (d, _) in &done {
                if let Some(n) = per_endpoint.get_mut(&d.endpoint.id) {
                    *n -= 1;
                }
            }
            per_endpoint.retain(|_, n| *n > 0);
            record(state, std::mem::take(&mut done)).await;
        }
        let room = IN_FLIGHT - flying.len();
        let now = time::now_ms();
        let busy: Vec<&str> =
            per_endpoint.iter().filter(|(_, n)| **n >= PER_ENDPOINT).map(|(id, _)| id.as_str()).collect();
        let claimed = match state.store.deliveries_due(now).await {
            // At most one endpoint's share a claim: a backlog of one endpoint, first in line,
            // then costs no giving back.
            Ok(true) if room > 0 => {
                let limit = room.min(PER_ENDPOINT) as i64;
                state.store.claim_deliveries(now, now + LEASE_MS, limit, &busy).await
            }
            other => other.map(|_| Vec::new()),
        };
        let mut due = claimed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not claim webhook deliveries");
            Vec::new()
        });
        // Sent only while the endpoint's creator may read what a delivery holds: a body
        // queued under one holder is never sent for another who may not read it.
        let (readable, withheld): (Vec<DueDelivery>, Vec<DueDelivery>) = due
            .into_iter()
            .partition(|d| super::events::read_scope(&d.delivery.entity).is_some_and(|s| d.powers.contains(&s)));
        due = readable;
        if let Err(e) = state.store.withhold_deliveries(&withheld, WITHHELD, now).await {
            tracing::warn!(error = %e, "could not end withheld webhook deliveries; their leases run out");
        }
        // One claim may bring an endpoint past its share; those go back at once.
        let mut over = Vec::new();
        due.retain(|d| {
            let n = per_endpoint.entry(d.endpoint.id.clone()).or_default();
            *n += 1;
            if *n > PER_ENDPOINT {
                *n -= 1;
                over.push(d.clone());
                return false;
            }
            true
        });
        if let Err(e) = state.store.release_deliveries(&over).await {
            tracing::warn!(error = %e, "could not give back webhook deliveries; their leases run out");
        }
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                Some(r) = flying.join_next(), if !flying.is_empty() => done.extend(r.ok()),
                _ = stop.cancelled() => break,
            }
            continue;
        }
        for d in due {
            let (http, allow_private) = (http.clone(), state.allow_private);
            flying.spawn(async move {
                let outcome = send(&http, &d, allow_private).await;
                (d, outcome)
            });
        }
        if stop.is_cancelled() {
            break;
        }
        if state.metrics.requests_in_flight() > 0 {
            // Requests are being served: deliveries can wait, the people and agents using the
            // API should not. The sender rests REST_FACTOR times as long as it just worked.
            let rest = (started.elapsed() * REST_FACTOR).min(MAX_REST);
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    let drained = tokio::time::timeout(TIMEOUT + Duration::from_secs(1), async {
        while let Some(r) = flying.join_next().await {
            done.extend(r.ok());
        }
    });
    let _ = drained.await;
    record(state, done).await;
}

/// Sends one delivery and says what follows: delivered, failed, or pending again later.
async fn send(http: &reqwest::Client, d: &DueDelivery, allow_private: bool) -> Outcome {
    let started = Instant::now();
    let now = time::now_ms();
    let (status, error, response, retry_after) = attempt(http, d, &d.payload, now, allow_private).await;
    let attempts = d.delivery.attempts + 1;
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let (state_name, next) = if ok {
        ("delivered", now)
    } else if status == Some(410) || attempts as usize > SCHEDULE_MS.len() {
        ("failed", now)
    } else {
        let wait = SCHEDULE_MS[attempts as usize - 1].max(retry_after.unwrap_or(0));
        ("pending", now + wait)
    };
    Outcome {
        attempt: Attempt { at: now, status, duration_ms: started.elapsed().as_millis() as i64, error, response },
        state: state_name,
        next_attempt_at: next,
        success: ok,
    }
}

/// Records finished attempts, counts them, and turns off the endpoints that answered 410 or
/// have failed for 5 days, with the audit entry that says why.
async fn record(state: &Sender, done: Vec<(DueDelivery, Outcome)>) {
    let store = state.store.as_ref();
    let since = match store.finish_attempts(&done).await {
        Ok(s) => s,
        Err(e) => {
            // Their leases run out and they are sent again.
            tracing::warn!(error = %e, deliveries = done.len(), "could not record webhook attempts");
            return;
        }
    };
    for ((d, o), since) in done.iter().zip(since) {
        // Not recorded: the claim no longer held (deleted, resent, or taken over).
        let Some(since) = since else { continue };
        state.metrics.webhook_delivery(match o.state {
            "delivered" => "delivered",
            "failed" => "failed",
            _ => "retrying",
        });
        let reason = if o.attempt.status == Some(410) {
            "the endpoint answered 410 Gone"
        } else if since.is_some_and(|s| o.attempt.at - s >= FAILING_FOR_MS) {
            "the endpoint failed every delivery for 5 days"
        } else {
            continue;
        };
        let audit = AuditEntry::new(
            &d.org_id,
            &Actor::System,
            None,
            "webhook.disabled",
            Target::Webhook(&d.endpoint.id),
            json!({ "reason": reason }),
        );
        if let Err(e) = store.disable_endpoint(&d.org_id, &d.endpoint.id, reason, &audit).await {
            tracing::warn!(error = %e, "could not disable a failing webhook endpoint");
        }
    }
}

/// One signed POST: the status, an error, the first kilobyte of the answer, and a
/// `Retry-After` in milliseconds.
async fn attempt(
    http: &reqwest::Client,
    d: &DueDelivery,
    body: &str,
    now: Millis,
    allow_private: bool,
) -> (Option<i64>, Option<String>, Option<String>, Option<Millis>) {
    // The URL again, as it was checked when saved: the setting may have changed since, and
    // an address literal never reaches the resolver.
    if let Err(why) = guard::check_url(&d.endpoint.url, allow_private) {
        return (None, Some(format!("not sent: {why}")), None, None);
    }
    let ts = now / 1000;
    let mut secrets = vec![&d.endpoint.secret];
    let old = d.endpoint.old_secret.as_ref().filter(|_| d.endpoint.old_secret_until.is_some_and(|u| u > now));
    secrets.extend(old);
    let signature = sign::header(&secrets, &d.delivery.id, ts, body);
    let sent = http
        .post(&d.endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.delivery.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await;
    let mut res = match sent {
        Ok(r) => r,
        Err(e) => {
            // Without the URL: a capability URL (a Slack hook) is a secret of its own.
            let what = if e.is_timeout() { "timed out after 10 s".to_owned() } else { error_chain(&e.without_url()) };
            return (None, Some(what), None, None);
        }
    };
    let status = i64::from(res.status().as_u16());
    let retry_after =
        res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| retry_after_ms(v, now));
    let mut kept = Vec::new();
    while kept.len() < KEEP {
        match res.chunk().await {
            Ok(Some(c)) => kept.extend_from_slice(&c[..c.len().min(KEEP - kept.len())]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    (Some(status), None, (!text.is_empty()).then_some(text), retry_after)
}

/// `Retry-After` as a wait in milliseconds: delay-seconds, or an HTTP date; at most a day.
fn retry_after_ms(v: &str, now: Millis) -> Option<Millis> {
    let v = v.trim();
    let ms = match v.parse::<u64>() {
        Ok(s) => s.min(86_400) as Millis * 1000,
        Err(_) => chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp_millis() - now,
    };
    Some(ms.clamp(0, 86_400_000))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
