//! Counters for `/metrics` (Prometheus text format): requests by route, method and status
//! with a latency histogram, tool calls by outcome, refused authentications by code, webhook
//! deliveries by outcome, and the database's connections. Every layer counts here; only the
//! HTTP surface renders it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request-latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One route's requests: counts by method and status, and its latency histogram.
#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<(String, u16), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters for Prometheus. A few dozen series; one short lock per request.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    tool_calls: Mutex<BTreeMap<(&'static str, bool), u64>>,
    /// Webhook delivery attempts by outcome (SPEC section 10).
    webhook_deliveries: Mutex<BTreeMap<&'static str, u64>>,
    /// MCP POSTs answered by the lean path and by rmcp's service (src/http/mcp.rs).
    mcp_posts: [AtomicU64; 2],
    /// Requests being handled now (until their answer's head is ready).
    in_flight: AtomicU64,
}

/// Counts a request in flight while it lives.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A label value with `\`, `"` and newlines escaped, as the text format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts a request in flight until the guard drops.
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Requests being handled now: the webhook sender yields to them.
    pub fn requests_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A request served: its matched route (never the raw path: ids would make a series
    /// each), method, status and duration.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut routes = lock(&self.routes);
        // Looked up before inserting: no allocation on the hot path once a series exists.
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let r = routes.get_mut(route).expect("inserted above");
        match r.by_status.iter_mut().find(|((m, s), _)| m == method && *s == status) {
            Some((_, n)) => *n += 1,
            None => {
                r.by_status.insert((method.to_owned(), status), 1);
            }
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum += seconds;
    }

    pub fn auth_failure(&self, code: &'static str) {
        *lock(&self.auth_failures).entry(code).or_default() += 1;
    }

    /// A webhook delivery attempt: `delivered`, `retrying` or `failed`.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        *lock(&self.webhook_deliveries).entry(outcome).or_default() += 1;
    }

    pub fn tool_call(&self, tool: &'static str, ok: bool) {
        *lock(&self.tool_calls).entry((tool, ok)).or_default() += 1;
    }

    pub fn mcp_post(&self, direct: bool) {
        self.mcp_posts[usize::from(direct)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, pools: &[(&'static str, u32, usize)], commits: Option<(u64, u64)>) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "# HELP rapport_http_requests_total HTTP requests by route, method and status.");
        let _ = writeln!(w, "# TYPE rapport_http_requests_total counter");
        let routes = lock(&self.routes);
        for (route, r) in routes.iter() {
            for ((method, status), n) in &r.by_status {
                let _ = writeln!(
                    w,
                    "rapport_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        let _ = writeln!(w, "# HELP rapport_http_request_duration_seconds Time to answer, by route.");
        let _ = writeln!(w, "# TYPE rapport_http_request_duration_seconds histogram");
        for (route, r) in routes.iter() {
            let route = label(route);
            for (le, n) in BUCKETS.iter().zip(r.buckets) {
                let _ =
                    writeln!(w, "rapport_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(
                w,
                "rapport_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(w, "rapport_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", r.sum);
            let _ = writeln!(w, "rapport_http_request_duration_seconds_count{{route=\"{route}\"}} {}", r.count);
        }
        drop(routes);
        let _ = writeln!(w, "# HELP rapport_http_requests_in_flight Requests being handled now.");
        let _ = writeln!(w, "# TYPE rapport_http_requests_in_flight gauge");
        // Less this request, which is reading it.
        let _ = writeln!(w, "rapport_http_requests_in_flight {}", self.requests_in_flight().saturating_sub(1));
        let _ = writeln!(w, "# HELP rapport_auth_failures_total Refused API key checks by code.");
        let _ = writeln!(w, "# TYPE rapport_auth_failures_total counter");
        for (code, n) in lock(&self.auth_failures).iter() {
            let _ = writeln!(w, "rapport_auth_failures_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(w, "# HELP rapport_tool_calls_total Tool calls (MCP and REST) by tool and outcome.");
        let _ = writeln!(w, "# TYPE rapport_tool_calls_total counter");
        for ((tool, ok), n) in lock(&self.tool_calls).iter() {
            let outcome = if *ok { "ok" } else { "error" };
            let _ = writeln!(w, "rapport_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(w, "# HELP rapport_webhook_deliveries_total Webhook delivery attempts by outcome.");
        let _ = writeln!(w, "# TYPE rapport_webhook_deliveries_total counter");
        for (outcome, n) in lock(&self.webhook_deliveries).iter() {
            let _ = writeln!(w, "rapport_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(w, "# HELP rapport_mcp_posts_total MCP POSTs by what answered them: the lean path or rmcp.");
        let _ = writeln!(w, "# TYPE rapport_mcp_posts_total counter");
        for (path, n) in ["rmcp", "direct"].iter().zip(&self.mcp_posts) {
            let _ = writeln!(w, "rapport_mcp_posts_total{{path=\"{path}\"}} {}", n.load(Ordering::Relaxed));
        }
        if let Some((commits, writes)) = commits {
            let _ = writeln!(
                w,
                "# HELP rapport_sqlite_commits_total SQLite commits, each holding one or more writes (group commit)."
            );
            let _ = writeln!(w, "# TYPE rapport_sqlite_commits_total counter");
            let _ = writeln!(w, "rapport_sqlite_commits_total {commits}");
            let _ =
                writeln!(w, "# HELP rapport_sqlite_grouped_writes_total Write transactions the SQLite commits held.");
            let _ = writeln!(w, "# TYPE rapport_sqlite_grouped_writes_total counter");
            let _ = writeln!(w, "rapport_sqlite_grouped_writes_total {writes}");
        }
        let _ = writeln!(w, "# HELP rapport_db_pool_connections Database connections by pool and state.");
        let _ = writeln!(w, "# TYPE rapport_db_pool_connections gauge");
        for (pool, open, idle) in pools {
            let in_use = (*open as usize).saturating_sub(*idle);
            let _ = writeln!(w, "rapport_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}} {idle}");
            let _ = writeln!(w, "rapport_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}} {in_use}");
        }
        out
    }
}
