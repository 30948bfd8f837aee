//! The HTTP surface: routes, the layers in front of them, the error shape.

pub mod admin;
pub mod data;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod mcp;
pub mod middleware;
pub mod openapi;
pub mod rest;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::mcp::RapportMcp;
use crate::state::AppState;
use error::ApiError;

pub fn router(state: AppState, shutdown: CancellationToken) -> Router {
    let s = &state.settings;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(mcp::MAX_MCP_BODY)
        .with_allowed_hosts(s.allowed_hosts.clone())
        .with_allowed_origins(s.allowed_origins.clone());
    config = config.enforce_origin_validation();
    let mcp_state = state.clone();
    let rmcp = StreamableHttpService::new(
        move || Ok(RapportMcp::new(mcp_state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = mcp::Endpoint::new(rmcp, state.clone());

    // The key check is every route's.
    let api = Router::new()
        // Exactly `/api/v1/mcp`: nothing below it is the endpoint.
        .route("/mcp", any(move |req| mcp.clone().serve(req)))
        .merge(admin::routes())
        .merge(rest::routes())
        .merge(data::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
                .into_response()
        })
        .layer(from_fn_with_state(state.clone(), middleware::require_key));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        // Public: reading the API's description needs no key.
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/docs", get(docs::page))
        .route("/api/docs/rapidoc-min.js", get(docs::script))
        .route("/api/docs/LICENSE.txt", get(docs::license))
        .nest("/api/v1", api)
        .merge(crate::console::routes())
        .fallback(|| async { crate::console::PageError::not_found().into_response() })
        .layer(from_fn(rest::leads_cors))
        .layer(from_fn_with_state(state.clone(), middleware::log_requests))
        .with_state(state)
}
