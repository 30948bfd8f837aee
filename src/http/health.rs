//! `/healthz` (the process answers), `/readyz` (the database answers), `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let retry = (header::RETRY_AFTER, super::error::RETRY_UNAVAILABLE.to_string());
            (StatusCode::SERVICE_UNAVAILABLE, [retry], axum::Json(json!({ "status": "database unavailable" })))
                .into_response()
        }
    }
}

/// Counters for Prometheus. Few series, so a map under a mutex is plenty.
#[derive(Default)]
pub struct Metrics {
    requests: AtomicU64,
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    tool_calls: Mutex<BTreeMap<(&'static str, bool), u64>>,
}

impl Metrics {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failure(&self, code: &'static str) {
        *self.auth_failures.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
    }

    pub fn tool_call(&self, tool: &'static str, ok: bool) {
        *self.tool_calls.lock().unwrap_or_else(|p| p.into_inner()).entry((tool, ok)).or_default() += 1;
    }

    fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP rapport_http_requests_total HTTP requests served.\n# TYPE rapport_http_requests_total counter\n",
        );
        out.push_str(&format!("rapport_http_requests_total {}\n", self.requests.load(Ordering::Relaxed)));
        out.push_str("# HELP rapport_auth_failures_total Refused API key checks by code.\n# TYPE rapport_auth_failures_total counter\n");
        for (code, n) in self.auth_failures.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&format!("rapport_auth_failures_total{{code=\"{code}\"}} {n}\n"));
        }
        out.push_str("# HELP rapport_tool_calls_total MCP tool calls by tool and outcome.\n# TYPE rapport_tool_calls_total counter\n");
        for ((tool, ok), n) in self.tool_calls.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let outcome = if *ok { "ok" } else { "error" };
            out.push_str(&format!("rapport_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}\n"));
        }
        out
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
