//! `/api/docs`: the browsable API documentation, RapiDoc 9.3.8 (vendored under
//! assets/vendor/rapidoc with its licence) reading `/api/v1/openapi.json`, with "try it"
//! requests to this server. Everything is served from the binary: no CDN.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../templates/api_docs.html");
const RAPIDOC: &str = include_str!("../../assets/vendor/rapidoc/rapidoc-min.js");
const LICENSE: &str = include_str!("../../assets/vendor/rapidoc/LICENSE.txt");

/// RapiDoc styles its components inline; it needs nothing from other origins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   font-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub async fn page() -> Response {
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        RAPIDOC,
    )
        .into_response()
}

pub async fn license() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], LICENSE).into_response()
}
