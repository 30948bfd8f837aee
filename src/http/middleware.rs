//! Layers in front of `/api/v1`: the API key check, request logs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use crate::auth::{self, AuthError, Presented};
use crate::state::AppState;
use crate::time;

fn presented_keys(headers: &HeaderMap, query: Option<&str>) -> Presented {
    let mut p = Presented::default();
    for v in headers.get_all("x-api-key") {
        if let Ok(s) = v.to_str() {
            p.add(s);
        }
    }
    for v in headers.get_all(header::AUTHORIZATION) {
        let Ok(s) = v.to_str() else { continue };
        let mut parts = s.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey") {
            p.add(parts.next().unwrap_or(""));
        }
    }
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if k == "api_key" {
                p.in_query = true;
                p.add(&v);
            }
        }
    }
    p
}

/// Authenticates every request, and puts the `Principal` in its extensions.
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Known to be away: say so at once rather than after a pool timeout.
    if state.store.is_down() {
        return ApiError::unavailable().into_response();
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = auth::client_ip(peer, forwarded, &state.settings.trusted_proxies);
    let presented = presented_keys(req.headers(), req.uri().query());
    let result = match presented.single(state.settings.query_keys) {
        Ok(key) => auth::authenticate(state.store.as_ref(), &state.auth_cache, &key, ip).await.map(|p| (p, key)),
        Err(e) => Err(e),
    };
    match result {
        Ok((mut principal, key)) => {
            principal.via = via(&req);
            let key_id = principal.key_id().cloned().unwrap_or_default();
            if let Err(wait) = state.limits.check_key(&key_id).await {
                state.metrics.auth_failure("rate_limited");
                let per_minute = state.settings.rate_limit;
                let message = format!("this API key is over its limit of {per_minute} requests per minute");
                return match principal.via.route.as_deref() {
                    // A model reads tool results, not HTTP statuses (SPEC 12).
                    Some("mcp") => refused_tool_call(req, wait, message).await,
                    _ => rate_limited(wait, message),
                };
            }
            state.usage.touch(&key_id, time::now_ms(), principal.ip.clone().unwrap_or_default());
            let rest = principal.via.route.as_deref() != Some("mcp");
            strip_credentials(&mut req);
            req.extensions_mut().insert(Arc::new(principal));
            // The connect helper puts the caller's own key in what it answers.
            req.extensions_mut().insert(Arc::new(key));
            let run = async move { if asks_dry_run(&req) { dry_run(req, next).await } else { next.run(req).await } };
            if !rest {
                return run.await;
            }
            // A REST call held for approval (SPEC 12) answers 202 with the approval,
            // whatever the route answers when it runs.
            let cell = Arc::new(std::sync::Mutex::new(None));
            let res = crate::service::REST_HELD.scope(cell.clone(), run).await;
            let held = cell.lock().unwrap_or_else(|p| p.into_inner()).take();
            match held {
                Some(answer) => (StatusCode::ACCEPTED, axum::Json(answer)).into_response(),
                None => res,
            }
        }
        Err(e) => {
            // Guessing shows as a run of keys that do not exist from one address, and only
            // such keys are refused once it is over its allowance: a valid key from the same
            // address (an office behind one NAT) keeps working. A real key that is disabled,
            // expired or out of its network is no guess either.
            if matches!(e, AuthError::Invalid | AuthError::Malformed(_)) {
                let wait = match state.limits.blocked(ip) {
                    Some(wait) => Err(wait),
                    None => state.limits.failed_auth(ip).await,
                };
                if let Err(wait) = wait {
                    state.metrics.auth_failure("rate_limited");
                    return rate_limited(wait, format!("too many unknown API keys from {ip}; try again later"));
                }
            }
            state.metrics.auth_failure(e.code());
            ApiError::from(e).into_response()
        }
    }
}

fn asks_dry_run(req: &Request) -> bool {
    req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "dry_run" && matches!(v.as_ref(), "true" | "1"))
    })
}

/// `?dry_run=true` on a REST route that writes through a tool (SPEC 12): the tool works out
/// what it would do and writes nothing, and the route answers 200 with that, whatever it
/// answers for the real call. Routes that are no tool's refuse it rather than act for real.
async fn dry_run(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let takes = !["/api/v1/keys", "/api/v1/users", "/api/v1/connect", "/api/v1/audit", "/api/v1/leads", "/api/v1/mcp"]
        .iter()
        .any(|p| route.starts_with(p));
    if !takes {
        return ApiError::bad_request(format!(
            "{route} does not take dry_run: it is for record, schema and webhook writes (over MCP, the `dry_run` argument)"
        ))
        .into_response();
    }
    let cell = Arc::new(std::sync::Mutex::new(None));
    let res = crate::service::REST_DRY_RUN.scope(cell.clone(), next.run(req)).await;
    let answer = cell.lock().unwrap_or_else(|p| p.into_inner()).take();
    match answer {
        Some(a) => (StatusCode::OK, axum::Json(a)).into_response(),
        // A read, or a refusal: as it is.
        None => res,
    }
}

/// How a request came (SPEC 12): the client its `User-Agent` names (the 2026-07-28 `_meta`
/// client info, when an MCP call carries it, wins later), the route, a new request id, and
/// the trace id of a W3C `traceparent`.
fn via(req: &Request) -> crate::store::Via {
    let route = match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/api/v1/mcp") => "mcp".to_owned(),
        Some(path) => format!("{} {path}", req.method()),
        None => format!("{} {}", req.method(), req.uri().path()),
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let mut via = crate::store::Via::call(header("user-agent").and_then(client_of_user_agent), &route);
    via.trace_id = header("traceparent").and_then(trace_id);
    via
}

/// The first product token of a `User-Agent`: `curl/8.5.0` is `curl`, version `8.5.0`; a
/// value without one is the name (at most 200 characters).
pub fn client_of_user_agent(ua: &str) -> Option<crate::store::ClientInfo> {
    let first = ua.split_whitespace().next()?;
    let (name, version) = match first.split_once('/') {
        Some((n, v)) if !n.is_empty() => (n, Some(v.to_owned()).filter(|v| !v.is_empty())),
        _ => (ua.trim(), None),
    };
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    let version = version.map(|v| v.chars().filter(|c| !c.is_control()).take(100).collect());
    (!name.is_empty()).then_some(crate::store::ClientInfo { name, version })
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), when well formed.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_, trace) = (parts.next()?, parts.next()?);
    let ok = trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) && trace.bytes().any(|b| b != b'0');
    ok.then(|| trace.to_ascii_lowercase())
}

/// A rate-limited `tools/call` as a tool result the model can read: HTTP 200, `isError`,
/// `retry_after_s` and a message saying when to retry, with `Retry-After` too. Any other
/// MCP method keeps the 429.
async fn refused_tool_call(req: Request, wait: std::time::Duration, message: String) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = axum::body::to_bytes(req.into_body(), super::mcp::MAX_MCP_BODY).await.unwrap_or_default();
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if call["method"] != "tools/call" || call.get("id").is_none() {
        return rate_limited(wait, message);
    }
    let text = format!("{message}; nothing was done. Retry this call in {seconds} s.");
    let result = json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": { "retry_after_s": seconds, "message": text },
        "isError": true,
    });
    let answer = json!({ "jsonrpc": "2.0", "id": call["id"], "result": result });
    let mut res = (StatusCode::OK, axum::Json(answer)).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    res
}

fn rate_limited(wait: std::time::Duration, message: String) -> Response {
    let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    err.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
    err.into_response()
}

/// Past authentication the key is not needed: inner services (and anything they log)
/// never see it.
fn strip_credentials(req: &mut Request) {
    req.headers_mut().remove("x-api-key");
    req.headers_mut().remove(header::AUTHORIZATION);
    let Some(query) = req.uri().query() else { return };
    if !query.contains("api_key") {
        return;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            form_urlencoded::parse(name.as_bytes()).all(|(k, _)| k != "api_key")
        })
        .collect();
    let path = req.uri().path();
    let rebuilt = if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) };
    if let Ok(uri) = rebuilt.parse() {
        *req.uri_mut() = uri;
    }
}

/// The query string with every `api_key` value replaced, for logs.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let decoded: String = form_urlencoded::parse(name.as_bytes()).map(|(k, _)| k.into_owned()).collect();
            let lower = decoded.to_ascii_lowercase();
            // Keys, the one-time tokens of console links, and the email of a personal-data
            // request (the person it is about).
            if lower.contains("key") || lower.contains("token") || lower == "email" {
                format!("{name}=REDACTED")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One log line per request: method, matched route, redacted query, status, time.
/// Server errors are logged at `warn`, the rest at `info`. Also counts requests.
pub async fn log_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let matched_path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let matched = matched_path.is_some();
    let path = matched_path.unwrap_or_else(|| req.uri().path().to_owned());
    // Redacting costs a little; do it only when the line will be written.
    let query = if tracing::enabled!(tracing::Level::WARN) { req.uri().query().map(redact_query) } else { None };
    let in_flight = state.metrics.request_started();
    let res = next.run(req).await;
    drop(in_flight);
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    // Unmatched paths share one series: a scan of random URLs must not make thousands.
    let route = if matched { path.as_str() } else { "unmatched" };
    state.metrics.request(route, method.as_str(), status, seconds);
    let elapsed_ms = seconds * 1000.0;
    let query = query.as_deref().unwrap_or("");
    if status >= 500 {
        tracing::warn!(%method, %path, query, status, elapsed_ms, "request");
    } else {
        tracing::info!(%method, %path, query, status, elapsed_ms, "request");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_in_queries() {
        assert_eq!(redact_query("api_key=rpk_secret&toolsets=contacts"), "api_key=REDACTED&toolsets=contacts");
        assert_eq!(redact_query("api%5Fkey=rpk_secret"), "api%5Fkey=REDACTED");
        assert_eq!(redact_query("a=1"), "a=1");
        assert_eq!(redact_query("token=secret"), "token=REDACTED");
    }
}
