//! The REST API (SPEC section 7): every route is a tool call. Routes are derived from the
//! entity descriptions (one set per entity, named by its plural), arguments are built from
//! the path, query and body, and the call runs through `service::invoke`: the same
//! scopes, validation messages, change-log entries, idempotency and audit as over MCP.
//! Only the answer's shape and status are REST's own.

use std::sync::Arc;

use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rapport_tools::{Entity, Tool, ToolDef};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::auth::Principal;
use crate::service::{self as dispatch, Failure, ToolError};
use crate::state::AppState;

type Caller = Extension<Arc<Principal>>;

impl From<ToolError> for ApiError {
    fn from(e: ToolError) -> Self {
        let (status, code) = match e.kind {
            Failure::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            Failure::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Failure::Conflict => (StatusCode::CONFLICT, "conflict"),
            Failure::Denied => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Failure::Unavailable => return ApiError::unavailable(),
            Failure::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.message)
    }
}

/// Runs `t` with `args` for the caller, through the tool layer MCP uses.
async fn tool(state: &AppState, p: &Principal, t: Tool, args: Map<String, Value>) -> Result<Value, ApiError> {
    Ok(dispatch::invoke(state, p, ToolDef::of(t), args).await?)
}

fn object(v: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{what} is a JSON object, got {other}"),
        )),
    }
}

/// A body for one entity's route: its `entity`, when given, must be the path's.
fn for_entity(body: Value, entity: Entity) -> Result<Map<String, Value>, ApiError> {
    let mut m = object(body, "the body")?;
    match m.get("entity") {
        Some(Value::String(e)) if e == entity.as_str() => {}
        None => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("this route is for {}; the body names entity {other}", entity.def().plural),
            ));
        }
    }
    m.insert("entity".into(), entity.as_str().into());
    Ok(m)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().trim_matches('"').to_owned())
}

/// The records list of a write tool, with the `Idempotency-Key` header as its key.
fn write_args(entity: Entity, items: Vec<Value>, headers: &HeaderMap) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert(entity.plural().into(), Value::Array(items));
    if let Some(k) = header(headers, "idempotency-key") {
        args.insert("idempotency_key".into(), k.into());
    }
    args
}

/// A write body: one record, or `{"items": [...]}`; and whether it was the list.
fn one_or_items(body: Value) -> (Vec<Value>, bool) {
    match body {
        Value::Object(mut m) if m.len() == 1 && m.get("items").is_some_and(Value::is_array) => {
            match m.remove("items") {
                Some(Value::Array(items)) => (items, true),
                _ => (Vec::new(), true),
            }
        }
        one => (vec![one], false),
    }
}

fn first_item(v: &Value) -> Value {
    v.get("items").and_then(|i| i.get(0)).cloned().unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
    /// `last_name:asc,created_at:desc`
    #[serde(default)]
    sort: Option<String>,
    /// `email,company_id`
    #[serde(default)]
    fields: Option<String>,
    /// The JSON filter list of `search_records`.
    #[serde(default)]
    filter: Option<String>,
}

fn comma_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
}

impl ListQuery {
    fn into_args(self, entity: Entity) -> Result<Map<String, Value>, ApiError> {
        let bad = |m: String| ApiError::bad_request(m);
        let mut args = Map::new();
        args.insert("entity".into(), entity.as_str().into());
        if let Some(q) = self.q.filter(|q| !q.is_empty()) {
            args.insert("query".into(), q.into());
        }
        if let Some(l) = self.limit {
            args.insert("limit".into(), l.into());
        }
        if let Some(c) = self.cursor.filter(|c| !c.is_empty()) {
            args.insert("cursor".into(), c.into());
        }
        if let Some(sort) = self.sort {
            let keys = comma_list(&sort)
                .into_iter()
                .map(|k| {
                    let (field, dir) = k.split_once(':').unwrap_or((k.as_str(), "asc"));
                    match dir {
                        "asc" | "desc" => Ok(json!({ "field": field, "direction": dir })),
                        other => Err(bad(format!("sort direction `{other}` is asc or desc, as in sort=last_name:asc"))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            args.insert("sort".into(), keys.into());
        }
        if let Some(fields) = self.fields {
            args.insert("fields".into(), comma_list(&fields).into());
        }
        if let Some(filter) = self.filter {
            let list: Value = serde_json::from_str(&filter)
                .map_err(|e| bad(format!("`filter` is the JSON list of conditions, URL-encoded: {e}")))?;
            args.insert("filters".into(), list);
        }
        Ok(args)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsQuery {
    #[serde(default)]
    fields: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The routes of one entity.
fn entity_routes(entity: Entity) -> Router<AppState> {
    let plural = entity.def().plural;
    let tools = entity.def().tools;
    let mut r = Router::new()
        .route(
            &format!("/{plural}"),
            get(move |State(s): State<AppState>, Extension(p): Caller, ApiQuery(q): ApiQuery<ListQuery>| async move {
                let v = tool(&s, &p, Tool::SearchRecords, q.into_args(entity)?).await?;
                Ok::<_, ApiError>(Json(v).into_response())
            })
            .post(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      headers: HeaderMap,
                      ApiJson(body): ApiJson<Value>| async move {
                    let (items, many) = one_or_items(body);
                    let v = tool(&s, &p, Tool::Create(entity), write_args(entity, items, &headers)).await?;
                    let out = if many { json!({ "items": v["items"] }) } else { first_item(&v) };
                    Ok::<_, ApiError>((StatusCode::CREATED, Json(out)).into_response())
                },
            ),
        )
        .route(
            &format!("/{plural}/search"),
            post(move |State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                Ok::<_, ApiError>(
                    Json(tool(&s, &p, Tool::SearchRecords, for_entity(body, entity)?).await?).into_response(),
                )
            }),
        )
        .route(
            &format!("/{plural}/count"),
            post(move |State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                Ok::<_, ApiError>(
                    Json(tool(&s, &p, Tool::CountRecords, for_entity(body, entity)?).await?).into_response(),
                )
            }),
        )
        .route(
            &format!("/{plural}/{{id}}"),
            get(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      Path(id): Path<String>,
                      ApiQuery(q): ApiQuery<FieldsQuery>| async move {
                    let mut args = Map::new();
                    args.insert("records".into(), json!([{ "entity": entity.as_str(), "id": id }]));
                    if let Some(f) = q.fields {
                        args.insert("fields".into(), comma_list(&f).into());
                    }
                    let v = tool(&s, &p, Tool::GetRecords, args).await?;
                    match first_item(&v) {
                        Value::Null => Err(ApiError::new(
                            StatusCode::NOT_FOUND,
                            "not_found",
                            format!("no {} {id} in your organization", entity.as_str()),
                        )),
                        record => Ok(Json(record).into_response()),
                    }
                },
            )
            .patch(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      Path(id): Path<String>,
                      headers: HeaderMap,
                      ApiJson(body): ApiJson<Value>| async move {
                    let mut item = object(body, "the body")?;
                    item.insert("id".into(), id.into());
                    if let Some(at) = header(&headers, "if-match") {
                        item.insert("if_updated_at".into(), at.into());
                    }
                    let mut args = Map::new();
                    args.insert(entity.plural().into(), json!([item]));
                    let v = tool(&s, &p, Tool::Update(entity), args).await?;
                    Ok::<_, ApiError>(Json(first_item(&v)).into_response())
                },
            )
            .delete(
                move |State(s): State<AppState>, Extension(p): Caller, Path(id): Path<String>| async move {
                    let args = object(json!({ "entity": entity.as_str(), "ids": [id] }), "")?;
                    tool(&s, &p, Tool::DeleteRecords, args).await?;
                    Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
                },
            ),
        )
        .route(
            &format!("/{plural}/{{id}}/restore"),
            post(move |State(s): State<AppState>, Extension(p): Caller, Path(id): Path<String>| async move {
                let args = object(json!({ "entity": entity.as_str(), "ids": [id] }), "")?;
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::RestoreRecords, args).await?).into_response())
            }),
        )
        .route(
            &format!("/{plural}/{{id}}/timeline"),
            get(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      Path(id): Path<String>,
                      ApiQuery(q): ApiQuery<PageQuery>| async move {
                    let args = object(
                        json!({ "entity": entity.as_str(), "id": id, "limit": q.limit, "cursor": q.cursor }),
                        "",
                    )?;
                    let args = args.into_iter().filter(|(_, v)| !v.is_null()).collect();
                    Ok::<_, ApiError>(Json(tool(&s, &p, Tool::GetTimeline, args).await?).into_response())
                },
            ),
        );
    if crate::crm::merge::MERGEABLE.contains(&entity) {
        r = r.route(
            &format!("/{plural}/merge"),
            post(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      headers: HeaderMap,
                      ApiJson(body): ApiJson<Value>| async move {
                    let mut args = for_entity(body, entity)?;
                    if let Some(k) = header(&headers, "idempotency-key") {
                        args.insert("idempotency_key".into(), k.into());
                    }
                    Ok::<_, ApiError>(Json(tool(&s, &p, Tool::MergeRecords, args).await?).into_response())
                },
            ),
        );
    }
    if tools.upsert.is_some() {
        r = r.route(
            &format!("/{plural}/upsert"),
            post(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      headers: HeaderMap,
                      ApiJson(body): ApiJson<Value>| async move {
                    let (items, _) = one_or_items(body);
                    Ok::<_, ApiError>(
                        Json(tool(&s, &p, Tool::Upsert(entity), write_args(entity, items, &headers)).await?)
                            .into_response(),
                    )
                },
            ),
        );
    }
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchAllQuery {
    q: String,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /changes`: the change log, as `crm::timeline::log` reads it.
async fn changes(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<crate::crm::timeline::LogQuery>,
) -> Result<Response, ApiError> {
    let page = crate::crm::timeline::log(s.store.as_ref(), &p, q).await.map_err(dispatch::ToolError::from)?;
    Ok(Json(page).into_response())
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route(
            "/links",
            post(|State(s): State<AppState>, Extension(p): Caller, headers: HeaderMap, ApiJson(body): ApiJson<Value>| async move {
                let mut args = object(body, "the body")?;
                if let Some(k) = header(&headers, "idempotency-key") {
                    args.insert("idempotency_key".into(), k.into());
                }
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::LinkRecords, args).await?).into_response())
            })
            .delete(|State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::UnlinkRecords, object(body, "the body")?).await?).into_response())
            }),
        )
        .route(
            "/search",
            get(|State(s): State<AppState>, Extension(p): Caller, ApiQuery(q): ApiQuery<SearchAllQuery>| async move {
                let mut args = Map::new();
                args.insert("query".into(), q.q.into());
                if let Some(l) = q.limit {
                    args.insert("limit".into(), l.into());
                }
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::SearchAll, args).await?).into_response())
            }),
        )
        .route(
            "/pipelines",
            get(|State(s): State<AppState>, Extension(p): Caller| async move {
                let v = tool(&s, &p, Tool::DescribeEntity, object(json!({ "entity": "deal" }), "")?).await?;
                Ok::<_, ApiError>(Json(json!({ "items": v["pipelines"] })).into_response())
            })
            .post(|State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                let v = tool(&s, &p, Tool::CreatePipeline, object(body, "the body")?).await?;
                Ok::<_, ApiError>((StatusCode::CREATED, Json(v)).into_response())
            }),
        )
        .route(
            "/pipelines/{name}",
            axum::routing::patch(|State(s): State<AppState>, Extension(p): Caller, Path(name): Path<String>, ApiJson(body): ApiJson<Value>| async move {
                let mut args = object(body, "the body")?;
                args.insert("name".into(), name.into());
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::UpdatePipeline, args).await?).into_response())
            }),
        )
        .route(
            "/custom-fields",
            get(|State(s): State<AppState>, Extension(p): Caller| async move {
                // Every entity the key may read, each described as `describe_entity` does.
                let mut items = Vec::new();
                for e in Entity::ALL.iter().filter(|e| p.scopes.contains(&e.def().read)) {
                    let v = tool(&s, &p, Tool::DescribeEntity, object(json!({ "entity": e.as_str() }), "")?).await?;
                    for mut f in v["custom_fields"].as_array().cloned().unwrap_or_default() {
                        f["entity"] = e.as_str().into();
                        items.push(f);
                    }
                }
                Ok::<_, ApiError>(Json(json!({ "items": items })).into_response())
            })
            .post(|State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                let v = tool(&s, &p, Tool::CreateCustomField, object(body, "the body")?).await?;
                Ok::<_, ApiError>((StatusCode::CREATED, Json(v)).into_response())
            }),
        )
        .route(
            "/custom-fields/{entity}/{key}",
            axum::routing::patch(|State(s): State<AppState>, Extension(p): Caller, Path((entity, key)): Path<(String, String)>, ApiJson(body): ApiJson<Value>| async move {
                let mut args = object(body, "the body")?;
                args.insert("entity".into(), entity.into());
                args.insert("key".into(), key.into());
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::UpdateCustomField, args).await?).into_response())
            })
            .delete(|State(s): State<AppState>, Extension(p): Caller, Path((entity, key)): Path<(String, String)>| async move {
                let args = object(json!({ "entity": entity, "key": key }), "")?;
                tool(&s, &p, Tool::DeleteCustomField, args).await?;
                Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
            }),
        )
        .route("/changes", get(changes))
        .route(
            "/changes/revert",
            post(|State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::RevertChanges, object(body, "the body")?).await?).into_response())
            }),
        )
        .route("/leads/inbound", post(inbound_lead));
    for e in Entity::ALL {
        r = r.merge(entity_routes(*e));
    }
    r.merge(webhook_routes())
}

/// `GET /webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// 1 to 100; default 25.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `/webhooks…` (SPEC section 10), each a webhook tool.
fn webhook_routes() -> Router<AppState> {
    let with_id = |id: String, body: Option<Value>| -> Result<Map<String, Value>, ApiError> {
        let mut args = match body {
            Some(b) => object(b, "the body")?,
            None => Map::new(),
        };
        args.insert("id".into(), id.into());
        Ok(args)
    };
    Router::new()
        .route(
            "/webhooks",
            get(|State(s): State<AppState>, Extension(p): Caller| async move {
                Ok::<_, ApiError>(Json(tool(&s, &p, Tool::ListWebhooks, Map::new()).await?).into_response())
            })
            .post(
                |State(s): State<AppState>, Extension(p): Caller, ApiJson(body): ApiJson<Value>| async move {
                    let v = tool(&s, &p, Tool::CreateWebhook, object(body, "the body")?).await?;
                    Ok::<_, ApiError>((StatusCode::CREATED, Json(v)).into_response())
                },
            ),
        )
        .route(
            "/webhooks/{id}",
            get(|State(s): State<AppState>, Extension(p): Caller, Path(id): Path<String>| async move {
                let all = tool(&s, &p, Tool::ListWebhooks, Map::new()).await?;
                let found = all["items"].as_array().and_then(|l| l.iter().find(|w| w["id"] == id.as_str())).cloned();
                match found {
                    Some(w) => Ok(Json(w).into_response()),
                    None => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!("no webhook {id} in this organization"),
                    )),
                }
            })
            .patch(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      Path(id): Path<String>,
                      ApiJson(body): ApiJson<Value>| async move {
                    Ok::<_, ApiError>(
                        Json(tool(&s, &p, Tool::UpdateWebhook, with_id(id, Some(body))?).await?).into_response(),
                    )
                },
            )
            .delete(
                move |State(s): State<AppState>, Extension(p): Caller, Path(id): Path<String>| async move {
                    tool(&s, &p, Tool::DeleteWebhook, with_id(id, None)?).await?;
                    Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
                },
            ),
        )
        .route(
            "/webhooks/{id}/deliveries",
            get(
                move |State(s): State<AppState>,
                      Extension(p): Caller,
                      Path(id): Path<String>,
                      ApiQuery(q): ApiQuery<DeliveriesQuery>| async move {
                    let mut args = with_id(id, None)?;
                    if let Some(l) = q.limit {
                        args.insert("limit".into(), l.into());
                    }
                    if let Some(c) = q.cursor {
                        args.insert("cursor".into(), c.into());
                    }
                    Ok::<_, ApiError>(Json(tool(&s, &p, Tool::ListWebhookDeliveries, args).await?).into_response())
                },
            ),
        )
        .route(
            "/webhooks/deliveries/{delivery_id}/resend",
            post(|State(s): State<AppState>, Extension(p): Caller, Path(id): Path<String>| async move {
                let args = object(json!({ "delivery_id": id }), "")?;
                let v = tool(&s, &p, Tool::ResendWebhookDelivery, args).await?;
                Ok::<_, ApiError>((StatusCode::ACCEPTED, Json(v)).into_response())
            }),
        )
}

/// `POST /api/v1/leads/inbound` (scope `leads:write`): a lead as JSON, or as a web form's
/// fields (where fields the form adds besides the lead's, a submit button, are ignored).
pub async fn inbound_lead(
    State(s): State<AppState>,
    Extension(p): Caller,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    use crate::crm::leads::{InboundLead, Tags};
    let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let lead: InboundLead = if content_type.starts_with("application/x-www-form-urlencoded") {
        let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "a lead is at most 64 KB")
        })?;
        let mut lead = InboundLead::default();
        for (k, v) in form_urlencoded::parse(&bytes).into_owned() {
            let slot = match k.as_str() {
                "email" => &mut lead.email,
                "first_name" => &mut lead.first_name,
                "last_name" => &mut lead.last_name,
                "name" => &mut lead.name,
                "phone" => &mut lead.phone,
                "company" => &mut lead.company,
                "domain" => &mut lead.domain,
                "title" => &mut lead.title,
                "message" => &mut lead.message,
                "source" => &mut lead.source,
                "tags" => {
                    lead.tags = Some(Tags::Text(v));
                    continue;
                }
                _ => continue,
            };
            *slot = Some(v);
        }
        lead
    } else {
        let ApiJson(lead) = ApiJson::<InboundLead>::from_request(req, &s).await?;
        lead
    };
    let result =
        crate::crm::leads::inbound(&s.store, &p, lead).await.map_err(|e| ApiError::from(ToolError::from(e)))?;
    let status = if result.status == "created" { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(result)).into_response())
}

/// CORS for the inbound-lead route alone, so a static site's form or script can post to it:
/// any origin, no credentials (the key travels in the request).
pub async fn leads_cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::{HeaderValue, Method, header};
    if req.uri().path() != "/api/v1/leads/inbound" {
        return next.run(req).await;
    }
    let preflight = req.method() == Method::OPTIONS;
    let mut res = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if preflight {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, x-api-key, authorization, idempotency-key"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
    res
}
