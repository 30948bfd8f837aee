//! `ApiError`: the one JSON error shape of the HTTP API, `{"error": {"code", "message"}}`.
//! Auth failures, domain errors and faults are mapped to it here and nowhere else.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

/// Seconds a client is asked to wait while the database is away: the server notices it is
/// back within a fraction of that.
pub const RETRY_UNAVAILABLE: u64 = 1;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// A request the API cannot read (a malformed query string or JSON body): 400
    /// `bad_request`. Well-formed input that breaks a rule is 422 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// Well-formed input that breaks a rule: 422 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn unavailable() -> Self {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; try again shortly",
        );
        err.retry_after = Some(RETRY_UNAVAILABLE);
        err
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match &e {
            AuthError::Conflicting => StatusCode::BAD_REQUEST,
            AuthError::IpNotAllowed(_) | AuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            AuthError::Unavailable(inner) => {
                tracing::error!(error = %inner, "authentication could not reach the database");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut err = ApiError::new(status, e.code(), e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err.retry_after = Some(RETRY_UNAVAILABLE);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"rapport\""));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
