//! `/healthz` (the process answers), `/readyz` (the database answers), `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

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

/// Prometheus text. Loopback callers (judged after `RAPPORT_TRUSTED_PROXIES`, so a proxy on
/// this host does not open it to everyone) and anyone with `RAPPORT_METRICS_TOKEN`.
pub async fn metrics(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = crate::auth::client_ip(peer.ip(), forwarded, &state.settings.trusted_proxies);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let token_ok = match (&state.settings.metrics_token, bearer) {
        (Some(t), Some(b)) => {
            use sha2::{Digest, Sha256};
            Sha256::digest(t.0.as_bytes()) == Sha256::digest(b.as_bytes())
        }
        _ => false,
    };
    if !client.is_loopback() && !token_ok {
        return super::error::ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "/metrics answers loopback callers, and others with RAPPORT_METRICS_TOKEN as a bearer token",
        )
        .into_response();
    }
    let body = state.metrics.render(&state.store.pool_use(), state.store.commits());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
