//! The MCP endpoint over HTTP: the body's guard, rmcp's refusals in the API's shape, and the
//! lean path, on which a plain `tools/call` or `tools/list` POST that asks for JSON is parsed
//! and answered here, with rmcp's own model types and the same handlers
//! (`crate::mcp::run_call`, `crate::mcp::list_tools`), without rmcp's per-request service (a
//! task, channels and a cancellation token per POST, and a buffered `#[serde(flatten)]` parse):
//! that machinery cost about half of every call (docs/performance.md).
//!
//! Only requests whose handling rmcp would not vary take this path; every other request
//! (initialize, notifications, other methods, the 2026-07-28 revision with its per-request
//! `_meta` and standard headers, an `Accept` with parameters, anything unusual in the body)
//! goes to rmcp unchanged, so refusals, SSE and negotiation stay rmcp's.

use std::sync::{Arc, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, ErrorData, JsonRpcVersion2_0, PaginatedRequestParams,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::mcp::RapportMcp;
use crate::state::AppState;

/// The largest MCP request body accepted.
pub const MAX_MCP_BODY: usize = 1024 * 1024;

type Rmcp = StreamableHttpService<RapportMcp, LocalSessionManager>;

/// The MCP endpoint: the lean path in front of rmcp's service.
#[derive(Clone)]
pub struct Endpoint(Arc<Inner>);

struct Inner {
    rmcp: Rmcp,
    state: AppState,
    /// rmcp's verdict on each (Host, Origin) pair seen, so that the lean path refuses and
    /// allows exactly what rmcp does (its DNS-rebinding check is not public).
    allowed: RwLock<Vec<(HeaderValue, Option<HeaderValue>, bool)>>,
}

/// At most this many (Host, Origin) verdicts are remembered (a server is reached under a
/// few names); past it rmcp is asked each time.
const MAX_VERDICTS: usize = 32;

/// A JSON-RPC request as the lean path takes it: exactly these members, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[allow(dead_code)] // Checked by its type: exactly "2.0".
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

enum Call {
    Tool(CallToolRequestParams),
    List,
}

impl Endpoint {
    pub fn new(rmcp: Rmcp, state: AppState) -> Self {
        Endpoint(Arc::new(Inner { rmcp, state, allowed: RwLock::default() }))
    }

    pub async fn serve(self, req: Request) -> Response {
        let req = if req.method() == Method::POST {
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_MCP_BODY).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("an MCP request body is at most {MAX_MCP_BODY} bytes"),
                    )
                    .into_response();
                }
            };
            if let Some((host, origin)) = plain_headers(&parts.headers)
                && let Some((id, call)) = parse(&bytes)
                && self.allowed(&parts.uri, host, origin).await
            {
                self.0.state.metrics.mcp_post(true);
                return self.answer(parts, id, call).await;
            }
            if let Some(refusal) = refuse_body(&bytes) {
                return refusal;
            }
            self.0.state.metrics.mcp_post(false);
            Request::from_parts(parts, Body::from(bytes))
        } else {
            req
        };
        in_api_shape(self.0.rmcp.handle(req).await.map(Body::new)).await
    }

    /// Whether rmcp lets this Host and Origin through.
    async fn allowed(&self, uri: &http::Uri, host: &HeaderValue, origin: Option<&HeaderValue>) -> bool {
        let seen = |(h, o, _): &&(HeaderValue, Option<HeaderValue>, bool)| h == host && o.as_ref() == origin;
        if let Some((_, _, verdict)) = self.0.allowed.read().expect("verdicts").iter().find(seen) {
            return *verdict;
        }
        // rmcp checks Host and Origin before the method: OPTIONS comes back 405 when they pass.
        let mut probe = Request::builder().method(Method::OPTIONS).uri(uri.clone()).header(header::HOST, host);
        if let Some(origin) = origin {
            probe = probe.header(header::ORIGIN, origin);
        }
        let probe = probe.body(Body::empty()).expect("a request from valid parts");
        let verdict = self.0.rmcp.handle(probe).await.status() == StatusCode::METHOD_NOT_ALLOWED;
        let mut verdicts = self.0.allowed.write().expect("verdicts");
        if verdicts.len() < MAX_VERDICTS {
            verdicts.push((host.clone(), origin.cloned(), verdict));
        }
        verdict
    }

    async fn answer(&self, parts: http::request::Parts, id: RequestId, call: Call) -> Response {
        let result: Result<ServerResult, ErrorData> = match call {
            Call::List => crate::mcp::list_tools(Some(&parts)).map(ServerResult::ListToolsResult),
            Call::Tool(params) => match self.run_call(parts, params).await {
                // The common answer is written by hand (`structured_answer`); the rest by rmcp.
                Ok(Ok(value)) if value.is_object() => {
                    return ([(header::CONTENT_TYPE, "application/json")], structured_answer(&id, &value))
                        .into_response();
                }
                Ok(Ok(value)) => Ok(ServerResult::CallToolResult(crate::mcp::structured(value))),
                Ok(Err(message)) => {
                    Ok(ServerResult::CallToolResult(CallToolResult::error(vec![ContentBlock::text(message)])))
                }
                Err(e) => Err(e),
            },
        };
        let message = match result {
            Ok(mut result) => {
                // As rmcp's handler answers a revision before 2026-07-28 (all this path takes).
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
                ServerJsonRpcMessage::response(result, id)
            }
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        };
        match serde_json::to_vec(&message) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "serializing an MCP answer");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    async fn run_call(
        &self,
        parts: http::request::Parts,
        mut params: CallToolRequestParams,
    ) -> Result<Result<serde_json::Value, String>, ErrorData> {
        let meta = params.meta.take().unwrap_or_default();
        let reads = rapport_tools::ToolDef::find(&params.name)
            .is_none_or(|def| def.tool.effect() == rapport_tools::Effect::Read);
        if reads {
            return crate::mcp::run_call(&self.0.state, Some(&parts), params, &meta).await;
        }
        // rmcp runs a handler in a task of its own, so a client that hangs up does not stop
        // a write half-way: nor does this.
        let state = self.0.state.clone();
        let handler = tokio::spawn(async move { crate::mcp::run_call(&state, Some(&parts), params, &meta).await });
        handler.await.unwrap_or_else(|e| Err(ErrorData::internal_error(format!("the tool call failed: {e}"), None)))
    }
}

/// The bytes rmcp writes for a successful structured answer (`CallToolResult::structured`)
/// to a revision before 2026-07-28: the value serialized once, as the text block (escaped)
/// and as the structured content. The lean path's test compares the two byte for byte.
fn structured_answer(id: &RequestId, value: &serde_json::Value) -> Vec<u8> {
    let text = serde_json::to_vec(value).expect("a JSON value serializes");
    let mut out = Vec::with_capacity(2 * text.len() + text.len() / 4 + 128);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut out, id).expect("an id serializes");
    out.extend_from_slice(br#","result":{"content":[{"type":"text","text":""#);
    // Serialized JSON holds no control characters (strings escape theirs, and the compact
    // form has no whitespace): only quotes and backslashes are escaped, as serde_json
    // would. Quotes come every few bytes: a plain loop beats a vectorised search here.
    let mut run = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&text[run..i]);
            out.push(b'\\');
            run = i;
        }
    }
    out.extend_from_slice(&text[run..]);
    out.extend_from_slice(br#""}],"structuredContent":"#);
    out.extend_from_slice(&text);
    out.extend_from_slice(br#","isError":false}}"#);
    out
}

fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// What rmcp answers with 415 for (malformed JSON, batches), the contract answers with
/// JSON-RPC errors.
fn refuse_body(bytes: &Bytes) -> Option<Response> {
    // Validate without building a tree: rmcp parses the message again anyway.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Some(jsonrpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error: the body is not valid JSON"));
    }
    match first {
        Some(b'{') => None,
        Some(b'[') => Some(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid Request: batches are not supported; send one JSON-RPC message per POST",
        )),
        _ => Some(jsonrpc_error(StatusCode::BAD_REQUEST, -32600, "Invalid Request: expected a JSON-RPC object")),
    }
}

/// rmcp answers its own refusals (a Host or Origin it does not allow, an `Accept` without
/// JSON and an event stream, a content type) in plain text; every refusal of the API has
/// one shape, so they are put in it here, with a message that says what to change.
async fn in_api_shape(res: Response) -> Response {
    // Plain text, or no content type at all (rmcp's 403s carry none).
    let plain = res.headers().get(header::CONTENT_TYPE).is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let status = res.status();
    let text = axum::body::to_bytes(res.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, message) = if text.contains("Host header") {
        ("host_not_allowed", format!("{text}: send the Host of RAPPORT_PUBLIC_URL, or a loopback name"))
    } else if text.contains("Origin header") {
        (
            "origin_not_allowed",
            format!("{text}: the page's origin must be RAPPORT_PUBLIC_URL's or listed in RAPPORT_ALLOWED_ORIGINS"),
        )
    } else if status == StatusCode::NOT_ACCEPTABLE {
        ("not_acceptable", format!("{text}: send `Accept: application/json, text/event-stream`"))
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        ("method_not_allowed", format!("{text}: the MCP endpoint takes POST"))
    } else if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        ("unsupported_media_type", format!("{text}: send `Content-Type: application/json`"))
    } else {
        ("bad_request", text)
    };
    ApiError::new(status, code, message).into_response()
}

/// Headers under which rmcp would serve a stateless JSON answer with no check of its own
/// left to make on them but Host and Origin, which are returned: JSON in, JSON and an event
/// stream accepted (without parameters, whose parsing is rmcp's), a revision before the
/// 2026-07-28 one (whose standard headers and per-request `_meta` rmcp checks), no session,
/// one Host and at most one Origin. One pass over the headers, no lookups by hash.
fn plain_headers(headers: &HeaderMap) -> Option<(&HeaderValue, Option<&HeaderValue>)> {
    let (mut accepts_json, mut accepts_sse) = (false, false);
    let (mut content_type, mut host, mut origin, mut version) = (None, None, None, None);
    for (name, value) in headers {
        if name == header::CONTENT_TYPE {
            // rmcp reads the first Content-Type only.
            content_type.get_or_insert(value);
        } else if name == header::ACCEPT {
            let value = value.to_str().ok()?;
            if value.contains([';', '"']) {
                return None;
            }
            for essence in value.split(',').map(str::trim) {
                accepts_json |= essence.eq_ignore_ascii_case("application/json");
                accepts_sse |= essence.eq_ignore_ascii_case("text/event-stream");
            }
        } else if name == header::HOST {
            host.replace(value).is_none().then_some(())?;
        } else if name == header::ORIGIN {
            origin.replace(value).is_none().then_some(())?;
        } else if name.as_str() == "mcp-protocol-version" {
            version.replace(value).is_none().then_some(())?;
        } else if name.as_str() == "mcp-session-id" {
            return None;
        }
    }
    let json = content_type.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    });
    let version_ok = version.is_none_or(|v| {
        v.to_str().is_ok_and(|v| {
            v < ProtocolVersion::V_2026_07_28.as_str()
                && ProtocolVersion::KNOWN_VERSIONS.iter().any(|k| k.as_str() == v)
        })
    });
    (json && accepts_json && accepts_sse && version_ok).then_some((host?, origin))
}

/// The request, when it is one the lean path answers.
fn parse(body: &[u8]) -> Option<(RequestId, Call)> {
    let message: Message = serde_json::from_slice(body).ok()?;
    let params = message.params.map(RawValue::get);
    // A per-request revision is negotiated by rmcp.
    if params.is_some_and(|p| p.contains("io.modelcontextprotocol/")) {
        return None;
    }
    let call = match message.method {
        "tools/call" => Call::Tool(serde_json::from_str(params?).ok()?),
        "tools/list" => match params {
            None => Call::List,
            Some(p) => {
                let _: PaginatedRequestParams = serde_json::from_str(p).ok()?;
                Call::List
            }
        },
        _ => return None,
    };
    Some((message.id, call))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const PLAIN: &[(&str, &str)] = &[
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];

    fn plain_with(extra: &[(&'static str, &'static str)]) -> bool {
        plain_headers(&headers(&[PLAIN, extra].concat())).is_some()
    }

    #[test]
    fn takes_only_plain_headers() {
        assert!(plain_with(&[]));
        assert!(plain_with(&[("mcp-protocol-version", "2025-06-18")]));
        assert!(plain_with(&[("origin", "http://localhost")]));
        assert!(!plain_with(&[("mcp-protocol-version", "2026-07-28")]));
        assert!(!plain_with(&[("mcp-protocol-version", "1999-01-01")]));
        assert!(!plain_with(&[("mcp-protocol-version", "2025-06-18"), ("mcp-protocol-version", "2025-06-18")]));
        assert!(!plain_with(&[("accept", "application/json;q=1, text/event-stream")]));
        assert!(!plain_with(&[("mcp-session-id", "x")]));
        assert!(!plain_with(&[("host", "other")]));
        assert!(!plain_with(&[("origin", "http://a"), ("origin", "http://b")]));
        assert!(plain_headers(&headers(&[PLAIN[0], PLAIN[1], ("accept", "application/json")])).is_none());
        assert!(plain_headers(&headers(&[PLAIN[0], ("content-type", "text/plain"), PLAIN[2]])).is_none());
        assert!(plain_headers(&headers(&PLAIN[1..])).is_none(), "no Host");
        let second_type = [PLAIN[0], ("content-type", "text/plain"), PLAIN[1], PLAIN[2]];
        assert!(plain_headers(&headers(&second_type)).is_none(), "rmcp reads the first");
    }

    #[test]
    fn takes_only_plain_calls() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_records","arguments":{}}}"#;
        assert!(matches!(parse(call), Some((RequestId::Number(7), Call::Tool(_)))));
        assert!(matches!(parse(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#), Some((_, Call::List))));
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#[..],
            br#"{"jsonrpc":"2.0","method":"tools/list"}"#,
            br#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","extra":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ] {
            assert!(parse(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
